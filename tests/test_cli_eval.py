"""The evaluation commands: `eval --iw-samples`, `anomaly-benchmark`, `probe`, `disentanglement`.

Most runs go through `vae_core.cli.main` in-process (a fresh Python per run would spend seconds on
importing torch); a few go through a real `python -m vae_core` to check that bad input ends as one
line and status 2 with no traceback.
"""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from vae_core import DataBundle, VAEConfig, VAEError, load_checkpoint
from vae_core.cli import main
from vae_core.protocols import disentanglement_report, one_class_auroc, one_class_bundle, one_class_config
from vae_core.sprites import render_sprites
from vae_core.train import Trainer

from .conftest import tiny_config
from .test_cli import run_cli

TINY_OC = ["--dataset", "digits", "--model", "mlp", "--latent-dim", "4", "--hidden-sizes", "32",
           "--epochs", "3", "--batch-size", "64", "--device", "cpu", "--quiet"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run fastest on one thread, and far faster than on two when other jobs share the
    cores (threads that wait on each other)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def cli_json(capsys, *args) -> dict:
    code, out, err = cli(capsys, *args, "--json")
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, out
    return json.loads(lines[0])


def one_line_error(code: int, err: str) -> str:
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


# --- eval --iw-samples


def test_eval_iw_nll_json(capsys, tiny_checkpoint):
    m = cli_json(capsys, "eval", tiny_checkpoint, "--iw-samples", "50")
    assert m["iw_samples"] == 50
    assert isinstance(m["iw_nll"], float) and math.isfinite(m["iw_nll"])
    assert 0 < m["iw_nll"] <= m["test_nelbo"] + 1.0
    assert m["likelihood"] == "Bernoulli on grey levels" and m["units"] == "nats per example"


def test_eval_bare_iw_flag_means_1000_samples(capsys, tiny_checkpoint):
    m = cli_json(capsys, "eval", tiny_checkpoint, "--iw-samples")
    assert m["iw_samples"] == 1000
    assert math.isfinite(m["iw_nll"]) and m["iw_nll"] <= m["test_nelbo"] + 1.0


def test_eval_without_iw_adds_nothing(capsys, tiny_checkpoint):
    m = cli_json(capsys, "eval", tiny_checkpoint)
    assert "iw_nll" not in m and "iw_samples" not in m


def test_eval_iw_text_names_units_and_likelihood(capsys, tiny_checkpoint):
    code, out, err = cli(capsys, "eval", tiny_checkpoint, "--iw-samples", "5")
    assert code == 0, err
    iw_line = next(line for line in out.splitlines() if "importance-weighted" in line)
    assert "nats" in iw_line and "K = 5" in iw_line and "Bernoulli on grey levels" in iw_line


def test_eval_iw_binarized_model(capsys, tmp_path, digits):
    path = tmp_path / "bin.pt"
    Trainer(tiny_config(binarize=True), bundle=digits, out_path=path).fit()
    m = cli_json(capsys, "eval", path, "--iw-samples", "20")
    assert m["likelihood"] == "Bernoulli on binarized data"
    assert math.isfinite(m["iw_nll"]) and m["iw_nll"] <= m["test_nelbo"] + 1.0


# --- anomaly-benchmark


def test_one_class_bundle_keeps_class_d_in_train_and_every_test_image(digits):
    sub = one_class_bundle(digits, 3)
    assert len(sub.train_idx) > 0
    assert (sub.labels[sub.train_idx] == 3).all()
    assert len(sub.train_idx) == int((digits.labels[digits.train_idx] == 3).sum())
    assert torch.equal(sub.test_idx, digits.test_idx)
    assert sub.images is digits.images and sub.image_shape == digits.image_shape
    assert len(digits.train_idx) > len(sub.train_idx)  # the original is untouched


def test_one_class_protocol_needs_labels(digits):
    unlabelled = DataBundle("unlabelled", digits.images, None, digits.train_idx, digits.test_idx)
    with pytest.raises(VAEError, match="labels"):
        one_class_bundle(unlabelled, 0)
    with pytest.raises(VAEError, match="labels"):
        one_class_auroc(unlabelled, tiny_config(epochs=1))
    with pytest.raises(VAEError, match="class 42"):
        one_class_bundle(digits, 42)


def test_one_class_auroc_function(digits):
    seen = []
    config = one_class_config(digits, model="mlp", latent_dim=4, hidden_sizes=(32,), epochs=2,
                              batch_size=64, device="cpu")
    r = one_class_auroc(digits, config, classes=[1, 7], score="recon",
                        progress=lambda done, total, rec: seen.append((done, total, rec["class"])))
    assert seen == [(1, 2, "1"), (2, 2, "7")]
    assert set(r["per_class_auroc"]) == {"1", "7"}
    assert all(0.0 <= v <= 1.0 for v in r["per_class_auroc"].values())
    assert r["score"] == "recon" and r["likelihood"] == "Gaussian, fixed sigma=0.1"
    rec = r["per_class"]["7"]
    assert rec["n_test_normal"] + rec["n_test_anomalous"] == len(digits.test_idx) == r["n_test"]
    assert rec["n_train"] == int((digits.labels[digits.train_idx] == 7).sum())


def test_one_class_defaults_suit_the_images(digits):
    mnist_like = DataBundle("mnist5k", torch.zeros(4, 1, 28, 28), torch.tensor([0, 1, 0, 1]),
                            torch.tensor([0, 1]), torch.tensor([2, 3]), spec={"dataset": "mnist5k"})
    big = one_class_config(mnist_like)
    assert big.model == "conv" and big.dataset == "mnist5k" and big.hidden_sizes == (256,)
    small = one_class_config(digits)  # 8x8: the conv model cannot take it
    assert small.model == "mlp" and small.hidden_sizes == (512, 256)
    assert one_class_config(mnist_like, model="mlp", epochs=None).epochs == big.epochs
    assert big.likelihood == "gaussian" and big.sigma_mode == "fixed" and big.sigma == 0.1
    assert one_class_config(digits, binarize=True).likelihood_name == "Bernoulli on binarized data"


def test_anomaly_benchmark_json(capsys):
    r = cli_json(capsys, "anomaly-benchmark", *TINY_OC, "--classes", "0,1")
    assert set(r["per_class_auroc"]) == {"0", "1"}
    values = list(r["per_class_auroc"].values())
    assert all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in values)
    assert r["mean_auroc"] == pytest.approx(np.mean(values))
    assert r["score"] == "nelbo" and r["likelihood"] == "Gaussian, fixed sigma=0.1"
    c = r["config"]
    assert c["dataset"] == "digits" and c["model"] == "mlp" and c["latent_dim"] == 4 and c["epochs"] == 3
    assert r["seconds"] > 0 and r["n_test"] == 360


def test_anomaly_benchmark_bernoulli_options(capsys):
    r = cli_json(capsys, "anomaly-benchmark", *TINY_OC, "--classes", "3", "--epochs", "1", "--binarize")
    assert r["likelihood"] == "Bernoulli on binarized data" and 0.0 <= r["per_class_auroc"]["3"] <= 1.0
    r = cli_json(capsys, "anomaly-benchmark", *TINY_OC, "--classes", "3", "--epochs", "1",
                 "--likelihood", "bernoulli")
    assert r["likelihood"] == "Bernoulli on grey levels"


def test_anomaly_benchmark_iw_score_text(capsys):
    code, out, err = cli(capsys, "anomaly-benchmark", *TINY_OC, "--classes", "2", "--score", "iw",
                         "--iw-samples", "4")
    assert code == 0, err
    assert "class 2: AUROC" in out and "mean AUROC" in out and "nats" in out


def test_anomaly_benchmark_progress_on_stderr(capsys):
    args = [a for a in TINY_OC if a != "--quiet"]
    r = cli_json(capsys, "anomaly-benchmark", *args, "--classes", "5", "--epochs", "1")
    assert set(r["per_class_auroc"]) == {"5"}
    # cli_json consumed the output; run again in text mode to see the progress line
    code, out, err = cli(capsys, "anomaly-benchmark", *args, "--classes", "5", "--epochs", "1")
    assert code == 0 and "[1/1] class 5: AUROC" in err


def test_anomaly_benchmark_unlabelled_folder(capsys, tmp_path):
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        Image.new("L", (28, 28), color=40 * i).save(folder / f"{i}.png")
    code, _, err = cli(capsys, "anomaly-benchmark", "--dataset", f"folder:{folder}", "--epochs", "1")
    assert "labels" in one_line_error(code, err)


# --- probe


def test_probe_json(capsys, tiny_checkpoint):
    r = cli_json(capsys, "probe", tiny_checkpoint, "--labels", "10,100")
    assert set(r["labels"]) == {"10", "100"}
    for n, a in r["labels"].items():
        for key in ("latent_acc", "pixel_acc", "pca_acc"):
            assert isinstance(a[key], float) and 0.0 <= a[key] <= 1.0, key
        assert a["n_train"] == int(n)
    assert r["n_test"] == 360 and r["latent_dim"] == 4


def test_probe_text_and_repeats(capsys, tiny_checkpoint):
    code, out, err = cli(capsys, "probe", tiny_checkpoint, "--labels", "20", "--repeats", "2")
    assert code == 0, err
    assert "20 labels: latent" in out and "pixels" in out and "PCA" in out and "%" in out


# --- disentanglement


@pytest.fixture(scope="module")
def small_sprites() -> DataBundle:
    """576 sprites (3 shapes x 6 scales x 2 orientations x 4 x 4 positions) at 32x32, with factors."""
    grid = render_sprites(32, 2, 4)
    n = len(grid.images)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    return DataBundle("sprites", grid.images, grid.factors[:, 0].clone(), perm[n // 5:].sort().values,
                      perm[: n // 5].sort().values, factors=grid.factors, factor_names=grid.factor_names,
                      factor_values=grid.factor_values)


@pytest.fixture(scope="module")
def sprites_checkpoint(tmp_path_factory, small_sprites):
    """A tiny conv model on the small grid, saved as a model of the `sprites` dataset (same 32x32
    images), so the CLI can load the real dataset by name and encode its test split quickly."""
    path = tmp_path_factory.mktemp("sprites") / "sprites.pt"
    config = VAEConfig(dataset="sprites", model="conv", latent_dim=4, hidden_sizes=(32,),
                       conv_channels=(8, 16), epochs=2, batch_size=64, device="cpu")
    Trainer(config, bundle=small_sprites, out_path=path).fit()
    return path


def test_disentanglement_report(small_sprites, sprites_checkpoint):
    model = load_checkpoint(sprites_checkpoint).model
    r = disentanglement_report(model, small_sprites)
    assert 0.0 <= r["mig"] <= 1.0
    assert r["factor_names"] == ["shape", "scale", "orientation", "pos_x", "pos_y"]
    assert list(r["per_factor"]) == r["factor_names"]
    assert all(v is None or 0.0 <= v <= 1.0 for v in r["per_factor"].values())
    assert 0 <= r["active_units"] <= 4 and r["latent_dim"] == 4
    assert r["n_points"] == len(small_sprites.test_idx)


def test_disentanglement_cli_on_sprites(capsys, monkeypatch, small_sprites, sprites_checkpoint):
    # the command loads the checkpoint's dataset by name; the small grid stands in for the 46k-image one
    loaded = []
    monkeypatch.setattr("vae_core.cli.load_for_config",
                        lambda config, download=True: loaded.append(config.dataset) or small_sprites)
    r = cli_json(capsys, "disentanglement", sprites_checkpoint, "--max-points", "100")
    assert loaded == ["sprites"]
    assert 0.0 <= r["mig"] <= 1.0 and r["n_points"] == 100
    assert set(r["per_factor"]) == set(r["factor_names"])
    assert isinstance(r["active_units"], int) and r["dataset"] == "sprites"
    code, out, err = cli(capsys, "disentanglement", sprites_checkpoint)
    assert code == 0, err
    assert "MIG" in out and "active units" in out and "nats" in out


def test_disentanglement_without_factors(capsys, tiny_checkpoint):
    code, _, err = cli(capsys, "disentanglement", tiny_checkpoint, "--json")
    line = one_line_error(code, err)
    assert "sprites" in line and "digits" in line


# --- bad input: one line, status 2


BAD = {
    "missing checkpoint (probe)": (["probe", "nope.pt"], "nope.pt"),
    "missing checkpoint (disentanglement)": (["disentanglement", "nope.pt"], "nope.pt"),
    "iw samples 0": (["eval", "{ckpt}", "--iw-samples", "0"], "iw-samples"),
    "iw samples word": (["eval", "{ckpt}", "--iw-samples", "many"], "iw-samples"),
    "labels word": (["probe", "{ckpt}", "--labels", "ten"], "labels"),
    "labels too few": (["probe", "{ckpt}", "--labels", "1"], "label count"),
    "repeats 0": (["probe", "{ckpt}", "--repeats", "0"], "repeats"),
    "unknown class": (["anomaly-benchmark", *TINY_OC, "--classes", "0,42"], "class 42"),
    "bad classes": (["anomaly-benchmark", *TINY_OC, "--classes", "zero"], "classes"),
    "bad score": (["anomaly-benchmark", *TINY_OC, "--score", "vibes"], "vibes"),
    "unknown dataset": (["anomaly-benchmark", "--dataset", "imagenet"], "imagenet"),
    "conv on 8x8": (["anomaly-benchmark", *TINY_OC[:2], "--model", "conv", "--classes", "0"], "mlp"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_in_process(capsys, tiny_checkpoint, case):
    args, needle = BAD[case]
    code, out, err = cli(capsys, *(a.format(ckpt=tiny_checkpoint) for a in args))
    assert needle in one_line_error(code, err)
    assert out == ""


def test_bad_input_real_process(tmp_path, tiny_checkpoint):
    """As a user sees it: `python -m vae_core ...` prints one line, exits 2, shows no traceback."""
    cases = [["probe", tiny_checkpoint, "--labels", "ten"], ["disentanglement", tiny_checkpoint]]
    with ThreadPoolExecutor(max_workers=len(cases)) as pool:
        procs = list(pool.map(lambda args: run_cli(args, tmp_path), cases))
    for args, proc in zip(cases, procs, strict=True):
        assert proc.returncode == 2, (args, proc.stderr)
        assert "Traceback" not in proc.stdout + proc.stderr
        lines = proc.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, proc.stderr)
    assert "ten" in procs[0].stderr and "sprites" in procs[1].stderr


def test_a_preset_whose_projections_cannot_be_computed_says_so_in_one_line_and_keeps_the_run(capsys, tmp_path,
                                                                                                  monkeypatch):
    import vae_core.projection

    def missing(*args, **kwargs):
        raise ModuleNotFoundError("No module named 'umap'")

    monkeypatch.setattr(vae_core.projection, "precompute", missing)
    out = tmp_path / "digits.pt"
    code, _, err = cli(capsys, "train", "--preset", "digits-mlp", "--epochs", "1", "--quiet", "--out", out)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err
    assert str(out.name) in lines[0] and "No module named 'umap'" in lines[0]
    assert load_checkpoint(out).progress["epoch"] == 1  # the run is saved

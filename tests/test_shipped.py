"""The models that ship in checkpoints/: present, small, loadable, and what their preset says."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from vae_core import evaluate, load_checkpoint
from vae_core.anomaly import SCORES, checkpoint_scores
from vae_core.data import load_for_config
from vae_core.latent import encode
from vae_core.library import projection_cache_key
from vae_core.presets import PRESETS
from vae_core.projection import methods_on_disk, project
from vae_core.sprites import SHAPES

CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"
# test nELBO in nats per example (one posterior draw, `evaluate`'s seed), as the README's quality table reports it
REPORTED_NELBO = {"digits-mlp": 24.47, "mnist5k-conv-z16": 98.74, "mnist5k-z2": 157.40,
                  "sprites-conv-z10-beta1": 33.16, "sprites-conv-z10-beta4": 41.55, "mnist5k-ae-z16": 486.07}
# mnist5k-conv-z16's anomaly scores of its test split (nats): the mean, and the first three images; iw (k = 64)
# on the split's first IW_IMAGES only (its whole split, 36 s on 2 cores: mean 94.4150, first 97.1228, 101.7603,
# 130.1398; the draws depend on the images scored together, so a subset's differ)
REPORTED_SCORES = {"nelbo": (98.9440, [102.9762, 102.6151, 129.7700]),
                   "recon": (67.9593, [71.7741, 74.3323, 96.4623]),
                   "iw": (96.8441, [96.9012, 102.4689, 129.9646])}
IW_IMAGES = 128


def test_shipped_checkpoints_stay_under_25_mb():
    total = sum(p.stat().st_size for p in CHECKPOINTS.rglob("*") if p.is_file())
    assert total < 25 * 2**20, f"{total / 2**20:.1f} MB"


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_shipped_checkpoint_matches_its_preset(name):
    path = CHECKPOINTS / f"{name}.pt"
    ckpt = load_checkpoint(path)  # rebuilds the model from the stored config and loads weights strictly
    for key, value in PRESETS[name].items():
        got = getattr(ckpt.config, key)
        assert (tuple(got) if isinstance(value, tuple) else got) == value, key
    assert ckpt.config.extra.get("preset") == name
    assert ckpt.progress["epoch"] == ckpt.config.epochs and ckpt.progress["status"] == "finished"
    n_weights = sum(v.numel() for v in ckpt.model.state_dict().values())
    assert n_weights == sum(p.numel() for p in ckpt.model.parameters())
    with torch.no_grad():
        images = ckpt.model.decode(torch.zeros(2, ckpt.latent_dim))
    assert images.shape == (2, *ckpt.image_shape)
    assert ckpt.metrics["test_nelbo"] > 0 and ckpt.metrics["likelihood"]


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_shipped_projections_are_found_for_the_codes_computed_here(name, tmp_path):
    # what a fresh install's first map asks for: the test split's codes encoded on this machine (their
    # last bits differ from the machine that made the files) find the shipped files, and nothing is fitted
    path = CHECKPOINTS / f"{name}.pt"
    key = projection_cache_key(path, "test")
    assert {"pca", "umap"} <= methods_on_disk(CHECKPOINTS / "projections", key)
    cache = tmp_path / "projections"
    shutil.copytree(CHECKPOINTS / "projections", cache)
    before = sorted(p.name for p in cache.iterdir())
    ckpt = load_checkpoint(path)
    mu, _ = encode(ckpt.model, load_for_config(ckpt.config, download=False).split("test").images)
    for method in ("pca", "umap"):
        proj = project(mu.numpy(), method, cache_dir=cache, cache_key=key)
        assert proj.params["cached"], method
    assert sorted(p.name for p in cache.iterdir()) == before  # nothing written
    shipped_pca = project(mu.numpy(), "pca", cache_dir=cache, cache_key=key).coords
    fitted_here = project(mu.numpy(), "pca").coords  # and the file is these codes' map
    assert np.allclose(np.abs(shipped_pca), np.abs(fitted_here), atol=1e-3)


@pytest.mark.parametrize("name", sorted(n for n, p in PRESETS.items() if p.get("val_fraction")))
def test_presets_with_a_validation_split_store_its_curve(name):
    ckpt = load_checkpoint(CHECKPOINTS / f"{name}.pt")
    assert ckpt.data_spec["n_val"] == round(PRESETS[name]["val_fraction"] * (ckpt.data_spec["n_train"]
                                                                              + ckpt.data_spec["n_val"]))
    assert all("val_nelbo" in e for e in ckpt.history["epochs"])


def test_the_beta_study_pair_differs_in_how_many_units_it_uses():
    beta1, beta4 = (load_checkpoint(CHECKPOINTS / f"sprites-conv-z10-beta{b}.pt") for b in (1, 4))
    assert beta1.config.beta == 1 and beta4.config.beta == 4
    assert beta1.metrics["active_units"] >= 5
    assert beta4.metrics["active_units"] <= beta1.metrics["active_units"] - 2


@pytest.mark.parametrize("name", sorted(REPORTED_NELBO))
def test_shipped_models_evaluate_to_their_reported_nelbo(name):
    assert set(REPORTED_NELBO) == set(PRESETS)
    ckpt = load_checkpoint(CHECKPOINTS / f"{name}.pt")
    got = evaluate(ckpt.model, load_for_config(ckpt.config, download=False).split("test").images)
    assert got["nelbo"] == pytest.approx(REPORTED_NELBO[name], abs=0.01)
    assert ckpt.metrics["test_nelbo"] == pytest.approx(REPORTED_NELBO[name], abs=0.01)
    assert got["nelbo"] == pytest.approx(got["recon"] + got["kl"])


def test_the_shipped_mnist5k_model_scores_anomalies_as_reported():
    ckpt = load_checkpoint(CHECKPOINTS / "mnist5k-conv-z16.pt")
    test = load_for_config(ckpt.config, download=False).split("test").images
    for score in SCORES:
        values = checkpoint_scores(ckpt, test[:IW_IMAGES] if score == "iw" else test, score)
        mean, first = REPORTED_SCORES[score]
        assert values.mean() == pytest.approx(mean, abs=0.01), score
        assert values[:3] == pytest.approx(first, abs=0.01), score


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_the_shipped_models_carry_the_film_of_their_run(name):
    # retrained with the film on (a film never changes a run: the figures are the run's), thinned to the
    # preset's film_frames where it names one, so the shipped models stay in their budget
    ckpt = load_checkpoint(CHECKPOINTS / f"{name}.pt")
    assert ckpt.film is not None and 10 <= len(ckpt.film["frames"]) <= PRESETS[name].get("film_frames", 240)
    if ckpt.config.dataset == "sprites":  # its legend names the shapes (the digits' names are their numbers)
        assert tuple(ckpt.film["class_names"]) == SHAPES
    assert ckpt.metrics["test_nelbo"] == pytest.approx(REPORTED_NELBO[name], abs=0.01)

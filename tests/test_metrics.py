import dataclasses
import math

import numpy as np
import pytest
import torch

from vae_core import VAEError, load_checkpoint
from vae_core import metrics as M


@pytest.fixture(scope="module")
def model(tiny_checkpoint):
    return load_checkpoint(tiny_checkpoint).model


@pytest.fixture(scope="module")
def factors():
    """(5000, 3) random draws of 3 factors with 5, 8 and 10 values."""
    rng = np.random.default_rng(0)
    return np.stack([rng.integers(0, k, 5000) for k in (5, 8, 10)], axis=1)


def aligned_code(factors, noise=0.05, extra_dims=2, seed=1):
    """One code dimension per factor (its value plus small noise), then pure-noise dimensions."""
    rng = np.random.default_rng(seed)
    n = len(factors)
    aligned = factors + noise * rng.standard_normal(factors.shape)
    return np.concatenate([aligned, rng.standard_normal((n, extra_dims))], axis=1)


# --- MIG

def test_factor_aligned_code_has_high_mig(factors):
    out = M.mig(aligned_code(factors), factors)
    assert out["mig"] > 0.9
    assert len(out["per_factor"]) == 3 and min(out["per_factor"]) > 0.9
    assert np.array(out["mutual_info"]).shape == (5, 3) and out["n_bins"] == 20


def test_mutual_info_is_in_nats_and_matches_the_factor_entropy(factors):
    mi = np.array(M.mig(aligned_code(factors), factors)["mutual_info"])
    for k, values in enumerate((5, 8, 10)):  # near-uniform factors: H ≈ log(values) nats
        assert mi[k, k] == pytest.approx(math.log(values), abs=0.02)


def test_random_code_has_mig_near_zero(factors):
    codes = np.random.default_rng(2).standard_normal((len(factors), 5))
    assert M.mig(codes, factors)["mig"] < 0.05


def test_two_dimensions_copying_one_factor_leave_no_gap_for_it(factors):
    codes = aligned_code(factors)
    codes = np.concatenate([codes, codes[:, :1] + 0.01], axis=1)  # a second copy of factor 0
    per_factor = M.mig(codes, factors)["per_factor"]
    assert per_factor[0] < 0.05 and per_factor[1] > 0.9 and per_factor[2] > 0.9


def test_exact_small_case():
    v = np.array([[0], [1]] * 50)  # one binary factor: H = log 2
    codes = np.stack([v[:, 0].astype(float), np.zeros(100)], axis=1)  # a copy, and a constant dim
    out = M.mig(codes, v, n_bins=2)
    assert np.allclose(out["mutual_info"], [[math.log(2)], [0.0]])
    assert out["mig"] == pytest.approx(1.0)


def test_constant_factor_is_skipped(factors):
    with_constant = np.concatenate([factors, np.zeros((len(factors), 1), dtype=np.int64)], axis=1)
    codes = aligned_code(factors)
    out = M.mig(codes, with_constant)
    assert len(out["per_factor"]) == 4 and math.isnan(out["per_factor"][3])
    assert out["mig"] == pytest.approx(M.mig(codes, factors)["mig"])


def test_mig_is_deterministic(factors):
    codes = aligned_code(factors)
    assert M.mig(codes, factors) == M.mig(codes, factors)


@pytest.mark.parametrize("codes, factors, n_bins, match", [
    (np.zeros(10), np.zeros((10, 1), int), 20, "codes must be a 2-D"),
    (np.zeros((10, 2)), np.zeros(10, int), 20, "factors must be a 2-D"),
    (np.zeros((10, 2)), np.zeros((10, 1)), 20, "integer"),
    (np.zeros((10, 2)), np.zeros((9, 1), int), 20, "same number of rows"),
    (np.zeros((1, 2)), np.zeros((1, 1), int), 20, "at least 2 points"),
    (np.zeros((10, 1)), np.zeros((10, 1), int), 20, "at least 2 dimensions"),
    (np.zeros((10, 2)), np.zeros((10, 1), int), 1, "n_bins"),
    (np.full((10, 2), np.nan), np.zeros((10, 1), int), 20, "NaN"),
    (np.random.default_rng(0).random((10, 2)), np.zeros((10, 1), int), 20, "every factor is constant"),
])
def test_invalid_mig_inputs_raise(codes, factors, n_bins, match):
    with pytest.raises(VAEError, match=match):
        M.mig(codes, factors, n_bins=n_bins)


def test_checkpoint_mig_needs_factors(model, digits):
    with pytest.raises(VAEError, match="sprites"):
        M.checkpoint_mig(model, digits)


def test_checkpoint_mig_subsamples_with_a_seed(model, digits):
    noise = torch.randint(0, 3, digits.labels.shape, generator=torch.Generator().manual_seed(0))
    bundle = dataclasses.replace(digits, factors=torch.stack([digits.labels, noise], dim=1),
                                 factor_names=("digit", "noise"))
    out = M.checkpoint_mig(model, bundle, max_points=200, seed=3)
    assert out["n_points"] == 200 and out["factor_names"] == ["digit", "noise"]
    assert np.array(out["mutual_info"]).shape == (4, 2) and 0 <= out["mig"] <= 1
    assert out == M.checkpoint_mig(model, bundle, max_points=200, seed=3)


# --- linear probes

def test_balanced_order_gives_every_class_once_in_the_first_draw():
    labels = np.repeat(np.arange(10), [3, 50, 50, 50, 50, 50, 50, 50, 50, 2])
    order = M.balanced_order(labels, seed=0)
    assert sorted(order) == list(range(len(labels)))
    assert sorted(labels[order[:10]]) == list(range(10))
    counts = np.bincount(labels[order[:100]], minlength=10)
    assert counts[0] == 3 and counts[9] == 2 and counts[1:9].max() - counts[1:9].min() <= 1
    assert np.array_equal(order, M.balanced_order(labels, seed=0))
    assert not np.array_equal(order, M.balanced_order(labels, seed=1))


@pytest.fixture(scope="module")
def probed(model, digits):
    return M.probe(model, digits, label_counts=(10, 100, 5000), seed=0)


def test_probe_reports_three_accuracies_per_count(probed, digits):
    assert set(probed["labels"]) == {"10", "100", "5000"}
    assert probed["n_test"] == len(digits.test_idx) and probed["latent_dim"] == 4
    for row in probed["labels"].values():
        assert set(row) == {"latent_acc", "pixel_acc", "pca_acc", "n_train"}
        assert all(0 <= row[key] <= 1 for key in ("latent_acc", "pixel_acc", "pca_acc"))
    assert probed["labels"]["100"]["n_train"] == 100
    assert probed["labels"]["5000"]["n_train"] == len(digits.train_idx)  # capped at the split


def test_probe_beats_chance_and_is_deterministic(probed, model, digits):
    at_100 = probed["labels"]["100"]
    assert at_100["pixel_acc"] > 0.3 and at_100["pca_acc"] > 0.2 and at_100["latent_acc"] > 0.2
    assert probed == M.probe(model, digits, label_counts=(10, 100, 5000), seed=0)


def test_probe_repeats_average_over_seeds(model, digits):
    one = M.probe(model, digits, label_counts=(20,), seed=0)["labels"]["20"]
    two = M.probe(model, digits, label_counts=(20,), seed=1)["labels"]["20"]
    both = M.probe(model, digits, label_counts=(20,), seed=0, repeats=2)["labels"]["20"]
    for key in ("latent_acc", "pixel_acc", "pca_acc"):
        assert both[key] == pytest.approx((one[key] + two[key]) / 2)


def test_probe_needs_labels(model, digits):
    with pytest.raises(VAEError, match="labels"):
        M.probe(model, dataclasses.replace(digits, labels=None))


@pytest.mark.parametrize("changes, match", [
    (dict(label_counts=()), "empty"),
    (dict(label_counts=(1,)), ">= 2"),
    (dict(repeats=0), "repeats"),
])
def test_invalid_probe_arguments_raise(model, digits, changes, match):
    with pytest.raises(VAEError, match=match):
        M.probe(model, digits, **changes)

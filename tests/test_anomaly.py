import numpy as np
import pytest
import torch

from vae_core import VAEError, build_model, evaluate, load_checkpoint
from vae_core import anomaly as A
from vae_core.evaluate import EVAL_SEED

from .conftest import tiny_config


@pytest.fixture(scope="module")
def model(tiny_checkpoint):
    return load_checkpoint(tiny_checkpoint).model


@pytest.fixture(scope="module")
def test_digits(digits):
    return digits.split("test").images[:100]


@pytest.fixture(scope="module")
def noise(test_digits):
    return torch.rand(test_digits.shape, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("score", A.SCORES)
def test_each_score_is_finite_float64_per_image_and_seeded(model, test_digits, score):
    s = A.anomaly_scores(model, test_digits[:30], score, k=8, batch_size=7)
    assert s.shape == (30,) and s.dtype == np.float64 and np.isfinite(s).all() and (s > 0).all()
    assert np.array_equal(s, A.anomaly_scores(model, test_digits[:30], score, k=8, batch_size=7))


@pytest.mark.parametrize("score", A.SCORES)
def test_noise_scores_higher_than_real_digits(model, test_digits, noise, score):
    normal = A.anomaly_scores(model, test_digits, score, k=16)
    anomalous = A.anomaly_scores(model, noise, score, k=16)
    assert anomalous.mean() > normal.mean() + 5  # nats
    assert A.auroc(normal, anomalous) > 0.9


def test_recon_score_is_deterministic_and_independent_of_seed(model, test_digits):
    a = A.anomaly_scores(model, test_digits, "recon", seed=0)
    b = A.anomaly_scores(model, test_digits, "recon", seed=1, batch_size=9)
    assert np.allclose(a, b, atol=1e-4)


def test_nelbo_scores_average_to_evaluate(model, digits):
    x = digits.split("test").images
    scores = A.anomaly_scores(model, x, "nelbo", seed=EVAL_SEED, batch_size=500)
    assert scores.mean() == pytest.approx(evaluate(model, x)["nelbo"], rel=1e-5)


def test_iw_bound_is_tighter_than_one_sample(model, test_digits):
    k1 = A.iw_nll(model, test_digits, k=1).mean()
    k64 = A.iw_nll(model, test_digits, k=64).mean()
    nelbo = A.anomaly_scores(model, test_digits, "nelbo").mean()
    assert k64 < k1 and k64 < nelbo


def test_iw_with_one_sample_is_an_unbiased_nelbo(model, test_digits):
    # Same seed and batch => same z: the two differ only by a one-sample KL vs the analytic KL.
    diffs = np.stack([
        A.iw_nll(model, test_digits, k=1, seed=s, batch_size=100).numpy()
        - A.anomaly_scores(model, test_digits, "nelbo", seed=s, batch_size=100)
        for s in range(30)
    ])
    assert abs(diffs.mean()) < 4 * diffs.std() / np.sqrt(diffs.size)


def test_iw_chunks_samples_and_returns_float64(model, test_digits, monkeypatch):
    monkeypatch.setattr(A, "IW_DECODES_PER_PASS", 64)  # 6 samples per pass at batch_size=10
    chunked = A.iw_nll(model, test_digits[:20], k=25, batch_size=10)
    assert chunked.shape == (20,) and chunked.dtype == torch.float64 and torch.isfinite(chunked).all()
    monkeypatch.undo()
    whole = A.iw_nll(model, test_digits[:20], k=25, batch_size=10)
    assert (chunked - whole).abs().mean() < 0.5  # other noise, same estimate


def test_scores_work_for_a_gaussian_model(digits):
    model = build_model(tiny_config(likelihood="gaussian", sigma_mode="pixel"), (1, 8, 8), seed=0).eval()
    for score in A.SCORES:
        assert np.isfinite(A.anomaly_scores(model, digits.images[:5], score, k=4)).all()


def test_invalid_arguments_raise_vaeerror(model, test_digits):
    with pytest.raises(VAEError, match="nelbo, recon, iw"):
        A.anomaly_scores(model, test_digits, "likelihood")
    with pytest.raises(VAEError, match="k"):
        A.anomaly_scores(model, test_digits, "iw", k=0)
    with pytest.raises(VAEError, match="k"):
        A.iw_nll(model, test_digits, k=0)
    with pytest.raises(VAEError, match=r"\(N, 1, 8, 8\)"):
        A.anomaly_scores(model, torch.rand(3, 1, 28, 28))
    with pytest.raises(VAEError, match="no images"):
        A.anomaly_scores(model, torch.rand(0, 1, 8, 8))


def test_auroc_perfect_reversed_and_chance():
    assert A.auroc([0.1, 0.2, 0.3], [0.8, 0.9]) == 1.0
    assert A.auroc([0.8, 0.9], [0.1, 0.2, 0.3]) == 0.0
    assert A.auroc([1.0, 1.0], [1.0, 1.0]) == 0.5
    with pytest.raises(VAEError, match="at least one"):
        A.auroc([], [1.0])
    with pytest.raises(VAEError, match="NaN"):
        A.auroc([float("nan")], [1.0])


def test_roc_curve_points_run_from_corner_to_corner():
    fpr, tpr = A.roc_curve_points(np.array([0.1, 0.4, 0.35]), np.array([0.8, 0.3]))
    assert fpr.shape == tpr.shape and (fpr[0], tpr[0]) == (0.0, 0.0) and (fpr[-1], tpr[-1]) == (1.0, 1.0)
    assert (np.diff(fpr) >= 0).all() and (np.diff(tpr) >= 0).all()


def test_percentile_of():
    ref = np.arange(1.0, 11.0)  # 1..10
    assert A.percentile_of(5.0, ref) == 50.0
    assert A.percentile_of(0.0, ref) == 0.0
    assert A.percentile_of(10.0, ref) == 100.0
    assert A.percentile_of(5.5, ref) == 50.0
    with pytest.raises(VAEError, match="reference"):
        A.percentile_of(1.0, np.array([]))


def test_top_k_most_anomalous_first():
    scores = np.array([0.5, 3.0, -1.0, 2.0, 3.0])
    assert A.top_k(scores, 3).tolist() == [1, 4, 3]  # ties keep their order
    assert A.top_k(scores, 10).tolist() == [1, 4, 3, 0, 2]
    with pytest.raises(VAEError, match="k"):
        A.top_k(scores, 0)

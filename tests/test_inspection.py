"""Inspecting a latent space: exact neighbours against a brute-force reference, attribute directions of a
synthetic latent space with known attributes, per-pixel anomaly maps from the one objective, and the
flagged list's CSV naming files that exist."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vae_core import VAEError, load_checkpoint, load_dataset
from vae_core import inspection as I
from vae_core.anomaly import (
    anomaly_scores,
    checkpoint_pixel_maps,
    flagged_csv,
    pixel_cost_maps,
    score_folder,
    top_k,
)
from vae_core.losses import elbo_terms
from vae_core.train import Trainer

from .conftest import tiny_config


def codes(n=3000, d=6, seed=0):
    g = np.random.default_rng(seed)
    mu = g.standard_normal((n, d)).astype(np.float32) * 2
    logvar = g.uniform(-3, 0.5, (n, d)).astype(np.float32)
    return mu, logvar


def brute_force(mu, logvar, q_mu, q_logvar, metric):
    """Every distance in float64, sorted: the reference."""
    if metric == "euclidean":
        d = np.sqrt(((mu[None].astype(np.float64) - q_mu[:, None]) ** 2).sum(-1))
    else:
        va, vb = np.exp(q_logvar[:, None].astype(np.float64)), np.exp(logvar[None].astype(np.float64))
        d2 = (q_mu[:, None].astype(np.float64) - mu[None]) ** 2
        d = 0.5 * (va / vb + vb / va + d2 * (1 / va + 1 / vb) - 2).sum(-1)
    return np.argsort(d, axis=1, kind="stable"), np.sort(d, axis=1)


@pytest.mark.parametrize("metric", list(I.METRICS))
def test_neighbours_equal_brute_force(monkeypatch, metric):
    monkeypatch.setattr(I, "CHUNK_ROWS", 700)  # several chunks, the last a short one
    monkeypatch.setattr(I, "QUERY_BATCH", 16)
    mu, logvar = codes()
    q_mu, q_logvar = codes(40, seed=1)
    index = I.LatentIndex(mu, logvar)
    got_i, got_d = index.query(q_mu, 12, logvar=q_logvar, metric=metric)
    want_i, want_d = brute_force(mu, logvar, q_mu, q_logvar, metric)
    assert got_i.shape == (40, 12) and got_i.dtype == np.int64
    assert np.array_equal(got_i, want_i[:, :12])
    assert np.allclose(got_d, want_d[:, :12], rtol=1e-9, atol=1e-9)


def test_symmetric_kl_is_the_sum_of_both_kls():
    mu, logvar = codes(5)
    a = torch.distributions.Normal(torch.tensor(mu[0], dtype=torch.float64), torch.tensor(np.exp(0.5 * logvar[0])))
    b = torch.distributions.Normal(torch.tensor(mu[1], dtype=torch.float64), torch.tensor(np.exp(0.5 * logvar[1])))
    want = float((torch.distributions.kl_divergence(a, b) + torch.distributions.kl_divergence(b, a)).sum())
    assert I.symmetric_kl(mu[0], logvar[0], mu[1], logvar[1]) == pytest.approx(want, rel=1e-5)
    assert I.symmetric_kl(mu[0], logvar[0], mu[0], logvar[0]) == pytest.approx(0.0, abs=1e-12)


def test_a_point_is_its_own_nearest_unless_excluded():
    mu, logvar = codes(500)
    index = I.LatentIndex(mu, logvar)
    for metric in I.METRICS:
        i, d = index.query(mu[[7, 9]], 3, logvar=logvar[[7, 9]], metric=metric)
        assert i[:, 0].tolist() == [7, 9] and np.allclose(d[:, 0], 0, atol=1e-6)
        i, d = index.query(mu[[7, 9]], 3, logvar=logvar[[7, 9]], metric=metric, exclude=[7, 9])
        assert 7 not in i[0] and 9 not in i[1] and (d > 0).all()
        want = brute_force(mu, logvar, mu[[7]], logvar[[7]], metric)[0][0]
        assert i[0].tolist() == [int(v) for v in want[1:4]]


def test_symmetric_kl_ranks_unlike_euclidean():
    # a near mean with a sharp posterior is farther, in KL, than a farther mean with a broad one
    mu = np.array([[0.5, 0.0], [1.0, 0.0]], dtype=np.float32)
    logvar = np.log(np.array([[0.01, 0.01], [4.0, 4.0]], dtype=np.float32))
    index = I.LatentIndex(mu, logvar)
    q, q_lv = np.zeros((1, 2), np.float32), np.log(np.full((1, 2), 4.0, np.float32))
    assert index.query(q, 2)[0][0].tolist() == [0, 1]
    assert index.query(q, 2, logvar=q_lv, metric="symmetric-kl")[0][0].tolist() == [1, 0]


def test_neighbour_requests_that_cannot_be_answered_are_one_line():
    mu, _ = codes(10)
    index = I.LatentIndex(mu)
    assert index.metrics == ("euclidean",)
    with pytest.raises(VAEError, match="log-variances"):
        index.query(mu[0], 3, metric="symmetric-kl")
    with pytest.raises(VAEError, match="unknown distance"):
        index.query(mu[0], 3, metric="cosine")
    with pytest.raises(VAEError, match=r"\(N, 6\)"):
        index.query(np.zeros(4), 3)
    with pytest.raises(VAEError, match="k must be"):
        index.query(mu[0], 0)
    i, d = index.query(mu[0], 50, exclude=[0])  # more than there are: all the others
    assert sorted(i[0].tolist()) == list(range(1, 10))
    with pytest.raises(VAEError, match="no codes"):
        I.LatentIndex(np.zeros((0, 3)))


# --- directions


def synthetic_space(n=6000, d=8, correlation=0.9, seed=0):
    """Codes whose attribute A moves z along e0 (+2) and a confounder B along e1 (+2); B goes with A
    in `correlation` of the images."""
    g = np.random.default_rng(seed)
    a = g.random(n) < 0.5
    b = np.where(g.random(n) < correlation, a, ~a)
    z = g.standard_normal((n, d)) * 0.5
    z[:, 0] += 2 * a
    z[:, 1] += 2 * b
    return z.astype(np.float32), a, b


def cosine(u, v):
    return float(np.dot(u, v) / np.linalg.norm(u) / np.linalg.norm(v))


def test_class_mean_difference_recovers_an_independent_attribute():
    z, a, _ = synthetic_space(correlation=0.5)  # B independent of A
    v = I.class_direction(z, a)
    assert cosine(v, np.eye(8)[0]) > 0.99 and abs(v[0] - 2) < 0.1


def test_bias_correction_removes_a_correlated_label():
    z, a, b = synthetic_space(correlation=0.9)
    naive = I.class_direction(z, a)
    corrected = I.class_direction(z, a, confounders=b)
    assert cosine(naive, np.eye(8)[0]) < 0.8  # the naive vector carries B (about 1.6 along e1)
    assert naive[1] > 1.2
    assert cosine(corrected, np.eye(8)[0]) > 0.99 and abs(corrected[1]) < 0.15
    assert abs(corrected[0] - 2) < 0.15


def test_class_a_to_class_b():
    g = np.random.default_rng(0)
    labels = g.integers(0, 3, 3000)
    centres = np.array([[0, 0, 0], [3, 0, 0], [0, 0, -2]], dtype=np.float32)
    z = centres[labels] + 0.3 * g.standard_normal((3000, 3)).astype(np.float32)
    v = I.class_direction(z, labels == 2, labels == 1)
    assert np.allclose(v, centres[2] - centres[1], atol=0.05)
    with pytest.raises(VAEError, match="both sides"):
        I.class_direction(z, labels == 5)
    with pytest.raises(VAEError, match="one value per code"):
        I.class_direction(z, labels[:10] == 1)


def test_named_directions_from_labels_and_factors():
    g = np.random.default_rng(0)
    n = 4000
    shape = g.integers(0, 3, n)
    scale = g.integers(0, 6, n)
    z = 0.3 * g.standard_normal((n, 5)).astype(np.float32)
    z[:, 0] += shape == 1
    z[:, 3] += 0.5 * scale
    factors = np.stack([shape, scale], 1)
    dirs = I.attribute_directions(z, labels=shape, class_names=("square", "ellipse", "heart"), factors=factors,
                                  factor_names=("shape", "scale"),
                                  factor_values=(("square", "ellipse", "heart"), (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)))
    names = [d.name for d in dirs]
    assert names == ["more like a square", "more like an ellipse", "more like a heart", "larger"]
    assert int(np.argmax(np.abs(dirs[1].vector))) == 0
    assert int(np.argmax(np.abs(dirs[3].vector))) == 3 and dirs[3].vector[3] > 1
    assert "bias-corrected for shape" in dirs[3].note
    moved = I.move_along(np.zeros(5), dirs[3].vector, 2.0)
    assert np.allclose(moved, 2 * dirs[3].vector)
    digits = I.attribute_directions(z, labels=scale, class_names=tuple(str(v) for v in range(6)))
    assert digits[5].name == "more like a 5" and I._article("8") == "an"


# --- anomaly maps and the flagged list


@pytest.fixture(scope="module")
def model(tiny_checkpoint):
    return load_checkpoint(tiny_checkpoint).model


def test_pixel_maps_are_the_objectives_map(model, digits):
    x = digits.split("test").images[:20]
    maps = pixel_cost_maps(model, x, batch_size=7, seed=3)
    assert maps.shape == x.shape and (maps >= 0).all()  # Bernoulli: −log p ≥ 0 per pixel
    g = torch.Generator().manual_seed(3)
    want = torch.cat([elbo_terms(model, c, model(c, g), recon_map=True).recon_map for c in x.split(7)])
    assert torch.allclose(maps, want)
    with torch.no_grad():
        g = torch.Generator().manual_seed(3)
        recon = torch.cat([elbo_terms(model, c, model(c, g)).recon for c in x.split(7)])
    assert torch.allclose(maps.flatten(1).sum(1), recon, rtol=1e-5)  # each map sums to its reconstruction term
    noise = torch.rand(x.shape, generator=torch.Generator().manual_seed(0))
    assert pixel_cost_maps(model, noise).sum() > maps.sum() * 1.2  # noise costs more, pixel by pixel
    with pytest.raises(VAEError, match="images must be"):
        pixel_cost_maps(model, torch.zeros(2, 1, 5, 5))


def test_folder_flagged_csv_lists_files_that_exist(tmp_path):
    root = tmp_path / "shapes"
    g = np.random.default_rng(0)
    for cls in ("plain", "noisy"):
        (root / cls).mkdir(parents=True)
        for i in range(15):
            pixels = g.integers(0, 255, (12, 12), dtype=np.uint8) if cls == "noisy" else np.full((12, 12), 40, np.uint8)
            Image.fromarray(pixels).save(root / cls / f"{i:02d}.png")
    bundle = load_dataset(f"folder:{root}", image_size=12, channels=1)
    assert len(bundle.paths) == len(bundle.images) == 30
    assert all(Path(p).is_file() for p in bundle.paths)
    assert [Path(p).parent.name for p in bundle.paths] == [bundle.class_names[c] for c in bundle.labels]
    test = bundle.split("test")
    assert test.paths == tuple(bundle.paths[i] for i in bundle.test_idx.tolist())

    out = tmp_path / "m.pt"
    Trainer(tiny_config(dataset=f"folder:{root}", image_size=12, channels=1, epochs=1, batch_size=8),
            bundle=bundle, out_path=out).fit()
    ckpt = load_checkpoint(out)
    scores = anomaly_scores(ckpt.model, test.images, "recon")
    flagged = top_k(scores, 3)
    text = flagged_csv(flagged, scores, paths=test.paths, labels=test.labels, class_names=bundle.class_names)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["path"] for r in rows] == [test.paths[i] for i in flagged]
    assert all(Path(r["path"]).is_file() for r in rows)
    assert [float(r["score"]) for r in rows] == pytest.approx(scores[flagged], abs=1e-3)
    assert float(rows[0]["percentile"]) == 100.0
    assert [r["label"] for r in rows] == [bundle.class_names[int(test.labels[i])] for i in flagged]
    maps = checkpoint_pixel_maps(ckpt, test.images[torch.as_tensor(flagged.copy())])
    assert maps.shape == (3, 1, 12, 12)
    whole, every = score_folder(ckpt, root, "recon")  # "score a folder": all 30, each named by its file
    assert len(every) == 30 and whole.paths == bundle.paths
    assert np.allclose(every, anomaly_scores(ckpt.model, bundle.images, "recon"))


def test_flagged_csv_of_built_in_data_has_no_paths():
    text = flagged_csv([2, 0], [1.0, 2.0, 3.0], labels=np.array([4, 5, 6]))
    assert text.splitlines() == ["path,index,score,percentile,label", ",2,3.0000,100.00,6", ",0,1.0000,33.33,4"]
    with pytest.raises(VAEError, match="outside"):
        flagged_csv([3], [1.0, 2.0, 3.0])


def test_cost_overlay_is_red_where_the_cost_is():
    from vae_core.images import cost_overlay

    images = torch.full((2, 1, 4, 4), 0.5)
    costs = torch.zeros(2, 1, 4, 4)
    costs[0, 0, 1, 2] = 8.0
    overlays, top = cost_overlay(images, costs, top=4.0)
    assert overlays.shape == (2, 3, 4, 4) and top == 4.0
    hot, cold = overlays[0, :, 1, 2], overlays[0, :, 0, 0]
    assert hot[0] > 0.85 and hot[1] < 0.2 and torch.allclose(cold, torch.full((3,), 0.55))
    assert torch.allclose(overlays[1], torch.full((3, 4, 4), 0.55))  # no cost: the dimmed image
    with pytest.raises(VAEError, match="costs must have"):
        cost_overlay(images, costs[:, :, :2])


def test_the_inspect_benchmark_gives_its_figures():
    from benchmarks.__main__ import QUICK, run
    from benchmarks.inspect_speed import neighbours

    r = neighbours(2000, (4,), k=5, queries=5)
    assert r["neighbours_codes"] == 2000
    for name in ("euclidean", "kl"):
        assert 0 < r[f"neighbours_{name}_ms_p50_d4"] <= r[f"neighbours_{name}_ms_p95_d4"] <= r["neighbours_ms_p95"]
    assert r["neighbours_index_build_ms_d4"] > 0 and r["directions_ms_d4"] > 0
    full = run(QUICK, ("inspect",), "cpu")  # the section as `python -m benchmarks --only inspect` runs it
    assert full["neighbours_codes"] == 100_000 and "neighbours_ms_p95" in full["targets"]


def test_sprite_sheet_tiles_every_image_by_index_and_shrinks_to_fit():
    from vae_core.images import sprite_sheet

    images = torch.rand(7, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    png, cols, side = sprite_sheet(images)
    pixels = np.asarray(Image.open(io.BytesIO(png)), dtype=np.float32) / 255
    assert (cols, side) == (3, 8) and pixels.shape == (24, 24, 3)
    for i in range(7):
        r, c = divmod(i, cols)
        assert np.abs(pixels[r * 8:(r + 1) * 8, c * 8:(c + 1) * 8] - images[i].permute(1, 2, 0).numpy()).max() < 0.003
    _, cols, side = sprite_sheet(torch.ones(100, 1, 8, 8), max_side=40)  # 10 a row would need 80 px: 4-px tiles
    assert (cols, side) == (10, 4)
    with pytest.raises(VAEError, match="square"):
        sprite_sheet(torch.ones(2, 1, 8, 6))

"""Maps that scale: encoding in bounded batches, the sampled first view, background projection jobs
(progress, disk cache, cancel, failure as a message) and the Latent map page with 20,000 codes.

UMAP is fitted only on a few hundred points here (its first fit in a process compiles numba code)."""

from __future__ import annotations

import base64
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

import vae_core.projection as P
from tests.test_projection import blobs, nearest_centroid_accuracy
from vae_core import VAEError, load_checkpoint
from vae_core.data import DataBundle
from vae_core.latent import ENCODE_BATCH, ENCODE_BATCH_BYTES, encode, encode_batch_size
from vae_core.models import VAE

ROOT = Path(__file__).resolve().parents[1]


# ---- encoding in batches


def test_encode_batches_are_bounded_in_count_and_bytes():
    assert encode_batch_size((1, 28, 28)) == ENCODE_BATCH
    big = encode_batch_size((3, 512, 512))
    assert 1 <= big < ENCODE_BATCH and big * 4 * 3 * 512 * 512 <= ENCODE_BATCH_BYTES
    assert encode_batch_size((3, 8192, 8192)) == 1  # one image over the byte bound still goes through


def test_encode_takes_a_tensor_or_any_iterable_of_batches(tiny_checkpoint, digits):
    model = load_checkpoint(tiny_checkpoint).model
    x = digits.images[:300]
    mu, logvar = encode(model, x)
    mu_b, logvar_b = encode(model, (chunk for chunk in x.split(64)))
    mu_l, _ = encode(model, torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, x[:, 0, 0, 0]), 100))
    assert mu.dtype == torch.float32 and mu.device.type == "cpu" and mu.shape == (300, 4)
    assert torch.allclose(mu, mu_b, atol=1e-6) and torch.allclose(logvar, logvar_b, atol=1e-6)
    assert torch.allclose(mu, mu_l, atol=1e-6)
    assert encode(model, iter([]))[0].shape == (0, 4)


# ---- the sampled first view


@pytest.fixture(scope="module")
def many_blobs():
    return blobs(n_per=400)  # 1,200 codes (3 blobs, D = 8)


@pytest.fixture(scope="module")
def sampled_umap(many_blobs):
    codes, _ = many_blobs
    return P.sampled_projection(codes, "umap", sample_size=300, seed=1)


def test_sampled_umap_places_every_code_and_keeps_the_sample_where_it_was_fitted(many_blobs, sampled_umap):
    codes, labels = many_blobs
    proj = sampled_umap
    assert proj.coords.shape == (1200, 2) and proj.coords.dtype == np.float32 and np.isfinite(proj.coords).all()
    assert proj.params["sample"] == 300 and proj.params["cached"] is False and proj.method == "umap"
    rows = np.sort(np.random.default_rng(1).choice(1200, size=300, replace=False))
    alone = P.project(codes[rows], "umap", seed=1)
    assert np.allclose(proj.coords[rows], alone.coords)  # the sample is the same fit, seeded
    assert nearest_centroid_accuracy(proj.coords, labels) == 1.0  # the other 900 land in their blob
    assert proj.inverse(proj.coords[:3]).shape == (3, 8)  # no reducer kept: the kNN inverse


def test_sampled_tsne_places_the_rest_by_nearest_sampled_codes(many_blobs):
    codes, labels = many_blobs
    proj = P.sampled_projection(codes, "tsne", sample_size=200, perplexity=20.0)
    assert proj.params["sample"] == 200 and proj.coords.shape == (1200, 2)
    assert nearest_centroid_accuracy(proj.coords, labels) == 1.0


def test_a_set_no_larger_than_the_sample_is_projected_whole():
    codes, _ = blobs(n_per=50)
    whole = P.sampled_projection(codes, "pca", sample_size=150)
    assert "sample" not in whole.params and np.array_equal(whole.coords, P.project(codes, "pca").coords)
    with pytest.raises(VAEError, match="sample_size"):
        P.sampled_projection(codes, "pca", sample_size=2)
    with pytest.raises(VAEError, match="projection method"):
        P.sampled_projection(codes, "mds")


# ---- background jobs


def test_umap_reports_its_epochs(many_blobs):
    codes, _ = many_blobs
    heard = []
    P.project(codes[:200], "umap", progress=lambda done, total: heard.append((done, total)))
    assert heard and heard[-1][0] == heard[-1][1] > 0  # the last report is the last epoch
    assert [d for d, _ in heard] == sorted(d for d, _ in heard)


def test_job_shows_a_sampled_view_then_the_full_map_cached_on_disk(many_blobs, tmp_path):
    codes, labels = many_blobs
    job = P.ProjectionJob(codes, "umap", sample_size=300, seed=1, cache_dir=tmp_path, cache_key="ck")
    status = job.start().join(timeout=300)
    assert status.done and status.error is None and not status.cancelled
    assert status.progress == 1.0 and status.step_number == status.steps == 2
    assert status.quick is not None and status.quick.params["sample"] == 300
    assert status.result.coords.shape == (1200, 2) and status.result.params["cached"] is False
    assert nearest_centroid_accuracy(status.result.coords, labels) == 1.0
    assert [p.name.split("-")[:2] for p in tmp_path.glob("*.npy")] == [["ck", "umap"]]

    again = P.ProjectionJob(codes, "umap", sample_size=300, seed=1, cache_dir=tmp_path, cache_key="ck").start()
    status = again.status()  # read from disk in start(), no thread
    assert status.done and status.result.params["cached"] is True and status.quick is None
    assert np.array_equal(status.result.coords, job.status().result.coords)


def test_job_waits_its_turn_and_can_be_cancelled(many_blobs, tmp_path):
    codes, _ = many_blobs
    with P._one_job_at_a_time:  # another job is running
        job = P.ProjectionJob(codes, "tsne", cache_dir=tmp_path, cache_key="ck").start()
        assert not job.join(timeout=1.0).done
        assert "waiting for another projection" in job.status().step
        job.cancel()
        status = job.join(timeout=10)
    assert status.cancelled and status.result is None and not list(tmp_path.iterdir())


def test_job_failure_is_a_message_and_bad_input_fails_at_once(many_blobs):
    codes, _ = many_blobs
    # valid for the 1,200 codes, not for the 100 of the sample: the thread's error reaches the status
    status = P.ProjectionJob(codes, "tsne", sample_size=100, perplexity=150.0).start().join(timeout=60)
    assert status.done and status.result is None and "perplexity must be less than" in status.error
    with pytest.raises(VAEError, match="n_neighbors"):
        P.ProjectionJob(codes, "umap", n_neighbors=1)


# ---- the Latent map page with 20,000 codes


def twenty_thousand(real: DataBundle) -> DataBundle:
    """mnist5k's images repeated into a 20,000-image test split (and 1,000 for training)."""
    rows = torch.arange(21_000) % len(real.images)
    return DataBundle("mnist5k", real.images[rows], real.labels[rows], torch.arange(20_000, 21_000),
                      torch.arange(20_000), class_names=real.class_names)


def chart_points(at: AppTest) -> int:
    """Points drawn by the page's Plotly charts (their x arrays, as the browser gets them)."""
    total = 0
    for chart in at.get("plotly_chart"):
        for trace in json.loads(chart.proto.spec)["data"]:
            x = trace["x"]  # a base64 typed array, as plotly writes NumPy arrays
            total += len(base64.b64decode(x["bdata"])) // np.dtype(x["dtype"]).itemsize
    return total


@pytest.fixture
def big_map_app(checkpoint_dir, models, mnist5k, monkeypatch):
    """The map page on a z=4 model whose test split holds 20,000 images, counting encoder batches."""
    import ui.loaders

    monkeypatch.setattr("vae_core.data.load_dataset", lambda *a, **k: twenty_thousand(mnist5k))
    ui.loaders._load_data.clear()
    batches = []
    encode_batch = VAE.encode

    def counted(self, x):
        batches.append(len(x))
        return encode_batch(self, x)

    monkeypatch.setattr(VAE, "encode", counted)
    shutil.copyfile(models["z4"], checkpoint_dir / models["z4"].name)
    yield AppTest.from_file(str(ROOT / "app.py"), default_timeout=120), batches
    ui.loaders._load_data.clear()


def test_map_of_20000_codes_draws_them_all_from_batched_encoding(big_map_app):
    at, batches = big_map_app
    at.run()
    assert not at.exception and not at.error
    encoded = len(batches)  # the split's 40 batches of at most 512, and the odd single image (the live decoder's)
    assert sum(batches) >= 20_000 and encoded <= math.ceil(20_000 / ENCODE_BATCH) + 4 and max(batches) == ENCODE_BATCH
    assert chart_points(at) == 20_000
    assert "PCA of the 20,000 test codes" in at.caption[0].value

    with P._one_job_at_a_time:  # a projection elsewhere holds the CPU: the job waits, the page does not
        at.selectbox(key="map_method").set_value("umap").run()
        assert not at.exception and not at.error
        assert at.caption[0].value.startswith("First view: PCA of the 20,000 test codes")
        progress = at.get("progress")
        assert len(progress) == 1 and "waiting for another projection" in progress[0].proto.text
        assert chart_points(at) == 20_000
        at.session_state["map_job"].cancel()
    assert len(batches) == encoded  # the codes were encoded once


def test_map_shows_the_full_projection_when_the_background_job_ends(checkpoint_dir, models, monkeypatch):
    monkeypatch.setattr(P, "LARGE_MAP", 500)  # the 1,000 test codes count as a large map
    shutil.copyfile(models["z4"], checkpoint_dir / models["z4"].name)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    at.selectbox(key="map_method").set_value("tsne").run()
    assert not at.exception and not at.error
    assert at.caption[0].value.startswith("First view: PCA of the 1,000 test codes")
    status = at.session_state["map_job"].join(timeout=300)
    assert status.result is not None and status.steps == 1  # 1,000 codes: no sample needed
    at.run()
    assert not at.get("progress") and not at.exception
    assert at.caption[0].value.startswith("t-SNE of the 1,000 test codes")
    assert len(list((checkpoint_dir / "projections").glob("*-tsne-*.npy"))) == 1

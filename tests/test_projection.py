"""2-D projections of latent codes: PCA, t-SNE and UMAP maps, their inverses, the disk cache, CSV export.

UMAP's first fit and first inverse in a process compile numba code (tens of seconds on a small CPU),
so UMAP is fitted only in one module-scoped fixture, on 300 points.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import subprocess
import sys

import numpy as np
import pytest

import vae_core.projection as P
from vae_core.errors import VAEError
from vae_core.library import checkpoint_cache_key
from vae_core.projection import Projection, coords_csv, offered_methods, project

D = 8


def blobs(n_per: int = 100, d: int = D, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three Gaussian blobs (unit variance) whose centres are 10·e_k, about 14 apart:
    codes (3·n_per, d) float32 and labels (3·n_per,)."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(3), n_per)
    codes = 10.0 * np.eye(3, d)[labels] + rng.normal(size=(3 * n_per, d))
    return codes.astype(np.float32), labels


def separation(coords: np.ndarray, labels: np.ndarray) -> float:
    """Smallest distance between cluster centroids over the largest rms distance to a centroid."""
    centroids = np.stack([coords[labels == k].mean(0) for k in range(3)])
    spread = max(np.sqrt(((coords[labels == k] - centroids[k]) ** 2).sum(1).mean()) for k in range(3))
    gaps = [np.linalg.norm(centroids[i] - centroids[j]) for i in range(3) for j in range(i + 1, 3)]
    return min(gaps) / spread


def nearest_centroid_accuracy(coords: np.ndarray, labels: np.ndarray) -> float:
    centroids = np.stack([coords[labels == k].mean(0) for k in range(3)])
    predicted = np.linalg.norm(coords[:, None] - centroids[None], axis=2).argmin(1)
    return float((predicted == labels).mean())


def nearest_blob(z: np.ndarray) -> np.ndarray:
    """Which blob centre 10·e_k each latent code (M, D) lies closest to."""
    return np.linalg.norm(z[:, None] - 10.0 * np.eye(3, D)[None], axis=2).argmin(1)


SMALL = blobs(n_per=10)[0]  # 30 points


@pytest.fixture(scope="module")
def codes_labels():
    return blobs()


# ---- PCA -----------------------------------------------------------------------------------------


def test_pca_shapes_dtypes_and_params(codes_labels):
    codes, _ = codes_labels
    proj = project(codes, "pca", seed=3)
    assert isinstance(proj, Projection)
    assert proj.coords.shape == (300, 2) and proj.coords.dtype == np.float32
    assert proj.method == "pca" and proj.params == {"seed": 3, "cached": False}
    assert proj.seconds >= 0 and proj.fitted is not None
    assert proj.inverse(proj.coords[:5]).shape == (5, D)
    assert proj.inverse(proj.coords[:5]).dtype == np.float32
    assert proj.inverse(proj.coords[0]).shape == (1, D)  # a single (2,) point


def test_pca_keeps_separated_blobs_separated(codes_labels):
    codes, labels = codes_labels
    coords = project(codes, "pca").coords
    assert separation(coords, labels) > 4
    assert nearest_centroid_accuracy(coords, labels) == 1.0


def test_pca_inverse_is_the_rank_2_reconstruction(codes_labels):
    codes, _ = codes_labels
    proj = project(codes, "pca")
    x = codes.astype(np.float64)
    mean = x.mean(0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    reconstruction = mean + (x - mean) @ vt[:2].T @ vt[:2]
    np.testing.assert_allclose(proj.inverse(proj.coords), reconstruction, atol=1e-4)
    assert np.abs(reconstruction - x).max() > 1  # the check above is not trivially the identity


@pytest.mark.parametrize("d", [1, 2, D])
def test_linear_maps_hand_a_browser_their_affine_transform(d):
    codes = np.random.default_rng(1).normal(size=(60, d)).astype(np.float32) * np.arange(1, d + 1)
    new = np.random.default_rng(2).normal(size=(5, d)).astype(np.float32)
    for method in ("pca", "latent") if d == 2 else ("pca",):
        proj = project(codes, method)
        offset, matrix = proj.linear_transform()
        assert offset.shape == (2,) and matrix.shape == (2, d)
        np.testing.assert_allclose(offset + new @ matrix.T, proj.transform(new), atol=1e-4)
    if d == D:
        assert project(codes, "tsne", perplexity=5).linear_transform() is None


def test_pca_on_a_1d_latent_pads_a_zero_column():
    codes = np.random.default_rng(0).normal(size=(50, 1)).astype(np.float32)
    proj = project(codes, "pca")
    assert proj.coords.shape == (50, 2)
    np.testing.assert_array_equal(proj.coords[:, 1], 0)
    np.testing.assert_allclose(proj.inverse(proj.coords), codes, atol=1e-5)


# ---- t-SNE ---------------------------------------------------------------------------------------


def test_tsne_map_and_knn_inverse():
    codes, labels = blobs(n_per=67)  # 201 points
    proj = project(codes, "tsne", perplexity=20.0)
    assert proj.coords.shape == (201, 2) and proj.coords.dtype == np.float32
    assert np.isfinite(proj.coords).all()
    assert proj.params == {"perplexity": 20.0, "seed": 0, "cached": False}
    assert nearest_centroid_accuracy(proj.coords, labels) == 1.0
    z = proj.inverse(proj.coords[[0, 100, 200]])
    assert z.shape == (3, D) and np.isfinite(z).all()
    # a map point on top of a projected point gets (almost exactly) that point's code
    np.testing.assert_allclose(z, codes[[0, 100, 200]], atol=1e-4)
    # between points, the code is a weighted mean of neighbours: it stays in the right blob
    nudged = proj.coords[[0, 100, 200]] + 0.1
    np.testing.assert_array_equal(nearest_blob(proj.inverse(nudged)), [0, 1, 2])


# ---- UMAP (the only fits: one module-scoped fixture) ---------------------------------------------


@pytest.fixture(scope="module")
def umap_runs(codes_labels, tmp_path_factory):
    """Two UMAP fits with the same seed (the first writes the cache), then a cache hit."""
    codes, _ = codes_labels
    cache_dir = tmp_path_factory.mktemp("umap-cache")
    first = project(codes, "umap", seed=0, cache_dir=cache_dir, cache_key="ck")
    second = project(codes, "umap", seed=0)
    hit = project(codes, "umap", seed=0, cache_dir=cache_dir, cache_key="ck")
    return {"first": first, "second": second, "hit": hit, "cache_dir": cache_dir}


def test_umap_map_is_finite_separated_and_deterministic(umap_runs, codes_labels):
    _, labels = codes_labels
    first, second = umap_runs["first"], umap_runs["second"]
    assert first.coords.shape == (300, 2) and first.coords.dtype == np.float32
    assert np.isfinite(first.coords).all()
    assert first.params == {"n_neighbors": 15, "min_dist": 0.1, "seed": 0, "cached": False}
    np.testing.assert_array_equal(first.coords, second.coords)
    assert nearest_centroid_accuracy(first.coords, labels) == 1.0


def test_umap_inverse_maps_back_into_the_right_blob(umap_runs, codes_labels):
    codes, labels = codes_labels
    first = umap_runs["first"]
    assert first.fitted is not None  # umap's own inverse_transform is used
    z = first.inverse(first.coords[[0, 150, 299]])
    assert z.shape == (3, D) and z.dtype == np.float32 and np.isfinite(z).all()
    np.testing.assert_array_equal(nearest_blob(z), labels[[0, 150, 299]])


def test_umap_cache_hit_falls_back_to_knn_inverse(umap_runs, codes_labels):
    codes, labels = codes_labels
    hit, first = umap_runs["hit"], umap_runs["first"]
    assert hit.params["cached"] is True and hit.fitted is None
    np.testing.assert_array_equal(hit.coords, first.coords)
    z = hit.inverse(hit.coords[[0, 150, 299]])
    assert z.shape == (3, D) and np.isfinite(z).all()
    np.testing.assert_allclose(z, codes[[0, 150, 299]], atol=1e-4)


def test_the_inverse_says_how_it_maps_points_back(umap_runs, tmp_path):
    assert umap_runs["first"].inverse_in_words() == "UMAP's inverse transform"
    assert umap_runs["hit"].inverse_in_words() == "nearest encoded neighbours"  # no reducer on disk
    tsne = project(SMALL, "tsne", perplexity=5.0)
    assert tsne.inverse_in_words() == "nearest encoded neighbours (t-SNE has no inverse)"
    project(SMALL, "pca", cache_dir=tmp_path, cache_key="ck")
    hit = project(SMALL, "pca", cache_dir=tmp_path, cache_key="ck")
    assert hit.fitted is None and hit.inverse_in_words().startswith("the exact PCA inverse")
    assert hit.fitted is not None  # refitted, as its inverse will be
    assert project(SMALL[:, :2], "latent").inverse_in_words() == "the latent plane itself"


def test_umap_cache_file_depends_on_n_neighbors(umap_runs, codes_labels):
    codes, _ = codes_labels
    cache_dir = umap_runs["cache_dir"]
    assert len(list(cache_dir.glob("ck-umap-*.npy"))) == 1
    other = project(codes, "umap", n_neighbors=10, seed=0, cache_dir=cache_dir, cache_key="ck")
    assert other.params["cached"] is False
    assert len(list(cache_dir.glob("ck-umap-*.npy"))) == 2


# ---- disk cache ----------------------------------------------------------------------------------


def test_cache_hit_returns_identical_coords(codes_labels, tmp_path):
    codes, _ = codes_labels
    first = project(codes, "pca", cache_dir=tmp_path, cache_key="ck")
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].name.startswith("ck-pca-") and files[0].suffix == ".npy"
    hit = project(codes, "pca", cache_dir=tmp_path, cache_key="ck")
    assert first.params["cached"] is False and hit.params["cached"] is True
    np.testing.assert_array_equal(hit.coords, first.coords)
    assert hit.fitted is None  # refitted on demand by inverse
    np.testing.assert_allclose(hit.inverse(hit.coords[:10]), first.inverse(first.coords[:10]), atol=1e-5)


def test_cache_file_depends_on_the_key_seed_and_shape_not_the_codes_bytes(codes_labels, tmp_path):
    codes, _ = codes_labels
    project(codes, "pca", cache_dir=tmp_path, cache_key="ck")
    noisy = codes + np.float32(1e-6) * np.sign(codes)  # the same codes encoded on another machine
    assert project(noisy, "pca", cache_dir=tmp_path, cache_key="ck").params["cached"] is True
    assert project(codes, "pca", seed=1, cache_dir=tmp_path, cache_key="ck").params["cached"] is False
    assert project(codes[:-1], "pca", cache_dir=tmp_path, cache_key="ck").params["cached"] is False
    assert project(codes, "pca", cache_dir=tmp_path, cache_key="ck.train").params["cached"] is False
    assert len(list(tmp_path.glob("ck-pca-*.npy"))) == 3 and len(list(tmp_path.glob("ck.train-pca-*.npy"))) == 1
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temp files


@pytest.mark.parametrize(("method", "params", "written"), [
    ("pca", {}, {"seed": 0}),
    ("umap", {"n_neighbors": 10}, {"n_neighbors": 10, "min_dist": 0.1, "seed": 0}),
    ("tsne", {"perplexity": 12}, {"perplexity": 12.0, "seed": 0}),
])
def test_cache_file_names_are_the_ones_shipped_projections_carry(method, params, written):
    """The name hashes the method, its parameters (ints stay ints, floats floats), N and D, as when
    checkpoints/projections was named: change it and shipped maps are refitted."""
    from vae_core.projection import cached_projection

    spec = {"method": method, **written, "n": 30, "d": D}
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
    _, used, path = P._prepared(SMALL, method, cache_dir="somewhere", cache_key="ck", **params)
    assert used == written and path.name == f"ck-{method}-{digest}.npy"
    assert cached_projection(SMALL, method, cache_dir="somewhere", cache_key="ck", **params) is None


def _garbage(path):
    path.write_bytes(b"not a numpy file")


def _truncated(path):
    path.write_bytes(path.read_bytes()[:100])


def _wrong_shape(path):
    np.save(path, np.zeros((7, 3), dtype=np.float32))


def _not_finite(path):
    coords = np.load(path)
    coords[0, 0] = np.nan
    np.save(path, coords)


@pytest.mark.parametrize("damage", [_garbage, _truncated, _wrong_shape, _not_finite])
def test_corrupt_cache_file_is_recomputed(codes_labels, tmp_path, damage):
    codes, _ = codes_labels
    first = project(codes, "pca", cache_dir=tmp_path, cache_key="ck")
    (path,) = tmp_path.glob("ck-pca-*.npy")
    damage(path)
    again = project(codes, "pca", cache_dir=tmp_path, cache_key="ck")
    assert again.params["cached"] is False
    np.testing.assert_array_equal(again.coords, first.coords)
    assert project(codes, "pca", cache_dir=tmp_path, cache_key="ck").params["cached"] is True


# ---- the latent plane itself ---------------------------------------------------------------------


def test_latent_method_is_the_identity_for_2d_codes(tmp_path):
    codes = np.random.default_rng(0).normal(size=(20, 2)).astype(np.float32)
    proj = project(codes, "latent", cache_dir=tmp_path, cache_key="ck")
    np.testing.assert_array_equal(proj.coords, codes)
    points = np.array([[0.5, -1.0], [2.0, 3.0]], dtype=np.float32)
    np.testing.assert_array_equal(proj.inverse(points), points)
    assert not list(tmp_path.iterdir())  # nothing to cache


def test_latent_method_is_refused_for_other_dimensions(codes_labels):
    codes, _ = codes_labels
    with pytest.raises(VAEError, match="latent.*D = 8"):
        project(codes, "latent")


# ---- validation: one check per case --------------------------------------------------------------


@pytest.mark.parametrize(("method", "kwargs", "match"), [
    ("isomap", {}, r"projection method must be one of pca, umap, tsne \(or latent for a 2-D latent\) \(got 'isomap'\)"),
    ("PCA", {}, "method must be one of"),
    ("umap", {"n_neighbors": 1}, "n_neighbors must be an integer from 2 to 200"),
    ("umap", {"n_neighbors": 201}, "n_neighbors must be an integer from 2 to 200"),
    ("umap", {"n_neighbors": 5.0}, "n_neighbors must be an integer"),
    ("umap", {"n_neighbors": True}, "n_neighbors must be an integer"),
    ("umap", {"n_neighbors": 30}, "n_neighbors must be less than the number of points, 30"),
    ("umap", {"min_dist": -0.1}, "min_dist must be a number from 0 to 1"),
    ("umap", {"min_dist": 1.5}, "min_dist must be a number from 0 to 1"),
    ("umap", {"min_dist": float("nan")}, "min_dist"),
    ("tsne", {"perplexity": 0.0}, "perplexity must be a number greater than 0"),
    ("tsne", {"perplexity": float("inf")}, "perplexity must be a number greater than 0"),
    ("tsne", {"perplexity": "30"}, "perplexity"),
    ("tsne", {"perplexity": 30.0}, "perplexity must be less than the number of points, 30"),
    ("pca", {"n_neighbors": 15}, r"pca takes no parameter 'n_neighbors' \(its parameters: seed\)"),
    ("tsne", {"min_dist": 0.5}, r"tsne takes no parameter 'min_dist' \(its parameters: perplexity, seed\)"),
    ("pca", {"seed": -1}, "seed must be an integer from 0 to 4294967295"),
    ("pca", {"seed": 2**32}, "seed must be an integer"),
    ("pca", {"seed": 0.5}, "seed must be an integer"),
    ("pca", {"cache_dir": "somewhere"}, "cache_dir and cache_key must be given together"),
    ("pca", {"cache_key": "ck"}, "cache_dir and cache_key must be given together"),
    ("pca", {"cache_dir": "somewhere", "cache_key": "../ck"}, "cache_key may only hold"),
    ("pca", {"cache_dir": "somewhere", "cache_key": ""}, "cache_key may only hold"),
])
def test_invalid_parameter_is_a_one_line_error(method, kwargs, match):
    with pytest.raises(VAEError, match=match) as info:
        project(SMALL, method, **kwargs)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("codes", "match"), [
    (np.zeros(10), r"codes must be a 2-D array \(N, D\) with D >= 1 \(got shape \(10,\)\)"),
    (np.zeros((10, 2, 2)), "codes must be a 2-D array"),
    (np.zeros((10, 0)), "codes must be a 2-D array"),
    (np.zeros((2, 4)), "codes need at least 3 points to project"),
    (np.array([[0.0, 1.0]] * 4 + [[np.nan, 0.0]]), "codes contain NaN or infinite values"),
    (np.array([[0.0, 1.0]] * 4 + [[np.inf, 0.0]]), "codes contain NaN or infinite values"),
    ([["a", "b"]] * 5, "codes must be a numeric array"),
])
def test_invalid_codes_are_refused(codes, match):
    with pytest.raises(VAEError, match=match):
        project(codes, "pca")


def test_umap_needs_four_points():
    with pytest.raises(VAEError, match="umap needs at least 4 points"):
        project(SMALL[:3], "umap", n_neighbors=2)


@pytest.mark.parametrize("points", [np.zeros((4, 3)), np.zeros(3), np.array([[np.nan, 0.0]])])
def test_inverse_refuses_bad_points(points):
    proj = project(SMALL, "pca")
    with pytest.raises(VAEError, match="map points"):
        proj.inverse(points)


def test_methods_are_the_documented_three_and_the_latent_plane_for_a_2d_latent():
    assert offered_methods(8) == offered_methods(1) == ("pca", "umap", "tsne")
    assert offered_methods(2) == ("latent", "pca", "umap", "tsne")


# ---- CSV export ----------------------------------------------------------------------------------


def test_coords_csv_round_trips(codes_labels):
    codes, labels = codes_labels
    proj = project(codes, "pca")
    score = np.random.default_rng(0).normal(size=len(codes))  # float64
    text = coords_csv(proj, labels=labels, extra={"score": score, "name": [f"img {i}" for i in range(300)]})
    assert "np.float" not in text
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["index", "x", "y", "label", "score", "name"]
    assert len(rows) == 301
    parsed = np.array([[float(r[1]), float(r[2])] for r in rows[1:]], dtype=np.float32)
    np.testing.assert_array_equal(parsed, proj.coords)  # float32 text round-trips exactly
    assert [int(r[3]) for r in rows[1:]] == labels.tolist()
    np.testing.assert_array_equal([float(r[4]) for r in rows[1:]], score)
    assert rows[7][0] == "6" and rows[7][5] == "img 6"


def test_coords_csv_without_extras_has_three_columns():
    proj = project(SMALL, "pca")
    rows = list(csv.reader(io.StringIO(coords_csv(proj))))
    assert rows[0] == ["index", "x", "y"] and len(rows) == 31


@pytest.mark.parametrize(("labels", "extra", "match"), [
    (np.arange(29), None, "CSV column 'label' has 29 values for 30 points"),
    (None, {"score": np.arange(31)}, "CSV column 'score' has 31 values"),
    (None, {"x": np.arange(30)}, "CSV column name 'x' is already used"),
    (np.arange(30), {"label": np.arange(30)}, "CSV column name 'label' is already used"),
])
def test_coords_csv_refuses_mismatched_columns(labels, extra, match):
    with pytest.raises(VAEError, match=match):
        coords_csv(project(SMALL, "pca"), labels=labels, extra=extra)


# ---- checkpoint cache key ------------------------------------------------------------------------


def test_checkpoint_cache_key_follows_file_content(tmp_path):
    data = np.random.default_rng(0).bytes(5 << 19)  # 2.5 MiB: several read chunks
    path = tmp_path / "model.pt"
    path.write_bytes(data)
    key = checkpoint_cache_key(path)
    assert key == hashlib.sha256(data).hexdigest()[:16]
    copy = tmp_path / "copy.pt"
    copy.write_bytes(data)
    assert checkpoint_cache_key(copy) == key  # content, not name
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # one bit changed, past the first chunk
    assert checkpoint_cache_key(path) != key


def test_checkpoint_cache_key_of_a_missing_file(tmp_path):
    with pytest.raises(VAEError, match="checkpoint not found"):
        checkpoint_cache_key(tmp_path / "nope.pt")


def test_importing_the_module_does_not_import_umap_or_sklearn():
    code = ("import sys, vae_core.projection; "
            "print(sorted(m for m in ('umap', 'sklearn.manifold', 'sklearn.decomposition') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_transform_marks_codes_where_their_points_are():
    rng = np.random.default_rng(0)
    codes = rng.standard_normal((200, 5)).astype(np.float32)
    pca = project(codes, "pca")
    assert np.allclose(pca.transform(codes[:7]), pca.coords[:7], atol=1e-4)
    tsne = project(codes, "tsne", perplexity=10)
    # a code equal to an encoded one lands (almost) on that point
    assert np.allclose(tsne.transform(codes[3]), tsne.coords[3], atol=1e-3)
    with pytest.raises(VAEError, match="latent size"):
        pca.transform(np.zeros((1, 4)))


def test_umap_compiled_functions_are_kept_in_numbas_disk_cache():
    """umap-learn marks few of its numba functions cache=True; the engine gives them numba's disk
    cache so a new server process loads what an earlier one compiled (benchmarks.projection times it)."""
    from vae_core.projection import _import_umap

    _import_umap()
    import umap.layouts
    import umap.umap_

    for fn in (umap.umap_.smooth_knn_dist, umap.umap_.compute_membership_strengths,
               umap.layouts._nb_optimize_layout_euclidean_single_epoch):
        assert type(fn._cache).__name__ == "FunctionCache", fn


def test_umaps_numba_disk_cache_failures_cost_a_compile_not_a_map():
    import importlib

    from numba.core.dispatcher import Dispatcher

    from vae_core.projection import NUMBA_CACHED_MODULES, _import_umap

    _import_umap()
    cached = [fn for name in NUMBA_CACHED_MODULES if importlib.util.find_spec(name)
              for fn in vars(importlib.import_module(name)).values()
              if isinstance(fn, Dispatcher) and fn._cache.__class__.__name__ != "NullCache"]
    assert len(cached) > 10
    for fn in cached:  # numba's own save and load raise on these (AttributeError): ours compile instead
        fn._cache.save_overload(None, None)
        assert fn._cache.load_overload(object(), None) is None

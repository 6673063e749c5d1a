"""A projection of codes (`Projection`, `project`, a seeded sample's `sampled_projection`), read from and
written to the disk cache (`vae_core.projection.cache`), and its export (`coords_csv`, `precompute`)."""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vae_core.errors import VAEError
from vae_core.projection.cache import _cache_path, _load_coords, _save_coords
from vae_core.projection.methods import (
    KNN_K,
    PROJECTION_METHODS,
    SAMPLE_SIZE,
    ProjectionMethod,
    _as_codes,
    _as_points,
    _check_params,
    _is_int,
    method_spec,
)

# ---- a projection --------------------------------------------------------------------------------


@dataclass(eq=False)
class Projection:
    """A 2-D map of N latent codes.

    coords: (N, 2) float32 map coordinates; codes: (N, D) float32 codes they were computed from.
    params: the method's parameters plus "cached" (True when coords came from the disk cache).
    seconds: wall time of the fit, or of the cache load on a hit. fitted: the fitted estimator
    when it is kept (PCA, or UMAP fitted in this call), else None.
    """

    coords: np.ndarray
    method: str
    params: dict
    seconds: float
    codes: np.ndarray | None = field(default=None, repr=False)
    fitted: Any = field(default=None, repr=False)
    _neighbours: dict = field(default_factory=dict, init=False, repr=False)

    @property
    def spec(self) -> ProjectionMethod:
        return method_spec(self.method)

    def inverse(self, points: np.ndarray) -> np.ndarray:
        """Latent codes (M, D) float32 for map points (M, 2) (a single (2,) point is taken as M = 1)."""
        points = _as_points(points)
        if self.spec.fit is None:
            return points.copy()
        if self._inverts():
            return np.asarray(self.fitted.inverse_transform(points), dtype=np.float32)
        return self._nearest("coords").mean(points, self.codes)

    def inverse_in_words(self) -> str:
        """How `inverse` maps a point back to a code, for a caption."""
        if self.spec.fit is None or self._inverts():
            return self.spec.inverse
        return "nearest encoded neighbours" + ("" if self.spec.inverse else f" ({self.spec.label} has no inverse)")

    def linear_inverse(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(origin, du, dv), each (D,), with inverse([u, v]) = origin + u·du + v·dv, when the
        inverse is linear (the latent plane, PCA); None for the others."""
        if not self.spec.linear:
            return None
        origin, right, up = self.inverse(np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=np.float32))
        return origin, right - origin, up - origin

    def linear_transform(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(offset (2,), matrix (2, D)) with transform(z) = offset + matrix @ z, when the method is
        linear (the latent plane, PCA), so a browser can place any z on the map itself; None for
        the others. Read off `transform` at 0 and at each unit vector (exact for an affine map)."""
        if not self.spec.linear:
            return None
        d = self.codes.shape[1] if self.codes is not None else 2
        at = self.transform(np.vstack([np.zeros((1, d), dtype=np.float32), np.eye(d, dtype=np.float32)]))
        return at[0].astype(np.float64), (at[1:] - at[0]).T.astype(np.float64)

    def transform(self, codes: np.ndarray) -> np.ndarray:
        """Map positions (M, 2) float32 for new latent codes (M, D), e.g. to mark a code on the map:
        the estimator's own `transform` when the method has one and it is at hand (PCA, the latent
        plane, UMAP fitted in this process), else the inverse-distance-weighted mean position of the
        KNN_K nearest encoded codes."""
        codes = np.atleast_2d(np.asarray(codes, dtype=np.float32))
        if self.spec.fit is None:
            return codes[:, :2].copy()
        if self.codes is None or codes.shape[1] != self.codes.shape[1]:
            raise VAEError("codes must have the latent size this projection was fitted on")
        if self.spec.transform and self._estimator() is not None:
            return np.asarray(self.fitted.transform(codes), dtype=np.float32)
        return self._nearest("codes").mean(codes, self.coords)

    def _inverts(self) -> bool:
        """Whether `inverse` goes through the estimator's `inverse_transform`."""
        return self.spec.inverse is not None and self._estimator() is not None

    def _estimator(self) -> Any:
        """The fitted estimator, refitted after a cache load when the method is cheap to refit."""
        if self.codes is None:
            raise VAEError("this projection holds no latent codes, so it cannot map points back")
        if self.fitted is None and self.spec.refit:
            own = {name: self.params[name] for name in self.spec.defaults}
            self.fitted = self.spec.fit(self.codes, seed=self.params["seed"], **own)[1]
        return self.fitted

    def _nearest(self, space: str) -> _Neighbours:
        """The nearest-neighbour index over the map ("coords") or over the codes ("codes"), built once."""
        if space not in self._neighbours:
            self._neighbours[space] = _Neighbours(getattr(self, space))
        return self._neighbours[space]


class _Neighbours:
    """Inverse-distance-weighted means over the KNN_K nearest of a fixed set of points."""

    def __init__(self, points: np.ndarray):
        from sklearn.neighbors import NearestNeighbors

        self.index = NearestNeighbors(n_neighbors=min(KNN_K, len(points))).fit(points)

    def mean(self, queries: np.ndarray, values: np.ndarray) -> np.ndarray:
        """For queries (M, P): the weighted mean (M, V) of `values` (one row per point) of the nearest points."""
        dist, idx = self.index.kneighbors(queries)  # (M, k) each
        weights = 1.0 / (dist + 1e-12)  # a query on top of a point gets (almost) that point's value
        weights /= weights.sum(axis=1, keepdims=True)
        return np.einsum("mk,mkd->md", weights, values[idx]).astype(np.float32)


def project(codes: np.ndarray, method: str = "pca", *, seed: int = 0, cache_dir: str | os.PathLike | None = None,
            cache_key: str | None = None, progress: Callable[[int, int], None] | None = None,
            **params) -> Projection:
    """Project codes (N, D) to the plane with `method` (a name in PROJECTION_METHODS).

    params: the method's parameters (`PROJECTION_METHODS[method].parameters`, each at its default
    when not given); seed fixes every method's randomness. With both cache_dir and cache_key, the
    coords are stored in `cache_dir/{cache_key}-{method}-{param_hash}.npy`, where the hash covers the
    method, its parameters and the codes' shape, and a later call with the same key loads them instead
    of refitting ("latent" needs no fit and is never cached). cache_key names the codes (the app's:
    `library.projection_cache_key`, a checkpoint's content and a split), so two calls with one key must
    pass the same codes; it is not computed from their bytes, so a map computed on one machine is found
    on any other. A corrupt cache file is silently recomputed.
    `progress(done, total)` hears UMAP's epochs as they complete (the other methods report none).
    """
    codes, used, path = _prepared(codes, method, seed=seed, cache_dir=cache_dir, cache_key=cache_key, **params)
    spec = PROJECTION_METHODS[method]
    if spec.fit is None:
        return Projection(codes.copy(), method, {**used, "cached": False}, 0.0, codes)
    start = time.perf_counter()
    hit = _load_projection(path, codes, method, used, start)
    if hit is not None:
        return hit
    coords, fitted = spec.fit(codes, **used, progress=progress)
    coords = np.ascontiguousarray(coords, dtype=np.float32)
    seconds = time.perf_counter() - start
    if path is not None:
        _save_coords(path, coords)
    return Projection(coords, method, {**used, "cached": False}, seconds, codes, fitted)


def cached_projection(codes: np.ndarray, method: str, *, cache_dir: str | os.PathLike, cache_key: str,
                      **params) -> Projection | None:
    """What `project` with these arguments would return when its result is on disk; else None
    (nothing is fitted). `params` are project's method parameters and seed."""
    codes, checked, path = _prepared(codes, method, cache_dir=cache_dir, cache_key=cache_key, **params)
    return _load_projection(path, codes, method, checked, time.perf_counter())


def _prepared(codes, method: str, *, seed: int = 0, cache_dir=None, cache_key=None,
              **params) -> tuple[np.ndarray, dict, Path | None]:
    """Validated codes, the parameters the method's fit takes, and the cache file (None without a
    cache, or for a method with nothing to fit)."""
    codes = _as_codes(codes)
    used = _check_params(method, codes, seed, params)
    path = _cache_path(cache_dir, cache_key, method, used, codes) if PROJECTION_METHODS[method].fit else None
    return codes, used, path


def _load_projection(path: Path | None, codes: np.ndarray, method: str, params: dict,
                     start: float) -> Projection | None:
    coords = _load_coords(path, len(codes)) if path is not None else None
    if coords is None:
        return None
    return Projection(coords, method, {**params, "cached": True}, time.perf_counter() - start, codes)


def sampled_projection(codes: np.ndarray, method: str = "umap", *, sample_size: int = SAMPLE_SIZE,
                       seed: int = 0, **params) -> Projection:
    """A quick map of many codes: `method` fitted on a seeded sample of `sample_size` codes (which
    keep their fitted positions), every other code placed by `Projection.transform`: the method's own
    `transform` (UMAP's, PCA's), or for a method without one (t-SNE) the inverse-distance-weighted mean
    position of the nearest sampled codes. params gain "sample" (the sample size); N <= sample_size
    is `project`. `params` are project's method parameters; nothing is cached."""
    codes = _as_codes(codes)
    if not _is_int(sample_size) or sample_size < 4:
        raise VAEError(f"sample_size must be an integer of at least 4 (got {sample_size!r})")
    _check_params(method, codes, seed, params)
    if len(codes) <= sample_size:
        return project(codes, method, seed=seed, **params)
    start = time.perf_counter()
    rows = np.sort(np.random.default_rng(seed).choice(len(codes), size=sample_size, replace=False))
    part = project(codes[rows], method, seed=seed, **params)
    coords = part.transform(codes)
    coords[rows] = part.coords
    return Projection(coords, method, {**part.params, "sample": sample_size}, time.perf_counter() - start, codes)


# ---- export --------------------------------------------------------------------------------------


def coords_csv(projection: Projection, labels: np.ndarray | None = None,
               extra: dict[str, np.ndarray] | None = None) -> str:
    """CSV text with a header index,x,y[,label][,extra columns...] and one row per point.

    labels and each extra column must hold N values (any numbers or strings).
    """
    n = len(projection.coords)
    named = ([("label", labels)] if labels is not None else []) + list((extra or {}).items())
    columns: dict[str, np.ndarray] = {}
    for name, values in named:
        if name in ("index", "x", "y") or name in columns:
            raise VAEError(f"CSV column name {name!r} is already used")
        values = np.asarray(values).reshape(-1)
        if len(values) != n:
            raise VAEError(f"CSV column {name!r} has {len(values)} values for {n} points")
        columns[name] = values
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["index", "x", "y", *columns])
    for i, (x, y) in enumerate(projection.coords):
        writer.writerow([i, x, y, *(col[i] for col in columns.values())])  # csv writes str(): float32 stays short
    return out.getvalue()



def precompute(checkpoint_path: str | os.PathLike, cache_dir: str | os.PathLike,
               methods: tuple[str, ...] = ("pca", "umap"), split: str = "test") -> dict[str, float]:
    """Compute a checkpoint's projections into the disk cache the latent-map page reads (with the
    page's default parameters), so a first visit is instant. Returns seconds per method."""
    from vae_core.checkpoint import load_checkpoint
    from vae_core.data import load_for_config
    from vae_core.latent import encode
    from vae_core.library import projection_cache_key

    ckpt = load_checkpoint(checkpoint_path)
    mu, _ = encode(ckpt.model, load_for_config(ckpt.config, download=False).split(split).images)
    key = projection_cache_key(checkpoint_path, split)
    return {m: project(mu.numpy(), m, cache_dir=cache_dir, cache_key=key).seconds for m in methods}

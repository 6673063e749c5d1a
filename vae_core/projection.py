"""2-D projections of latent codes for the latent map, computed once and cached on disk.

Every method is one entry of PROJECTION_METHODS (a `ProjectionMethod`: its fit function, its
parameters with their ranges, defaults and help, and how its map relates to the codes), and
`project(codes, method, **params)` turns codes (N, D) into coords (N, 2) float32 with any of them:

- "latent": only for D == 2: the latent plane itself (coords are the codes, inverse is identity).
- "pca": principal components (scikit-learn `PCA`); linear, exact inverse. For D == 1 a zero
  column is appended, so y is 0 for every point.
- "umap": Uniform Manifold Approximation and Projection (McInnes, Healy & Melville 2018,
  arXiv:1802.03426). A fixed seed makes it deterministic (and single-threaded).
- "tsne": t-distributed Stochastic Neighbor Embedding (van der Maaten & Hinton 2008, JMLR 9),
  scikit-learn `TSNE` with PCA initialisation. It has no inverse.

`Projection.inverse` maps map coordinates back to latent codes through the fitted estimator's
`inverse_transform` when the entry has one and the estimator is at hand (PCA is refitted after a
cache load, in milliseconds; a UMAP loaded from the disk cache has no reducer, because refitting it
is what the cache avoids), and otherwise by the inverse-distance-weighted mean of the codes of the
k = 8 nearest projected points; `Projection.transform` places new codes the same way round.

Maps of many codes (above LARGE_MAP): `sampled_projection` fits the method on a seeded sample of
SAMPLE_SIZE codes and places the rest with `Projection.transform` (seconds instead of minutes), and
`ProjectionJob` computes the full projection in a daemon thread, with progress (UMAP reports its
epochs), into the same disk cache; jobs run one at a time so two maps never share the CPU.

umap and scikit-learn are imported inside the functions that use them: importing this module is cheap.
`warm_up_in_background()` runs the entries' warm-ups (UMAP: import it and let numba compile it) in a
daemon thread, so a server can pay that cost ahead of the first map a user asks for.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import numbers
import os
import re
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from vae_core.errors import VAEError

LATENT = "latent"  # the latent plane itself; valid only when D == 2
QUICK = "pca"  # the map a page shows at once while a slower one is computed
KNN_K = 8  # neighbours averaged by the kNN inverse
MIN_POINTS = 3  # codes a projection needs (a map of fewer says so)
_MAX_SEED = 2**32 - 1  # scikit-learn's limit for random_state
LARGE_MAP = 10_000  # above this many codes, background methods (UMAP, t-SNE) run in a ProjectionJob
SAMPLE_SIZE = 5_000  # codes a quick view is fitted on; above 4,096 UMAP indexes them with NNDescent,
# whose transform places the other codes in seconds (below, its exact path is slow to transform)


# ---- the registry: one entry per method ----------------------------------------------------------


@dataclass(frozen=True)
class Parameter:
    """A parameter of a projection method. It accepts integers when its default is one, else any
    finite number, from `low` (excluded when `above_low`) to `high` (None: no upper bound), and less
    than the number of codes when `below_n`. slider: the Map page's (low, high, step), step None for
    Streamlit's own; None: not offered on the page."""

    name: str
    help: str
    default: int | float
    slider: tuple[float, float, float | None] | None
    low: float
    high: float | None = None
    above_low: bool = False
    below_n: bool = False

    @property
    def integer(self) -> bool:
        return isinstance(self.default, int)

    def checked(self, value: Any, n: int) -> int | float:
        """`value` as the fit takes it (int or float) for a set of n codes, or a one-line VAEError."""
        valid = _is_int(value) if self.integer else _is_real(value)
        if not valid or value < self.low or (self.above_low and value == self.low) or \
                (self.high is not None and value > self.high):
            raise VAEError(f"{self.name} must be {self._accepts()} (got {value!r})")
        if self.below_n and value >= n:
            raise VAEError(f"{self.name} must be less than the number of points, {n} (got {value})")
        return int(value) if self.integer else float(value)

    def _accepts(self) -> str:
        kind = "an integer" if self.integer else "a number"
        if self.high is not None:
            return f"{kind} from {_number(self.low)} to {_number(self.high)}"
        return f"{kind} {'greater than' if self.above_low else 'of at least'} {_number(self.low)}"


SEED = Parameter("seed", "fixes the method's randomness", 0, None, low=0, high=_MAX_SEED)  # every fitted method's


@dataclass(frozen=True)
class ProjectionMethod:
    """One way to draw latent codes in the plane: everything the engine and the Map page need.

    fit(codes (N, D), *, seed, progress, **parameters) -> (coords (N, 2), fitted estimator or None);
    fit is None for the latent plane, whose coords are the codes (nothing to fit, seed or cache).
    inverse: how the estimator's `inverse_transform` maps a map point back to a code, in words; None
    when it has none (points map back through their nearest encoded neighbours). transform: the
    estimator places new codes (else their nearest encoded neighbours do). linear: the inverse is
    affine, so the browser can decode under the pointer. refit: refitting is cheap and deterministic,
    so a map loaded from the disk cache refits its estimator when asked to invert or transform.
    background: slow (seconds to minutes): a page shows the QUICK map first, and above LARGE_MAP codes
    fits it in a background job, on a seeded sample first. warm_up: compiles the method's code ahead
    of a first fit. preparing: what the fit does before its first progress report (None: it reports none).
    """

    name: str
    label: str  # the Map page's picker
    help: str
    fit: Callable[..., tuple[np.ndarray, Any]] | None
    parameters: tuple[Parameter, ...] = ()
    inverse: str | None = None
    transform: bool = False
    linear: bool = False
    refit: bool = False
    background: bool = False
    latent_dim: int | None = None  # offered only for codes of this size (the latent plane: 2)
    min_points: int = 3
    warm_up: Callable[[], None] | None = field(default=None, repr=False)
    preparing: str | None = None

    @property
    def defaults(self) -> dict:
        return {p.name: p.default for p in self.parameters}

    @property
    def placement(self) -> str:
        """How a sampled view places the codes outside its sample, in words."""
        return "its transform" if self.transform else "their nearest sampled neighbours"


class _PCA2:
    """scikit-learn's PCA(2) for codes of any size D >= 1: a 1-D code gets a zero second feature (so
    every y is 0), and inverse_transform gives codes (M, D) back."""

    def __init__(self, codes: np.ndarray, seed: int):
        from sklearn.decomposition import PCA

        self.d = codes.shape[1]
        self.pca = PCA(n_components=2, random_state=seed).fit(self._padded(codes))

    def _padded(self, codes: np.ndarray) -> np.ndarray:
        return codes if codes.shape[1] > 1 else np.hstack([codes, np.zeros_like(codes)])

    def transform(self, codes: np.ndarray) -> np.ndarray:
        return self.pca.transform(self._padded(codes))

    def inverse_transform(self, points: np.ndarray) -> np.ndarray:
        return self.pca.inverse_transform(points)[:, : self.d]


def _pca(codes: np.ndarray, *, seed: int, progress=None) -> tuple[np.ndarray, _PCA2]:
    pca = _PCA2(codes, seed)
    return pca.transform(codes), pca


# umap-learn and pynndescent compile their numba functions on first use in every process (~7 s for a
# first map of 1,000 codes, ~25 s of 5,000 here); most of umap-learn's are not marked cache=True.
# Numba's own `Dispatcher.enable_caching()` (what cache=True calls) puts the compiled code in numba's
# on-disk cache (beside the package, else NUMBA_CACHE_DIR or the user's cache folder), so every later
# server process loads it instead of compiling. Functions numba cannot cache keep compiling per process.
NUMBA_CACHED_MODULES = ("umap.umap_", "umap.layouts", "umap.utils", "umap.spectral", "umap.distances",
                        "umap.sparse", "pynndescent.pynndescent_", "pynndescent.utils", "pynndescent.rp_trees",
                        "pynndescent.distances", "pynndescent.sparse", "pynndescent.graph_utils",
                        "pynndescent.search", "pynndescent.sparse_nndescent")
_numba_cache_lock = threading.Lock()
_numba_cached: list[int] = []  # how many functions were given a disk cache (once per process)


def _import_umap():
    """umap-learn (slow to import: numba), its compiled functions cached on disk across processes."""
    import importlib

    import umap
    from numba.core.dispatcher import Dispatcher
    from numba.core.errors import NumbaWarning

    with _numba_cache_lock:
        if not _numba_cached:
            count = 0
            # a function using dynamic globals (nn_descent) says once per process that it cannot be cached
            warnings.filterwarnings("ignore", message=".*Cannot cache compiled function", category=NumbaWarning)
            for name in NUMBA_CACHED_MODULES:
                try:
                    module = importlib.import_module(name)
                except ImportError:  # another version of the package: cache what there is
                    continue
                for fn in vars(module).values():
                    if not isinstance(fn, Dispatcher):
                        continue
                    if fn._cache.__class__.__name__ == "NullCache":
                        try:
                            fn.enable_caching()
                            count += 1
                        except RuntimeError:  # no writable cache folder: it compiles, as before
                            continue
                    _tolerant(fn._cache)  # ours and the packages' own (cache=True) alike
            _numba_cached.append(count)
    return umap


def _tolerant(cache) -> None:
    """Make a numba disk cache's failures cost a compile, never a map. Functions that take another
    compiled function as an argument (pynndescent's distances) keep it in their cache index, which a
    later process can load but not save again ("underlying object has vanished", raised from inside
    the UMAP fit): measured here, a first UMAP of 5,000 codes failed that way once the index held
    such an entry."""
    save, load = cache.save_overload, cache.load_overload

    def save_overload(sig, data):
        try:
            save(sig, data)
        except Exception:  # noqa: BLE001 - not cached: the next process compiles it again
            pass

    def load_overload(sig, target_context):
        try:
            return load(sig, target_context)
        except Exception:  # noqa: BLE001 - an index it cannot read: compile instead
            return None

    cache.save_overload, cache.load_overload = save_overload, load_overload


def _umap(codes: np.ndarray, *, n_neighbors: int, min_dist: float, seed: int,
          progress: Callable[[int, int], None] | None = None) -> tuple[np.ndarray, Any]:
    umap = _import_umap()  # slow to import (numba); only when a UMAP is asked for

    # UMAP's epochs run through tqdm: its documented tqdm_kwds send the bar, "done/total", to a file
    # object that hands the numbers to `progress` (which may raise to stop the fit)
    bar = {"disable": False, "file": _EpochReader(progress), "bar_format": "{n}/{total}", "mininterval": 0.25}
    # n_jobs=1 says explicitly what random_state implies (and silences umap's warning about it)
    reducer = umap.UMAP(n_components=2, n_neighbors=n_neighbors, min_dist=min_dist,
                        random_state=seed, n_jobs=1, tqdm_kwds=bar if progress else None)
    coords = reducer.fit_transform(codes)
    reducer.tqdm_kwds = {"disable": True}  # a later transform reports to nobody
    return coords, reducer


class _EpochReader:
    """A write-only text file for tqdm: each "done/total" it is given goes to `progress`."""

    def __init__(self, progress: Callable[[int, int], None]):
        self.progress = progress

    def write(self, text: str) -> None:
        if m := re.search(r"(\d+)/(\d+)\s*$", text):
            self.progress(int(m[1]), int(m[2]))

    def flush(self) -> None:
        pass


def _warm_up_umap() -> None:
    """Fit two tiny random sets, so numba has compiled both paths a map takes: the exact neighbours
    below 4,096 codes and NNDescent's above (with its transform, which a sampled view runs)."""
    umap = _import_umap()

    codes = np.random.default_rng(0).standard_normal((64, 4)).astype(np.float32)
    _umap(codes, seed=0, **PROJECTION_METHODS["umap"].defaults)  # the parameters the map page starts with
    approximate = umap.UMAP(n_neighbors=15, random_state=0, n_jobs=1, force_approximation_algorithm=True).fit(codes)
    approximate.transform(codes[:8])  # the NNDescent query a sampled view's transform runs


def _tsne(codes: np.ndarray, *, perplexity: float, seed: int, progress=None) -> tuple[np.ndarray, None]:
    from sklearn.manifold import TSNE

    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
    return tsne.fit_transform(codes), None


# One entry per method, in the order the Map page offers them.
PROJECTION_METHODS: dict[str, ProjectionMethod] = {m.name: m for m in [
    ProjectionMethod(LATENT, "Latent plane (z is 2-D)", "the 2-D latent space itself, no projection", None,
                     inverse="the latent plane itself", transform=True, linear=True, latent_dim=2),
    ProjectionMethod("pca", "PCA", "principal components: linear, computed at once, with an exact inverse", _pca,
                     inverse="the exact PCA inverse (z = mean + p · components)", transform=True, linear=True,
                     refit=True),
    ProjectionMethod(
        "umap", "UMAP", "Uniform Manifold Approximation and Projection: keeps neighbourhoods, shows clusters", _umap,
        (Parameter("n_neighbors", "how many neighbours make a point's neighbourhood: larger keeps more of the "
                   "global shape", 15, (2, 100, None), low=2, high=200, below_n=True),
         Parameter("min_dist", "how tightly points may be packed together", 0.1, (0.0, 1.0, 0.05), low=0, high=1)),
        inverse="UMAP's inverse transform", transform=True, background=True,
        min_points=4,  # its spectral initialisation needs N > n_components + 1
        warm_up=_warm_up_umap, preparing="finding neighbours and a first layout"),
    ProjectionMethod(
        "tsne", "t-SNE", "t-distributed Stochastic Neighbor Embedding: local neighbourhoods, no inverse", _tsne,
        (Parameter("perplexity", "about how many neighbours each point attends to", 30.0, (5.0, 100.0, None),
                   low=0, above_low=True, below_n=True),),
        background=True),
]}


def method_spec(name: str) -> ProjectionMethod:
    """The registry entry for `name`; an unknown name is a one-line error listing the valid ones."""
    spec = PROJECTION_METHODS.get(name)
    if spec is None:
        general = [n for n, s in PROJECTION_METHODS.items() if s.latent_dim is None]
        special = [f"{n} for a {s.latent_dim}-D latent" for n, s in PROJECTION_METHODS.items() if s.latent_dim]
        raise VAEError(f"projection method must be one of {', '.join(general)}"
                       + (f" (or {', '.join(special)})" if special else "") + f" (got {name!r})")
    return spec


def offered_methods(latent_dim: int) -> tuple[str, ...]:
    """The methods that apply to codes of `latent_dim` dimensions, in the registry's order."""
    return tuple(n for n, s in PROJECTION_METHODS.items() if s.latent_dim in (None, latent_dim))


def linear_method(latent_dim: int) -> str:
    """The first method offered for `latent_dim` whose inverse is linear (the latent plane for a 2-D z,
    else PCA): a map where any point, and so any z, has its place at once."""
    return next(n for n in offered_methods(latent_dim) if PROJECTION_METHODS[n].linear)


def default_method(latent_dim: int, on_disk: set[str]) -> str:
    """The map a page opens on: the latent plane for a 2-D z; else UMAP when one is on disk (shipped
    models come with it), worth more than the QUICK map, which is the choice otherwise."""
    if latent_dim == 2 and LATENT in PROJECTION_METHODS:
        return LATENT
    return "umap" if "umap" in on_disk else QUICK


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


# ---- background jobs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class JobStatus:
    """A snapshot of a ProjectionJob. step: what it is doing, in words; progress: 0..1 over its
    steps; quick: the sampled view once computed; result: the full projection once computed (also
    on disk); error: a one-line message when it failed; cancelled: stopped before the end."""

    step: str
    progress: float
    step_number: int = 0  # 1-based; 0 before the first step
    steps: int = 1
    quick: Projection | None = None
    result: Projection | None = None
    error: str | None = None
    cancelled: bool = False

    @property
    def done(self) -> bool:
        return self.result is not None or self.error is not None or self.cancelled


class _Cancelled(Exception):
    pass


_one_job_at_a_time = threading.Lock()


class ProjectionJob:
    """`project(codes, method, **options)` computed in a daemon thread, for a map too large to wait
    for. When there are more than `sample_size` codes of a background method (UMAP, t-SNE), a quick view
    (`sampled_projection`) comes first; then the full projection, which lands in the disk cache
    (options cache_dir and cache_key). `start()` reads that cache at once, so a projection computed
    before needs no thread. Jobs run one at a time; `status()` is safe from any thread; `cancel()`
    stops a job at its next UMAP epoch or step."""

    def __init__(self, codes: np.ndarray, method: str, *, sample_size: int = SAMPLE_SIZE, **options):
        self.codes, _, _ = _prepared(codes, method, **options)  # bad input fails here, not in the thread
        self.method, self.options, self.spec = method, options, PROJECTION_METHODS[method]
        self.sampled = self.spec.background and len(self.codes) > sample_size
        self.sample_size, self.steps = sample_size, 2 if self.sampled else 1
        self._status = JobStatus("waiting to start", 0.0, steps=self.steps)
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> ProjectionJob:
        if self._thread is not None or self.status().done:
            return self
        hit = cached_projection(self.codes, self.method, **self.options) if "cache_dir" in self.options else None
        if hit is not None:
            self._set(step="read from the disk cache", progress=1.0, result=hit)
        else:
            self._thread = threading.Thread(target=self._run, name=f"projection-{self.method}", daemon=True)
            self._thread.start()
        return self

    def status(self) -> JobStatus:
        with self._lock:
            return self._status

    def cancel(self) -> None:
        self._cancel.set()

    def join(self, timeout: float | None = None) -> JobStatus:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.status()

    def _set(self, **changes) -> None:
        with self._lock:
            self._status = replace(self._status, **changes)

    def _run(self) -> None:
        try:
            self._set(step="waiting for another projection to finish")
            while not _one_job_at_a_time.acquire(timeout=0.5):
                self._check_cancel()
            try:
                self._steps()
            finally:
                _one_job_at_a_time.release()
        except _Cancelled:
            self._set(step="cancelled", cancelled=True)
        except VAEError as e:
            self._set(step="failed", error=str(e))
        except Exception as e:  # noqa: BLE001 - a thread's failure must reach the page as a message
            self._set(step="failed", error=f"{self.method} failed: {type(e).__name__}: {e}")

    def _steps(self) -> None:
        if self.sampled:
            self._begin(1, f"{self.method} of a seeded sample of {self.sample_size:,} codes, the rest placed by "
                           f"{self.spec.placement}")
            params = {k: v for k, v in self.options.items() if k not in ("cache_dir", "cache_key")}
            self._set(quick=sampled_projection(self.codes, self.method, sample_size=self.sample_size, **params))
        full = f"{self.method} of all {len(self.codes):,} codes"
        self._begin(self.steps, full + (f": {self.spec.preparing}" if self.spec.preparing else ""))

        def epochs(done: int, total: int) -> None:
            self._check_cancel()
            self._set(step=f"{full}: optimising the layout, epoch {done} of {total}",
                      progress=(self.steps - 1 + done / max(total, 1)) / self.steps)

        result = project(self.codes, self.method, **self.options, progress=epochs)
        self._set(step="done", progress=1.0, result=result)

    def _begin(self, number: int, step: str) -> None:
        self._check_cancel()
        self._set(step=step, step_number=number, progress=(number - 1) / self.steps)

    def _check_cancel(self) -> None:
        if self._cancel.is_set():
            raise _Cancelled


# ---- warm-up -------------------------------------------------------------------------------------

_warm_up_lock = threading.Lock()
_warm_up_thread: threading.Thread | None = None


_warm_up_now = threading.Event()


def warm_up_in_background(delay_s: float = 0.0, quiet: Callable[[], bool] | None = None) -> threading.Thread:
    """Start (once per process) a daemon thread that runs every method's warm-up (UMAP's compiles its
    numba code, or loads it from numba's disk cache), so the first map a user asks for does not pay
    for it. With `delay_s` the thread first waits that long, and then, with `quiet`, until quiet()
    is true (a server with no page running: the warm-up holds the interpreter lock for seconds), unless
    a later call without a delay asks for it at once (a page that may need the method). Cheap to call
    on every Streamlit rerun; returns the thread (waiting, running or finished)."""
    global _warm_up_thread
    with _warm_up_lock:
        if delay_s <= 0 and quiet is None:
            _warm_up_now.set()
        if _warm_up_thread is None:
            names = "-".join(n for n, s in PROJECTION_METHODS.items() if s.warm_up is not None)  # "umap"
            _warm_up_thread = threading.Thread(target=_warm_up_all, args=(delay_s, quiet),
                                               name=f"{names}-warm-up", daemon=True)
            _warm_up_thread.start()
        return _warm_up_thread


def _warm_up_all(delay_s: float, quiet: Callable[[], bool] | None = None) -> None:
    _warm_up_now.wait(delay_s)
    while quiet is not None and not _warm_up_now.is_set() and not quiet():
        _warm_up_now.wait(0.25)
    for spec in list(PROJECTION_METHODS.values()):
        if spec.warm_up is not None:
            spec.warm_up()


# ---- validation ----------------------------------------------------------------------------------


def _as_codes(codes: np.ndarray) -> np.ndarray:
    """codes as a C-contiguous float32 (N, D) array with N >= 3 and finite values."""
    try:
        arr = np.asarray(codes, dtype=np.float32)
    except (TypeError, ValueError, RuntimeError):
        raise VAEError(f"codes must be a numeric array (N, D) (got {type(codes).__name__})") from None
    if arr.ndim != 2 or arr.shape[1] < 1:
        raise VAEError(f"codes must be a 2-D array (N, D) with D >= 1 (got shape {tuple(arr.shape)})")
    if arr.shape[0] < MIN_POINTS:
        raise VAEError(f"codes need at least {MIN_POINTS} points to project (got {arr.shape[0]})")
    if not np.isfinite(arr).all():
        raise VAEError("codes contain NaN or infinite values; cannot project them")
    return np.ascontiguousarray(arr)


def _as_points(points: np.ndarray) -> np.ndarray:
    arr = np.asarray(points, dtype=np.float64)
    if arr.shape == (2,):
        arr = arr.reshape(1, 2)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise VAEError(f"map points must be an array (M, 2) (got shape {tuple(arr.shape)})")
    if not np.isfinite(arr).all():
        raise VAEError("map points contain NaN or infinite values")
    return arr


def _is_int(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _is_real(x) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _check_params(method: str, codes: np.ndarray, seed: Any, params: dict) -> dict:
    """Validate the method, the size of the codes, every parameter given (each must be one of the
    method's) and the seed; return what the method's fit takes (defaults filled in)."""
    n, d = codes.shape
    spec = method_spec(method)
    if spec.latent_dim is not None and d != spec.latent_dim:
        raise VAEError(f"method {method!r} needs a {spec.latent_dim}-D latent space (got D = {d}); "
                       f"use one of {', '.join(offered_methods(d))}")
    if n < spec.min_points:
        raise VAEError(f"{method} needs at least {spec.min_points} points (got {n})")
    own = {p.name: p for p in spec.parameters}
    if unknown := sorted(set(params) - set(own)):
        raise VAEError(f"{method} takes no parameter {unknown[0]!r} (its parameters: {', '.join([*own, 'seed'])})")
    used = {name: p.checked(params.get(name, p.default), n) for name, p in own.items()}
    seed = SEED.checked(seed, n)
    return {**used, "seed": seed} if spec.fit is not None else {}


# ---- disk cache ----------------------------------------------------------------------------------


def _cache_path(cache_dir, cache_key: str | None, method: str, params: dict,
                codes: np.ndarray) -> Path | None:
    if cache_dir is None and cache_key is None:
        return None
    if cache_dir is None or cache_key is None:
        raise VAEError("cache_dir and cache_key must be given together (or neither)")
    if not cache_key or not all(c.isascii() and (c.isalnum() or c in "-_.") for c in cache_key):
        raise VAEError(f"cache_key may only hold letters, digits, '-', '_' and '.' (got {cache_key!r})")
    # what defines the map besides the codes, which cache_key names: never the codes' float bytes, which
    # differ in their last bits between machines and torch builds (a shipped map would never be found)
    spec = {"method": method, **params, "n": codes.shape[0], "d": codes.shape[1]}
    param_hash = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
    return Path(cache_dir) / f"{cache_key}-{method}-{param_hash}.npy"


def methods_on_disk(cache_dir, cache_key: str) -> set[str]:
    """The methods with a projection cached for `cache_key` under `cache_dir` (read from the file
    names `_cache_path` gives: `{cache_key}-{method}-{param_hash}.npy`)."""
    prefix = f"{cache_key}-"
    return {p.name[len(prefix):-len(".npy")].rsplit("-", 1)[0] for p in Path(cache_dir).glob(f"{prefix}*.npy")}


def _load_coords(path: Path, n: int) -> np.ndarray | None:
    """The cached coords (n, 2) float32, or None when the file is missing or not usable."""
    try:
        coords = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if coords.shape != (n, 2) or coords.dtype != np.float32 or not np.isfinite(coords).all():
        return None
    return coords


def _save_coords(path: Path, coords: np.ndarray) -> None:
    """Atomic write (temp file, then rename). A cache that cannot be written only costs a refit
    next time, so it warns instead of failing the projection."""
    from vae_core.checkpoint import temp_name  # the writer's pid in the name: a killed write is cleaned safely

    tmp = temp_name(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            np.save(f, coords, allow_pickle=False)
        os.replace(tmp, path)
    except OSError as e:
        warnings.warn(f"could not write the projection cache {path}: {e}", stacklevel=3)
    finally:
        tmp.unlink(missing_ok=True)


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

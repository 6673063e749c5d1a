"""The projection methods: one `ProjectionMethod` entry each in PROJECTION_METHODS (its fit function,
its parameters with their ranges, defaults and help, how its map relates to the codes), their
parameter checks, and the warm-up that compiles UMAP ahead of a first map (`warm_up_in_background`).
The package docstring (`vae_core.projection`) says what each method is."""

from __future__ import annotations

import math
import numbers
import re
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
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

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

The package, a file per role: `methods` (the registry, each method's fit, parameter checks, the
warm-up), `maps` (a projection: `Projection`, `project`, `sampled_projection`, and its export),
`cache` (the disk cache) and `jobs` (`ProjectionJob`). Its public names are all here.
"""

from __future__ import annotations

import os  # noqa: F401 - tests replace os.replace through this module (the cache's atomic write)

from vae_core.projection.cache import _save_coords, methods_on_disk
from vae_core.projection.jobs import JobStatus, ProjectionJob, _one_job_at_a_time
from vae_core.projection.maps import (
    Projection,
    _prepared,
    cached_projection,
    coords_csv,
    precompute,
    project,
    sampled_projection,
)
from vae_core.projection.methods import (
    KNN_K,
    LARGE_MAP,
    LATENT,
    MIN_POINTS,
    NUMBA_CACHED_MODULES,
    PROJECTION_METHODS,
    QUICK,
    SAMPLE_SIZE,
    SEED,
    Parameter,
    ProjectionMethod,
    _import_umap,
    _pca,
    default_method,
    linear_method,
    method_spec,
    offered_methods,
    warm_up_in_background,
)

__all__ = [
    "KNN_K", "LARGE_MAP", "LATENT", "MIN_POINTS", "NUMBA_CACHED_MODULES", "PROJECTION_METHODS", "QUICK",
    "SAMPLE_SIZE", "SEED", "JobStatus", "Parameter", "Projection", "ProjectionJob", "ProjectionMethod",
    "_import_umap", "_one_job_at_a_time", "_pca", "_prepared", "_save_coords", "cached_projection", "coords_csv",
    "default_method", "linear_method", "method_spec", "methods_on_disk", "offered_methods", "precompute", "project",
    "sampled_projection", "warm_up_in_background",
]

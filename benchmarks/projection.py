"""Projection timings, each set in a freshly started process (as a new server would be):

    python -m benchmarks.projection CODES.npy --mode cold|cold-large|warm-up [--small 1000]

- cold: `import umap` and the first UMAP of the first `small` codes (umap_cold_s includes the
  import: that is what a user waits for in a new server), a second fit (warm), then the disk cache
  written and hit, and PCA of every code;
- cold-large: the first UMAP of every code, import included;
- warm-up: `vae_core.projection.warm_up_in_background()` run to its end, then UMAP of `small` codes
  and of every code: what a user waits for once a server's warm-up has finished.

torch is imported first, as a server has it loaded before anyone asks for a map. Prints one JSON
object; `run_modes` runs each mode in its own process and merges them.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.machine import load_average, run_timed


def _seconds(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def cold(codes: np.ndarray, small: int) -> dict:
    from vae_core.projection import project

    t0 = time.perf_counter()
    import umap  # noqa: F401 - timed: the first UMAP in a server pays for it

    imported = time.perf_counter() - t0
    project(codes[:small], "umap")
    out = {"umap_import_s": imported, "umap_cold_s": time.perf_counter() - t0,
           "umap_warm_s": _seconds(lambda: project(codes[:small], "umap"))}
    with tempfile.TemporaryDirectory() as cache:
        project(codes[:small], "umap", cache_dir=cache, cache_key="bench")  # fitted and written
        t0 = time.perf_counter()
        hit = project(codes[:small], "umap", cache_dir=cache, cache_key="bench")
        out["projection_cache_hit_s"] = time.perf_counter() - t0
        if not hit.params["cached"]:
            raise RuntimeError("the second identical projection was not read from the disk cache")
    out["pca_s"] = _seconds(lambda: project(codes, "pca"))
    return out


def cold_large(codes: np.ndarray) -> dict:
    from vae_core.projection import project

    return {"umap_cold_large_s": _seconds(lambda: project(codes, "umap"))}


def warm_up(codes: np.ndarray, small: int) -> dict:
    from vae_core.projection import project, warm_up_in_background

    return {"umap_warmup_s": _seconds(lambda: warm_up_in_background().join()),
            "umap_after_warmup_s": _seconds(lambda: project(codes[:small], "umap")),
            "umap_large_after_warmup_s": _seconds(lambda: project(codes, "umap"))}


def run_modes(codes_path: Path, small: int, *, cold_large: bool = True) -> dict:
    """Every mode in its own fresh process (cold-large only when asked); their figures merged, with
    the load before each."""
    out = {"umap_small_n": small, "umap_large_n": len(np.load(codes_path)), "projection_load_average": [],
           "umap_cold_large_s": None}
    for mode in ("cold", "cold-large", "warm-up") if cold_large else ("cold", "warm-up"):
        out["projection_load_average"].append(load_average())
        child = run_timed(["-m", "benchmarks.projection", str(codes_path), "--mode", mode, "--small", str(small)])
        out.update(json.loads(child.stdout.strip().splitlines()[-1]))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("codes", help="a .npy file of latent codes (N, D)")
    p.add_argument("--mode", choices=("cold", "cold-large", "warm-up"), required=True)
    p.add_argument("--small", type=int, default=1000, help="codes in the smaller map (default 1000)")
    args = p.parse_args()
    import torch  # noqa: F401 - loaded before anything is timed, as in a server

    codes = np.load(args.codes)
    result = {"cold": lambda: cold(codes, args.small), "cold-large": lambda: cold_large(codes),
              "warm-up": lambda: warm_up(codes, args.small)}[args.mode]()
    print(json.dumps(result))


if __name__ == "__main__":
    main()

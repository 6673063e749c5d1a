"""Projection timings, each set in a freshly started process (as a new server would be):

    python -m benchmarks.projection CODES.npy --mode cold|cold-large|warm-up|large-map [--small 1000]
        [--map-sizes 20000,100000]

- cold: `import umap` and the first UMAP of the first `small` codes (umap_cold_s includes the
  import: that is what a user waits for in a new server), a second fit (warm), then the disk cache
  written and hit, and PCA of every code; numba's own disk cache holds what earlier processes
  compiled (`vae_core.projection` turns it on for umap-learn's functions);
- first-ever: the same with numba's disk cache empty (NUMBA_CACHE_DIR a new folder): the first
  server on a machine, or after the packages change (umap_first_ever_s);
- cold-large: the first UMAP of every code, import included;
- warm-up: `vae_core.projection.warm_up_in_background()` run to its end, then UMAP of `small` codes
  and of every code: what a user waits for once a server's warm-up has finished.
- large-map: after the warm-up, for each of `map_sizes` synthetic codes (the given codes resampled
  with a little noise): the page's first view (PCA), then a `ProjectionJob`'s sampled UMAP view and
  its full UMAP, the disk cache read back, and the latent map's figure as JSON (bytes and seconds).
  `run_modes` measures 20,000 codes; 100,000 take minutes here, so only when asked (--map-sizes).

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


def synthetic_codes(codes: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """n codes drawn from `codes` with Gaussian noise of a twentieth of their spread: many codes with
    the structure of real ones."""
    rng = np.random.default_rng(seed)
    picked = codes[rng.integers(len(codes), size=n)]
    return (picked + rng.normal(scale=0.05 * codes.std(0), size=picked.shape)).astype(np.float32)


def large_map(codes: np.ndarray, sizes: tuple[int, ...]) -> dict:
    import plotly.io

    from ui.map_figure import scatter_figure
    from vae_core.projection import ProjectionJob, project, warm_up_in_background

    warm_up_in_background().join()
    out = {}
    for n in sizes:
        big, tag = synthetic_codes(codes, n), f"map_{n // 1000}k"
        out[f"{tag}_first_view_pca_s"] = _seconds(lambda big=big: project(big, "pca"))
        with tempfile.TemporaryDirectory() as cache:
            t0 = time.perf_counter()
            job = ProjectionJob(big, "umap", cache_dir=cache, cache_key="bench").start()
            while job.status().quick is None and not job.status().done:
                time.sleep(0.05)
            out[f"{tag}_sampled_umap_view_s"] = time.perf_counter() - t0
            status = job.join()
            out[f"{tag}_full_umap_s"] = time.perf_counter() - t0  # after the sampled view, as the page runs it
            if status.result is None:
                raise RuntimeError(f"the background UMAP of {n} codes failed: {status.error}")
            out[f"{tag}_cache_hit_s"] = _seconds(
                lambda big=big, cache=cache: ProjectionJob(big, "umap", cache_dir=cache, cache_key="bench").start())
        labels = np.random.default_rng(0).integers(10, size=n)
        t0 = time.perf_counter()
        spec = plotly.io.to_json(scatter_figure(status.result.coords, labels, [str(d) for d in range(10)], "label"))
        out[f"{tag}_figure_json_s"] = time.perf_counter() - t0
        out[f"{tag}_payload_mb"] = len(spec.encode()) / 2**20
    return out


def run_modes(codes_path: Path, small: int, *, cold_large: bool = True, first_ever: bool = True,
              map_sizes: tuple[int, ...] = (20_000,)) -> dict:
    """Every mode in its own fresh process (cold-large and first-ever only when asked); their figures
    merged, with the load before each."""
    out = {"umap_small_n": small, "umap_large_n": len(np.load(codes_path)), "projection_load_average": [],
           "umap_cold_large_s": None}
    modes = ("first-ever", "cold", "cold-large", "warm-up", "large-map")
    skipped = {m for m, wanted in (("cold-large", cold_large), ("first-ever", first_ever)) if not wanted}
    for mode in (m for m in modes if m not in skipped):
        out["projection_load_average"].append(load_average())
        with tempfile.TemporaryDirectory() as empty:
            # first-ever: numba's disk cache empty (a new machine, or new package versions), so every
            # compiled function of umap-learn and pynndescent is compiled in this process
            env = {"NUMBA_CACHE_DIR": empty} if mode == "first-ever" else None
            child = run_timed(["-m", "benchmarks.projection", str(codes_path), "--mode", mode, "--small", str(small),
                               "--map-sizes", ",".join(map(str, map_sizes))], env=env)
        figures = json.loads(child.stdout.strip().splitlines()[-1])
        if mode == "first-ever":
            figures = {"umap_first_ever_s": figures["umap_cold_s"],
                       "umap_first_ever_import_s": figures["umap_import_s"]}
        out.update(figures)
        if mode == "large-map":
            out["large_map_peak_rss_mb"] = child.peak_rss_mb
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("codes", help="a .npy file of latent codes (N, D)")
    p.add_argument("--mode", choices=("first-ever", "cold", "cold-large", "warm-up", "large-map"), required=True)
    p.add_argument("--small", type=int, default=1000, help="codes in the smaller map (default 1000)")
    p.add_argument("--map-sizes", default="20000", help="large-map: codes per map, comma-separated (default 20000)")
    args = p.parse_args()
    import torch  # noqa: F401 - loaded before anything is timed, as in a server

    codes = np.load(args.codes)
    result = {"cold": lambda: cold(codes, args.small), "first-ever": lambda: cold(codes, args.small),
              "cold-large": lambda: cold_large(codes),
              "warm-up": lambda: warm_up(codes, args.small),
              "large-map": lambda: large_map(codes, tuple(int(n) for n in args.map_sizes.split(",")))}[args.mode]()
    print(json.dumps(result))


if __name__ == "__main__":
    main()

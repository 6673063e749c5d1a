"""`python -m benchmarks [--json] [--quick] [--only SECTIONS] [--device auto]`: every figure issue 10
asks for, measured in one run on this machine, printed with the machine, the device and the load.

Sections (in this order): training (`vae_core train` against the pytorch/examples VAE on the same IDX
files, whole process and in-loop, the loop's GFLOP/s beside a GEMM ceiling, the conv model), startup
(`--help`, `train` to its first step, `streamlit run app.py` to the first page in headless Chromium),
projection (UMAP cold, warm, after the warm-up, disk-cache hit, PCA; each set in a fresh process),
decode (server-side, per shipped model; a fresh process's first image grid), memory (a process holding
every shipped checkpoint open; `train` against the reference comes with the training section) and
scaling (1 against 2 processes under torchrun; a folder over the memory budget, streamed, against the
same folder held in memory), inspect (a point's nearest neighbours among 100,000 codes, both distances,
and attribute directions: benchmarks/inspect_speed.py), film (the film's cost to training: whole
`python -m vae_core train` processes with and without it over short and long, MLP and conv, 5k and 60k
image runs, and images/s of the same run in this process, benchmarks/film.py; the replay scrubber's
input → paint and a viewer's server CPU in headless Chromium, benchmarks/film_browser.py). Opt-in, run
only when named in `--only`: load (`benchmarks.load`: Sliders sessions while another trains).

The machine may be shared, so the one-minute load average is recorded before each section; figures
taken under load are slower than the machine can do. Nothing here passes or fails on time: the
targets are printed beside the figures. `--quick` uses smaller sizes and fewer repeats and leaves
out the cold UMAP of the larger set (same keys; that one is null).

A section that raises loses only its own figures: its error goes under `errors` (section -> one line),
its traceback to stderr, the other sections still run, everything measured is printed, and the exit
status is 1 (0 when every section ran).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.machine import load_average, machine_info


@dataclass(frozen=True)
class Sizes:
    train_images: int  # IDX training images (the mnist5k training split tiled)
    test_images: int
    epochs: int
    repeats: int  # whole-process runs of each program; the median is kept
    gemm_seconds: float
    conv_images: int | None  # mnist5k training images for the conv model (None: all 4,000)
    conv_epochs: int
    cli_repeats: int
    umap_small: int
    umap_large: int
    umap_cold_large: bool  # time a fresh process's first UMAP of umap_large codes (about 20 s)
    decode_repeats: int
    folder_images: int = 20_000  # 64 px RGB images in the streamed-folder run of the scaling section
    umap_first_ever: bool = True  # time UMAP with numba's disk cache empty (about 25 s)
    scaling_epochs: int = 3  # mnist5k epochs of the 1-process and torchrun runs of the scaling section
    sprites_full_steps: int = 700  # steps of the streamed 737,280-image sprite grid


FULL = Sizes(60_000, 10_000, 3, 3, 2.0, None, 2, 3, 1000, 5000, True, 200)
QUICK = Sizes(5_000, 1_000, 1, 1, 1.0, 1000, 1, 1, 1000, 2000, False, 30, 2_000, umap_first_ever=False,
              scaling_epochs=1, sprites_full_steps=259)

REQUIRED = ("train_speedup", "train_images_per_s", "train_loop_speedup", "train_loop_gflops", "gemm_ceiling_gflops",
            "cli_startup_s", "first_paint_s", "umap_cold_s", "umap_warm_s", "projection_cache_hit_s",
            "decode_ms_p50", "server_peak_rss_mb", "device")

# figure -> (target on a CPU, on a GPU, comparison): None where the issue sets none for that device
TARGETS = {
    "train_speedup": (2.3, 10.0, ">="),
    "train_loop_fraction_of_gemm": (0.85, None, ">="),
    "first_paint_s": (5.0, None, "<="),
    "first_paint_cold_numba_s": (10.0, None, "<="),  # a fresh install: numba's cache empty
    "sliders_first_frame_cold_numba_s": (15.0, None, "<="),
    "deep_link_heading_s": (3.0, 3.0, "<="),  # a fresh server: a link's navigation and heading on screen
    "map_on_screen_s": (1.0, 1.0, "<="),  # a fresh server and browser: the first visit
    "map_after_navigation_s": (1.0, 1.0, "<="),  # the page opened from the sidebar of the open app
    "umap_cold_s": (5.0, 5.0, "<="),
    "umap_cold_large_s": (15.0, 15.0, "<="),
    "projection_cache_hit_s": (0.3, 0.3, "<="),
    "server_peak_rss_mb": (1536.0, 1536.0, "<="),
    "neighbours_ms_p95": (100.0, 100.0, "<="),  # a point's nearest neighbours among 100,000 codes (issue 26)
    "film_cost_fraction": (0.05, 0.05, "<="),  # the live map's film, of the run's images/s (issue 25)
    "film_whole_process_cost_max": (0.05, 0.05, "<="),  # the film, of whole train processes' wall time (issue 32)
    "film_scrub_ms_p95": (33.0, 33.0, "<="),  # the replay scrubber's input -> paint (issue 25)
}


def mnist_root(work: Path, sizes: Sizes) -> Path:
    """The IDX files both training programs read (written once per run)."""
    from benchmarks.mnist_files import write_mnist_files

    root = work / "data"
    if not (root / "MNIST" / "raw").exists():
        write_mnist_files(root, sizes.train_images, sizes.test_images)
    return root


def section_training(sizes: Sizes, work: Path, device: str) -> dict:
    from benchmarks.training import compare, conv_images_per_s, gemm_ceiling_gflops, loop_floor

    out = compare(mnist_root(work, sizes), epochs=sizes.epochs, repeats=sizes.repeats, device=device)
    out["gemm_ceiling_gflops"] = gemm_ceiling_gflops(device="cuda" if device == "cuda" else "cpu",
                                                     seconds=sizes.gemm_seconds)
    out["train_loop_fraction_of_gemm"] = out["train_loop_gflops"] / out["gemm_ceiling_gflops"]
    # the epoch's GEMMs and Adam alone: how close to the ceiling any loop could come here
    out.update(loop_floor(out["train_images"], device="cuda" if device == "cuda" else "cpu"))
    out["train_loop_floor_fraction_of_gemm"] = out["train_loop_floor_gflops"] / out["gemm_ceiling_gflops"]
    out["train_rss_vs_reference"] = out["train_peak_rss_mb"] / out["reference_peak_rss_mb"]
    out["conv_images_per_s"] = conv_images_per_s(epochs=sizes.conv_epochs, n_train=sizes.conv_images,
                                                 device=device)
    return out


def section_startup(sizes: Sizes, work: Path, device: str) -> dict:
    from benchmarks.serving import CHECKPOINTS
    from benchmarks.startup import (
        app_train_first_step,
        cli_startup,
        deep_links,
        first_paint,
        first_paint_cold_numba,
        train_first_step,
    )
    from tests.browser import chromium_available

    out = cli_startup(sizes.cli_repeats)
    out["train_first_step_s"] = train_first_step(mnist_root(work, sizes), work / "first-step.pt")
    out["app_train_first_step_s"] = app_train_first_step(work / "app-first-step.pt")
    if chromium_available():
        out.update(first_paint(CHECKPOINTS))
        out.update(first_paint_cold_numba(CHECKPOINTS))
        out.update(deep_links(CHECKPOINTS))
    else:
        out.update(first_paint_s=None, map_on_screen_s=None, map_after_navigation_s=None,
                   first_paint_cold_numba_s=None, sliders_first_frame_cold_numba_s=None, deep_link_heading_s=None,
                   first_paint_skipped="no Chromium (tests.browser.CHROMIUM)")
    return out


def section_projection(sizes: Sizes, work: Path, device: str) -> dict:
    """Codes: the shipped mnist5k-conv-z16 model's means of mnist5k's images (all 5,000 at most)."""
    import numpy as np

    from benchmarks.projection import run_modes
    from benchmarks.serving import CHECKPOINTS
    from vae_core import load_checkpoint, load_dataset
    from vae_core.latent import encode

    model = load_checkpoint(CHECKPOINTS / "mnist5k-conv-z16.pt").model
    mu, _ = encode(model, load_dataset("mnist5k").images[: sizes.umap_large])
    path = work / "codes.npy"
    np.save(path, mu.numpy())
    return run_modes(path, sizes.umap_small, cold_large=sizes.umap_cold_large, first_ever=sizes.umap_first_ever)


def section_decode(sizes: Sizes, work: Path, device: str) -> dict:
    from benchmarks.serving import decode_latency, first_grid, shipped

    return {**decode_latency(shipped(), sizes.decode_repeats), **first_grid()}


def section_memory(sizes: Sizes, work: Path, device: str) -> dict:
    from benchmarks.serving import server_memory

    return server_memory()


def section_scaling(sizes: Sizes, work: Path, device: str) -> dict:
    from benchmarks.scaling import run

    return run(work, images=sizes.folder_images, device=device, epochs=sizes.scaling_epochs,
               sprites_steps=sizes.sprites_full_steps)


def section_inspect(sizes: Sizes, work: Path, device: str) -> dict:
    from benchmarks.inspect_speed import neighbours

    return neighbours(queries=50 if sizes is FULL else 20)


def section_film(sizes: Sizes, work: Path, device: str) -> dict:
    from benchmarks.film import CONFIGS, QUICK_CONFIGS, film_cost, whole_process
    from benchmarks.film_browser import film_browser

    quick = sizes is not FULL
    out = whole_process(QUICK_CONFIGS if quick else tuple(CONFIGS), repeats=2 if quick else 3, work=work,
                        device=device)
    out.update(film_cost(epochs=2 if quick else 3, repeats=2 if quick else 3, device=device))
    return {**out, **film_browser(work, watch_s=20.0 if quick else 40.0)}


def section_load(sizes: Sizes, work: Path, device: str) -> dict:
    from benchmarks.load import run as sessions_under_load

    return {"load": sessions_under_load()}


SECTIONS = {"training": section_training, "startup": section_startup, "projection": section_projection,
            "decode": section_decode, "memory": section_memory, "scaling": section_scaling,
            "inspect": section_inspect, "film": section_film}
OPT_IN = {"load": section_load}  # only when named in --only: 7 browser sessions for minutes (issue 11)


def targets(result: dict) -> dict:
    """Each target the issue sets, for this device, and whether the figure meets it; a figure that is
    missing (its section failed or was not run) or not a number has no entry."""
    gpu = str(result.get("device", "")).lower().startswith(("cuda", "nvidia", "gpu"))
    out = {}
    for key, (cpu_target, gpu_target, op) in TARGETS.items():
        target, value = gpu_target if gpu else cpu_target, result.get(key)
        if target is None or not _number(value):
            continue
        out[key] = {"target": f"{op} {target:g}", "met": value >= target if op == ">=" else value <= target}
    train, reference = result.get("train_peak_rss_mb"), result.get("reference_peak_rss_mb")
    if _number(train) and _number(reference):
        out["train_peak_rss_mb"] = {"target": "<= reference_peak_rss_mb", "met": train <= reference}
    return out


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def section_error(error: BaseException) -> str:
    """One line for a failed section: the exception, and where it was raised (the traceback's last
    frame), e.g. "RuntimeError: no GPU (benchmarks/serving.py:41 in decode_latency)"."""
    message = str(error).strip().splitlines()
    text = f"{type(error).__name__}: {message[0][:300]}" if message else type(error).__name__
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return text
    where = Path(frames[-1].filename)
    try:
        where = where.resolve().relative_to(Path(__file__).resolve().parents[1])
    except ValueError:  # raised outside the repository (a library): its path as it is
        pass
    return f"{text} ({where}:{frames[-1].lineno} in {frames[-1].name})"


def run(sizes: Sizes = FULL, sections: tuple[str, ...] = tuple(SECTIONS), device: str = "auto") -> dict:
    info = machine_info(device)
    result = {"device": info["device"], "machine": info, "sizes": asdict(sizes), "load_average_by_section": {},
              "seconds_by_section": {}, "errors": {}}
    resolved = "cuda" if info["device"].lower().startswith(("cuda", "nvidia")) else "cpu"
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        for name in sections:
            result["load_average_by_section"][name] = load_average()
            t0 = time.perf_counter()
            try:
                result.update({**SECTIONS, **OPT_IN}[name](sizes, Path(tmp), resolved))
            except (Exception, SystemExit) as e:  # noqa: BLE001 - one section's failure must not lose the others'
                result["errors"][name] = section_error(e)
                print(f"benchmarks: the {name} section failed; the other sections go on", file=sys.stderr)
                traceback.print_exc()
            result["seconds_by_section"][name] = time.perf_counter() - t0
    result["load_average_after"] = load_average()
    result["targets"] = targets(result)
    return _rounded(result)


def _rounded(value):
    if isinstance(value, float):
        return round(value, 4) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def _print_table(result: dict) -> None:
    m = result["machine"]
    print(f"{result['device']} · {m['cores']} cores, torch {m['torch']} ({m['torch_threads']} threads), "
          f"Python {m['python']} · {m['platform']}")
    print(f"load average (1 min) before each section: {result['load_average_by_section']}, after: "
          f"{result['load_average_after']} (the machine is shared; figures under load are slower)")
    print(f"seconds each section took: {result['seconds_by_section']}")
    skip = {"device", "machine", "sizes", "load_average_by_section", "load_average_after", "targets", "decode",
            "seconds_by_section", "errors", "film_whole_process"}
    for key, value in result.items():
        if key not in skip:
            print(f"  {key:<32} {value}")
    for name, d in result.get("decode", {}).items():
        print(f"  decode {name:<25} p50 {d['p50_ms']:.2f} ms, p95 {d['p95_ms']:.2f} ms")
    for name, d in (result.get("film_whole_process") or {}).items():  # the film's cost, whole processes
        if "error" in d:
            print(f"  film   {name:<25} FAILED {d['error']}")
            continue
        print(f"  film   {name:<25} {d['film_wall_s']:.2f} s with, {d['no_film_wall_s']:.2f} s without: cost "
              f"{100 * d['cost_fraction']:+.1f}% (worst pair {100 * d['cost_fraction_worst']:+.1f}%, CPU "
              f"{100 * (d['cpu_cost_fraction'] or 0):+.1f}%), {d['film_frames']} frames, load {d['load_average']}")
    for key, t in result["targets"].items():
        print(f"  target {key:<25} {t['target']:<26} {'met' if t['met'] else 'NOT met'}")
    for name, error in result.get("errors", {}).items():
        print(f"  FAILED {name:<25} {error}")
    if result.get("errors"):
        print(f"{len(result['errors'])} of {len(result['seconds_by_section'])} sections failed: their figures "
              "are missing above")


def main(argv: list[str] | None = None) -> int:
    """Run the sections and print their figures; 1 when a section failed (its error is printed with the
    rest), else 0."""
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--quick", action="store_true", help="smaller sizes and fewer repeats (under 3 minutes)")
    p.add_argument("--only", default=",".join(SECTIONS),
                   help=f"sections, comma-separated ({', '.join(SECTIONS)}; opt-in: {', '.join(OPT_IN)})")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    args = p.parse_args(argv)
    sections = tuple(s for s in args.only.split(",") if s)
    unknown = sorted(set(sections) - set(SECTIONS) - set(OPT_IN))
    if unknown:
        p.error(f"unknown section(s) {', '.join(unknown)}; valid: {', '.join([*SECTIONS, *OPT_IN])}")
    result = run(QUICK if args.quick else FULL, sections, args.device)
    if args.json:
        print(json.dumps(result, indent=1, default=str))  # an odd value a section returned never loses the rest
    else:
        _print_table(result)
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())

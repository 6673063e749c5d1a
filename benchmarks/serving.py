"""What the server does per shipped model: decode one z to a display-ready image, and hold every
shipped checkpoint open.

- decode: `png_bytes(decode(model, z)[0])` (the decoder, then the nearest-neighbour upscale and PNG
  encoding a page shows), one z at a time, p50 / p95 over `repeats` calls after a few warm-up calls;
- memory: `python -m benchmarks.serving` in a fresh process imports streamlit and the engine, opens
  every shipped checkpoint and encodes its test split (what the latent map does per model), and
  its peak resident memory is read by the `benchmarks.peak` wrapper;
- the first grid: `python -m benchmarks.serving --first-grid` in a fresh process times its first
  `grid_png` (the tiles the Sliders, Generate and Interpolate pages show) of 64 decoded prior draws,
  imports included (it once imported torchvision, ~1 s).
"""

from __future__ import annotations

import time
from pathlib import Path

from benchmarks.machine import ROOT, load_average, percentiles_ms, run_timed

CHECKPOINTS = ROOT / "checkpoints"


def shipped(checkpoints: Path = CHECKPOINTS) -> list[Path]:
    """The shipped checkpoints (vae_core.presets) present in `checkpoints`."""
    from vae_core.presets import PRESETS

    return [checkpoints / f"{name}.pt" for name in sorted(PRESETS) if (checkpoints / f"{name}.pt").exists()]


def decode_latency(paths: list[Path], repeats: int) -> dict:
    import torch

    from vae_core import load_checkpoint
    from vae_core.images import png_bytes
    from vae_core.latent import decode

    per_model = {}
    for path in paths:
        model = load_checkpoint(path).model
        zs = torch.randn(repeats + 5, model.latent_dim, generator=torch.Generator().manual_seed(0))
        times = []
        for i, z in enumerate(zs):
            t0 = time.perf_counter()
            png_bytes(decode(model, z[None])[0])
            if i >= 5:  # the first calls warm allocator and kernels up
                times.append(time.perf_counter() - t0)
        p50, p95 = percentiles_ms(times)
        per_model[path.stem] = {"p50_ms": p50, "p95_ms": p95}
    return {"decode": per_model, "decode_ms_p50": max(m["p50_ms"] for m in per_model.values()),
            "decode_ms_p95": max(m["p95_ms"] for m in per_model.values()), "decode_load_average": load_average()}


def server_memory() -> dict:
    load = load_average()
    child = run_timed(["-m", "benchmarks.serving"])
    return {"server_peak_rss_mb": child.peak_rss_mb, "server_models_opened": int(child.stdout.strip() or 0),
            "server_memory_load_average": load}


def first_grid() -> dict:
    load = load_average()
    child = run_timed(["-m", "benchmarks.serving", "--first-grid"])
    return {"first_grid_s": float(child.stdout.strip()), "first_grid_load_average": load}


def time_first_grid() -> float:
    import torch

    from vae_core import load_checkpoint
    from vae_core.images import grid_png
    from vae_core.latent import decode

    model = load_checkpoint(shipped()[0]).model
    images = decode(model, torch.randn(64, model.latent_dim, generator=torch.Generator().manual_seed(0)))
    t0 = time.perf_counter()
    grid_png(images, 8)
    return time.perf_counter() - t0


def open_everything() -> int:
    import streamlit  # noqa: F401 - the server has it loaded

    from vae_core import load_checkpoint, load_for_config
    from vae_core.latent import encode

    held = []
    for path in shipped():
        ckpt = load_checkpoint(path)
        held.append((ckpt, encode(ckpt.model, load_for_config(ckpt.config, download=False).split("test").images)))
    return len(held)


if __name__ == "__main__":
    import sys

    print(time_first_grid() if sys.argv[1:] == ["--first-grid"] else open_everything())

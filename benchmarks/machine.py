"""What every figure is measured on, and how a child process is timed.

A child is timed from just before it is started until it exits. Its peak resident memory is its own
VmHWM, written by the `benchmarks.peak` wrapper it runs under (the ru_maxrss a parent sees would
carry the parent's own peak over), so each run's memory is its own.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Timed:
    wall_s: float
    peak_rss_mb: float
    stdout: str


def machine_info(device: str) -> dict:
    import torch

    from vae_core.device import describe_device, resolve_device

    load1, load5, load15 = os.getloadavg()
    return {
        "cores": os.cpu_count(), "load_average": [round(load1, 2), round(load5, 2), round(load15, 2)],
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
        "platform": platform.platform(), "processor": platform.processor() or platform.machine(),
        "device": describe_device(resolve_device(device)),
    }


def load_average() -> float:
    """The one-minute load average now: other work on the machine makes every figure slower."""
    return round(os.getloadavg()[0], 2)


def run_timed(args: list[str], *, env: dict | None = None) -> Timed:
    """Run `python -m MODULE ARGS...` (args = ["-m", MODULE, ...]) from the repository root; wall time
    and the child's own peak RSS."""
    if args[0] != "-m":
        raise ValueError(f"run_timed runs modules: args must start with -m (got {args[:2]})")
    with tempfile.TemporaryDirectory() as tmp:
        peak, err = Path(tmp) / "peak", Path(tmp) / "stderr"
        with open(err, "w") as err_file:
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "benchmarks.peak", str(peak), *args[1:]], cwd=ROOT,
                                  env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=err_file,
                                  text=True)
            wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"python {' '.join(args)} failed ({proc.returncode}): {err.read_text().strip()[-600:]}")
        return Timed(wall, int(peak.read_text()) / 1024, proc.stdout)


def median_run(args: list[str], repeats: int, **kw) -> tuple[Timed, list[float]]:
    """The run with the median wall time of `repeats` runs, and every run's wall time."""
    runs = sorted((run_timed(args, **kw) for _ in range(repeats)), key=lambda t: t.wall_s)
    return runs[len(runs) // 2], [round(r.wall_s, 3) for r in runs]


def percentiles_ms(seconds: list[float]) -> tuple[float, float]:
    """p50 and p95 of a list of durations, in milliseconds."""
    ms = sorted(s * 1000 for s in seconds)
    p95 = statistics.quantiles(ms, n=20, method="inclusive")[-1] if len(ms) > 1 else ms[0]
    return statistics.median(ms), p95

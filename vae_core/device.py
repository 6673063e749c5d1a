"""Where tensors live (CUDA, then Apple MPS, then CPU), and how the CPU is shared: subnormals flushed,
and a training run beside a server given fewer threads and a lower OS priority."""

from __future__ import annotations

import os
import sys
import threading

import torch

from vae_core.errors import VAEError

BACKGROUND_NICE = 10  # niceness a training thread adds to its own (19 at most)
# with a training thread in the process, the interpreter lock changes hands at least this often (s;
# Python's default is 5 ms): a page's rerun takes and gives it back at every torch call, and waited
# up to the whole interval behind the training loop each time
SWITCH_INTERVAL_S = 0.001


def resolve_device(name: str = "auto") -> torch.device:
    """`auto` picks CUDA, then MPS, then CPU; naming one that is not there is a clear error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise VAEError("device cuda was asked for, but no CUDA GPU is available (use --device auto)")
    if name == "mps" and not torch.backends.mps.is_available():
        raise VAEError("device mps was asked for, but Apple MPS is not available (use --device auto)")
    if name not in ("cpu", "cuda", "mps"):
        raise VAEError(f"device must be one of auto, cpu, cuda, mps (got {name!r})")
    return torch.device(name)


def describe_device(device: torch.device) -> str:
    """A short human name for the device, e.g. 'CUDA (NVIDIA H100)' or 'CPU (2 threads)'."""
    if device.type == "cuda":
        return f"CUDA ({torch.cuda.get_device_name(device)})"
    if device.type == "mps":
        return "Apple MPS"
    n = torch.get_num_threads()
    return f"CPU ({n} thread{'' if n == 1 else 's'})"


def flush_subnormals() -> None:
    """Flush subnormal floats (below ~1e-38) to zero in this thread's CPU math, and in the threads it
    starts afterwards (the x86 control register is per thread and inherited, so call it before the
    first parallel torch operation of the thread). x86 computes subnormals in microcode: as Adam's
    moments and the gradients shrink, each epoch of the 784-400-20 MLP got slower (1.50, 1.64, 1.77 s);
    flushed, 1.47-1.54 s, with the same losses. A no-op where the CPU cannot."""
    torch.set_flush_denormal(True)


def background_thread_setup() -> None:
    """For a training thread beside a server: one core fewer than the machine for its math (the
    setting is per thread, so the server's threads keep theirs) and a lower OS priority (Linux,
    where a thread has its own), so pages stay responsive while it runs."""
    flush_subnormals()  # before this thread's first parallel operation starts its workers
    torch.set_num_threads(max(1, (os.cpu_count() or 1) - 1))
    sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))
    if sys.platform.startswith("linux"):
        try:
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + BACKGROUND_NICE))
        except OSError:
            pass  # not permitted here: run at the usual priority


def background_process_setup() -> None:
    """For a training run in a process of its own beside a server: one core fewer than the machine
    for its math, and on Linux the idle scheduling class (SCHED_IDLE: it runs on whatever CPU time
    the server and everything else leave, however much that is); elsewhere a lower priority."""
    flush_subnormals()
    torch.set_num_threads(max(1, (os.cpu_count() or 1) - 1))
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        return
    except (OSError, AttributeError):
        pass  # not Linux, or not permitted
    try:
        os.nice(BACKGROUND_NICE)
    except (OSError, AttributeError):
        pass  # not permitted, or no nice here: run at the usual priority

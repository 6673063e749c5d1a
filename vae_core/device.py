"""Where tensors live: CUDA, then Apple MPS, then CPU."""

from __future__ import annotations

import torch

from vae_core.errors import VAEError


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

"""Training in several processes with PyTorch's own engine: `torchrun` starts the processes,
`torch.distributed` joins them (NCCL on GPUs, Gloo on CPUs), `DistributedDataParallel` averages the
gradients. This module only reads what torchrun set (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, ...),
joins the group, and offers the few collective steps the trainer needs.

A single process (no torchrun) gets `SINGLE`, whose methods do nothing, so the trainer has one code path.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import timedelta

import torch

from vae_core.errors import VAEError, first_line

TIMEOUT_MINUTES = 30  # a rank waiting longer than this on the others gives up with an error


@dataclass(frozen=True)
class Group:
    """This process's place in the run: rank (0 is the one that writes), world size, local rank."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = ""

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    # --- collectives; no-ops in one process
    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sums `tensor` over every rank, in place; returns it."""
        if self.active:
            torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.SUM)
        return tensor

    def barrier(self) -> None:
        if self.active:
            torch.distributed.barrier()

    def shard(self, order: torch.Tensor) -> torch.Tensor:
        """This rank's part of an epoch's order of examples, as `DistributedSampler` deals it: the order
        is padded (by repeating its start) to a multiple of the world size, then rank r takes every
        world_size-th example from r on. Every rank gets the same number of examples, so every rank
        takes the same number of steps (DDP needs that)."""
        if not self.active:
            return order
        pad = -len(order) % self.world_size
        if pad:
            order = torch.cat([order, order[:pad]])
        return order[self.rank::self.world_size]

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """The model as DDP sees it (gradients averaged over ranks); the model itself in one process.
        The trainer keeps the bare model for evaluation and checkpoints, so state dicts carry no
        `module.` prefix and a distributed run's checkpoint is the same as a single-process one."""
        if not self.active:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)


SINGLE = Group()


def launched() -> bool:
    """Whether torchrun (or another launcher setting its variables) started this process with others."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def join(device_name: str = "auto") -> Group:
    """Join the process group torchrun set up (NCCL when this rank has a CUDA GPU and the device allows
    it, else Gloo); `SINGLE` when not launched with others. Returns this process's `Group`."""
    if not launched():
        return SINGLE
    import torch.distributed as dist

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device_name in ("auto", "cuda") and torch.cuda.is_available()
    if device_name == "cuda" and not use_cuda:
        raise VAEError("device cuda was asked for, but no CUDA GPU is available (use --device auto)")
    if use_cuda:
        if local >= torch.cuda.device_count():
            raise VAEError(f"local rank {local} has no GPU: this machine has {torch.cuda.device_count()}; "
                           f"start at most that many processes per node")
        torch.cuda.set_device(local)
    backend = "nccl" if use_cuda else "gloo"
    if not dist.is_initialized():
        try:
            dist.init_process_group(backend, timeout=timedelta(minutes=TIMEOUT_MINUTES))
        except (RuntimeError, ValueError) as e:
            raise VAEError(f"could not join the distributed run ({backend}): {error_gist(e)}") from None
    return Group(rank, world, local, backend)


def error_gist(e: Exception) -> str:
    """A torch.distributed error in a few words: its first line without the source locations Gloo and
    NCCL put in brackets, cut at the first sentence."""
    text = re.sub(r"\[[^\]]*\]\s*", "", str(e)).split(". ")[0].strip()
    return first_line(ValueError(text)) if text else type(e).__name__


def leave(group: Group) -> None:
    """Leave the process group (after the last collective)."""
    if group.active and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()

"""The training step captured once as a CUDA graph and replayed for every full batch.

On a GPU a step of this project's models is ~0.3 ms of GPU work behind ~2.5 ms of Python launching its
kernels one by one (issue 27's measurements on an H200), so the loop is bound by the launches. A CUDA graph
records the whole step (forward, the objective, backward, Adam) once and replays it with one launch.

What a replay needs to be the same step as an eager one:
- the batch is copied into a static input buffer; the learning rate and the KL weight (β, a capacity C)
  live in device tensors filled before each replay, so schedules and a β changed live still act at the
  next step;
- the noise (ε of z = μ + σ·ε, β-TCVAE's draw) comes from the run's own generator, registered with the
  graph (`CUDAGraph.register_generator_state`): each replay advances it as the eager step would;
- Adam is the fused kernel (`vae_core.optim.FusedAdam`), whose step count and learning rate stay on the
  device; the gradients are allocated inside the graph (set to None before capture), so backward writes
  them afresh each replay instead of adding to them;
- the first WARMUP_STEPS steps run eagerly on a side stream (as PyTorch's "whole network capture" recipe
  asks: cuBLAS and the allocator set themselves up outside the capture); they are real training steps.

Batches of another shape (an epoch's last, short batch) run eagerly. A torchrun group trains eagerly (DDP's
collectives are not captured here), as does any run where the capture fails: the reason is kept in
`CapturedStep.failed` and the run goes on. `--no-cuda-graphs` (VAEConfig.cuda_graphs) turns it off. The CPU
path never imports or touches any of this beyond `capture_unavailable`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from vae_core.errors import first_line
from vae_core.schedules import KLWeight

WARMUP_STEPS = 3  # eager steps on a side stream before the capture


def capture_unavailable(device: torch.device, *, enabled: bool, world_size: int, optimizer) -> str | None:
    """Why this run's step is not captured (None: it is)."""
    from vae_core.optim import FusedAdam

    if device.type != "cuda":
        return f"CUDA graphs need a CUDA device (training on {device.type})"
    if not enabled:
        return "CUDA graphs turned off (--no-cuda-graphs)"
    if world_size > 1:
        return "a torchrun group trains eagerly (DDP's collectives are not captured)"
    if not isinstance(optimizer, FusedAdam):
        return "CUDA graphs need the fused Adam kernel"
    if not hasattr(torch.cuda.CUDAGraph, "register_generator_state"):
        return f"this torch ({torch.__version__}) cannot capture a seeded generator"
    return None


def eager_step(loss_of: Callable[[torch.Tensor, KLWeight], dict], optimizer, x: torch.Tensor, weight: KLWeight,
               lr: float) -> dict:
    """One optimizer step without a graph: the loss's parts for batch x (`loss_of`), backward, the
    learning rate of this step (the schedule is a function of the step), Adam. Returns the parts, detached."""
    parts = loss_of(x, weight)
    optimizer.zero_grad(set_to_none=True)
    parts["loss"].backward()
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.step()
    return {k: v.detach() for k, v in parts.items()}


class CapturedStep:
    """One optimizer step, eager for the first WARMUP_STEPS calls, then captured and replayed.

    `loss_of(x, weight)` runs the model on images x and returns the loss's parts (a dict of 0-d tensors,
    "loss" among them, as `vae_core.losses.training_loss` does), drawing its noise from `generator`.
    Calling the step with a batch, the step's KLWeight and learning rate returns the parts, detached
    (their values stay valid until the next call)."""

    def __init__(self, loss_of: Callable[[torch.Tensor, KLWeight], dict], optimizer, generator: torch.Generator):
        self.loss_of, self.optimizer, self.generator = loss_of, optimizer, generator
        self.graph: torch.cuda.CUDAGraph | None = None
        self.failed: str | None = None  # why the capture failed: the run then stays eager
        self.warm = 0
        self._side = torch.cuda.Stream(device=generator.device)

    @property
    def captured(self) -> bool:
        return self.graph is not None

    def takes(self, x: torch.Tensor) -> bool:
        """Whether this batch goes through the graph (or its warm-up): not after a failed capture, and only
        in the captured batch's shape."""
        return self.failed is None and (self.graph is None or x.shape == self._x.shape)

    def __call__(self, x: torch.Tensor, weight: KLWeight, lr: float) -> dict:
        if self.graph is None and self.warm < WARMUP_STEPS:
            self.warm += 1
            self._side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(self._side):
                parts = self.eager(x, weight, lr)
            torch.cuda.current_stream().wait_stream(self._side)
            return parts
        if self.graph is None:
            try:
                self._capture(x, weight, lr)
            except RuntimeError as e:  # e.g. an operation that cannot be captured: train eagerly instead
                self.failed = f"CUDA graph capture failed ({first_line(e)}): training eagerly"
                self.graph = None
                torch.cuda.synchronize()
                return self.eager(x, weight, lr)
        self._x.copy_(x)
        self._beta.fill_(float(weight.beta))
        if self._capacity is not None:
            self._capacity.fill_(float(weight.capacity))
        self._lr.fill_(float(lr))
        self.graph.replay()
        return self._parts

    def eager(self, x: torch.Tensor, weight: KLWeight, lr: float) -> dict:
        return eager_step(self.loss_of, self.optimizer, x, weight, lr)

    def _capture(self, x: torch.Tensor, weight: KLWeight, lr: float) -> None:
        dev = x.device
        self._x = x.clone()
        self._beta = torch.tensor(float(weight.beta), device=dev)
        self._capacity = None if weight.capacity is None else torch.tensor(float(weight.capacity), device=dev)
        self._lr = torch.tensor(float(lr), device=dev)
        group = self.optimizer.param_groups[0]
        lr_before = group["lr"]
        self.optimizer.zero_grad(set_to_none=True)  # backward allocates the gradients inside the graph
        graph = torch.cuda.CUDAGraph()
        graph.register_generator_state(self.generator)
        group["lr"] = self._lr  # the fused kernel reads it on the device at every replay
        try:
            with torch.cuda.graph(graph):
                parts = self.loss_of(self._x, KLWeight(self._beta, self._capacity))
                parts["loss"].backward()
                self.optimizer.step()
                self._parts = {k: v.detach() for k, v in parts.items()}
        finally:
            group["lr"] = lr_before  # a float again for the eager steps and the saved state
        self.graph = graph

"""β, capacity and learning-rate schedules: how the numbers that weigh the KL term, and the step size,
move over a run.

All are functions of the training step, so a resumed run picks up exactly where it was. Each kind
is one entry in a table (BETA_SCHEDULE_FUNCTIONS, LR_SCHEDULE_FUNCTIONS); `VAEConfig` takes its
valid names from these tables, so adding a schedule is one function and one entry here. They give
numbers only: how β and a capacity C weigh the loss is the objective's (`vae_core.objectives`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vae_core.errors import VAEError
from vae_core.objectives import OBJECTIVE_SPECS

if TYPE_CHECKING:  # config.py takes the schedule names from here
    from vae_core.config import VAEConfig


@dataclass(frozen=True)
class KLWeight:
    """The numbers that weigh the KL term at one step; how they weigh it is the objective's
    (`vae_core.objectives`: β·KL, β-TCVAE's KL + (β − 1)·TC, or γ·|KL − C|)."""

    beta: float
    capacity: float | None = None  # C, nats; set only for an objective that reads one


def _constant_lr(config: VAEConfig, step: int, total: int) -> float:
    return config.lr


def _cosine_lr(config: VAEConfig, step: int, total: int) -> float:
    """lr·(1 + cos(π·t))/2, t the fraction of the run done (Loshchilov & Hutter 2017, SGDR, one
    cycle without restarts)."""
    return config.lr * 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))


LR_SCHEDULE_FUNCTIONS: dict[str, Callable[[VAEConfig, int, int], float]] = {
    "constant": _constant_lr,
    "cosine": _cosine_lr,
}


def learning_rate(config: VAEConfig, step: int, steps_per_epoch: int) -> float:
    """The step size at `step` (0-based) under the config's `lr_schedule`."""
    total = max(1, config.epochs * steps_per_epoch)
    return _lookup(LR_SCHEDULE_FUNCTIONS, "lr_schedule", config.lr_schedule)(config, step, total)


def _constant(config: VAEConfig, target: float, step: int, per_epoch: int, total: int) -> KLWeight:
    """β throughout."""
    return KLWeight(target)


def _warmup(config: VAEConfig, target: float, step: int, per_epoch: int, total: int) -> KLWeight:
    """β·min(1, step / warmup steps), rising linearly from 0."""
    return KLWeight(target * min(1.0, step / max(1.0, config.warmup_epochs * per_epoch)))


def _cyclical(config: VAEConfig, target: float, step: int, per_epoch: int, total: int) -> KLWeight:
    """`cycles` cycles over the run, β ramping 0→β over the first `cycle_ramp` of each and then
    held (Fu et al. 2019, "Cyclical Annealing Schedule")."""
    period = total / config.cycles
    return KLWeight(target * min(1.0, ((step % period) / period) / config.cycle_ramp))


BETA_SCHEDULE_FUNCTIONS: dict[str, Callable[..., KLWeight]] = {
    "constant": _constant,
    "warmup": _warmup,
    "cyclical": _cyclical,
}


def _lookup(table: dict, field: str, name: str):
    try:
        return table[name]
    except KeyError:
        raise VAEError(f"unknown {field} {name!r}; choose one of: {', '.join(table)}") from None


def kl_weight(config: VAEConfig, step: int, steps_per_epoch: int, beta: float | None = None) -> KLWeight:
    """The KL weight at `step` (0-based) for the config's `beta_schedule` (see each function above).

    `beta` overrides `config.beta` as the schedule's target (it can be changed while a run goes on).
    """
    target = config.beta if beta is None else beta
    total = max(1, config.epochs * steps_per_epoch)
    schedule = _lookup(BETA_SCHEDULE_FUNCTIONS, "beta_schedule", config.beta_schedule)
    weight = schedule(config, target, step, steps_per_epoch, total)
    if OBJECTIVE_SPECS[config.objective].capacity:
        return KLWeight(weight.beta, capacity=capacity(config, step, steps_per_epoch))
    return weight


def capacity(config: VAEConfig, step: int, steps_per_epoch: int) -> float:
    """The capacity C at `step`, nats: rising linearly from 0 to `capacity_max` over `capacity_epochs`
    (the whole run when not set), then held (Burgess et al. 2018)."""
    ramp_epochs = config.capacity_epochs if config.capacity_epochs is not None else config.epochs
    return config.capacity_max * min(1.0, step / max(1.0, ramp_epochs * steps_per_epoch))

"""β and learning-rate schedules: how the KL weight and the step size move over a run.

All are functions of the training step, so a resumed run picks up exactly where it was.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from vae_core.config import VAEConfig


@dataclass(frozen=True)
class KLWeight:
    """The KL term of one step: loss = recon + beta·KL, or recon + gamma·|KL − capacity|.

    With the total correlation `tc` (the beta-tcvae objective, Chen et al. 2018 with α = γ = 1) the
    term is KL + (beta − 1)·TC once beta reaches 1, and beta·KL while a schedule still has it below 1.
    """

    beta: float
    capacity: float | None = None  # nats; set only for the capacity schedule

    def apply(self, kl, tc=None):
        if self.capacity is not None:
            return self.beta * (kl - self.capacity).abs()
        if tc is None:
            return self.beta * kl
        return min(self.beta, 1.0) * kl + max(self.beta - 1.0, 0.0) * tc


def learning_rate(config: VAEConfig, step: int, steps_per_epoch: int) -> float:
    """The step size at `step` (0-based): `lr` throughout, or for `cosine` lr·(1 + cos(π·t))/2 with t
    the fraction of the run done (Loshchilov & Hutter 2017, SGDR, one cycle without restarts)."""
    if config.lr_schedule == "constant":
        return config.lr
    total = max(1, config.epochs * steps_per_epoch)
    return config.lr * 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))


def kl_weight(config: VAEConfig, step: int, steps_per_epoch: int, beta: float | None = None) -> KLWeight:
    """The KL weight at `step` (0-based) for the config's schedule.

    `beta` overrides `config.beta` as the schedule's target (it can be changed while a run goes on).
    - constant: β throughout.
    - warmup: β·min(1, step / warmup steps), rising linearly from 0.
    - cyclical: `cycles` cycles over the run, β ramping 0→β over the first `cycle_ramp` of each
      and then held (Fu et al. 2019, "Cyclical Annealing Schedule").
    - capacity: γ·|KL − C| with C rising linearly from 0 to `capacity_max` nats
      (Burgess et al. 2018, "Understanding disentangling in β-VAE").
    """
    target = config.beta if beta is None else beta
    total = max(1, config.epochs * steps_per_epoch)
    if config.beta_schedule == "constant":
        return KLWeight(target)
    if config.beta_schedule == "warmup":
        ramp = max(1.0, config.warmup_epochs * steps_per_epoch)
        return KLWeight(target * min(1.0, step / ramp))
    if config.beta_schedule == "cyclical":
        period = total / config.cycles
        phase = (step % period) / period
        return KLWeight(target * min(1.0, phase / config.cycle_ramp))
    ramp_epochs = config.capacity_epochs if config.capacity_epochs is not None else config.epochs
    ramp = max(1.0, ramp_epochs * steps_per_epoch)
    return KLWeight(config.gamma, capacity=config.capacity_max * min(1.0, step / ramp))

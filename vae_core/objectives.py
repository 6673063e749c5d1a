"""The objectives: how a training step weighs the KL term of the negative ELBO. One entry each in
OBJECTIVE_SPECS, beside the model families' seam (`vae_core.models.MODEL_SPECS`) and the likelihoods
(`vae_core.losses.LIKELIHOOD_SPECS`); `VAEConfig.objective` takes its names from here, so a new
objective (FactorVAE, say) is one function and one entry.

The numbers an objective reads at a step (β, and a capacity C in nats) come from
`vae_core.schedules.kl_weight`, which only moves numbers over time; the terms themselves (the
reconstruction, the KL per dimension, the total correlation) from `vae_core.losses.elbo_terms`.
Every objective's KL term takes the batch's mean KL (nats per example, summed over dimensions); the
reported negative ELBO is the same for all of them: reconstruction + KL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from vae_core.config import VAEConfig
    from vae_core.schedules import KLWeight


def _beta_vae(kl: torch.Tensor, weight: KLWeight, tc: torch.Tensor | None, config: VAEConfig) -> torch.Tensor:
    """β·KL (Higgins et al. 2017; β = 1 is the plain VAE of Kingma & Welling 2014)."""
    return weight.beta * kl


def _beta_tcvae(kl: torch.Tensor, weight: KLWeight, tc: torch.Tensor | None, config: VAEConfig) -> torch.Tensor:
    """KL + (β − 1)·TC, the total correlation TC estimated on the batch (Chen et al. 2018, with α = γ = 1),
    once β reaches 1; β·KL while a schedule still has β below 1."""
    if isinstance(weight.beta, torch.Tensor):  # a captured step's β lives on the device (vae_core.graphs)
        return weight.beta.clamp(max=1.0) * kl + (weight.beta - 1.0).clamp(min=0.0) * tc
    return min(weight.beta, 1.0) * kl + max(weight.beta - 1.0, 0.0) * tc


def _capacity(kl: torch.Tensor, weight: KLWeight, tc: torch.Tensor | None, config: VAEConfig) -> torch.Tensor:
    """γ·|KL − C|, the capacity C rising from 0 to `capacity_max` nats (Burgess et al. 2018,
    "Understanding disentangling in β-VAE"); β plays no part."""
    return config.gamma * (kl - weight.capacity).abs()


@dataclass(frozen=True)
class ObjectiveSpec:
    label: str  # how a report names it
    kl_term: Callable[..., torch.Tensor]  # (mean KL, KLWeight, TC or None, config) -> the loss's KL term
    total_correlation: bool = False  # needs the batch's total correlation estimate (`elbo_terms`)
    capacity: bool = False  # reads a capacity C (the schedules ramp it)
    uses_beta: bool = True  # β (its schedule, a live β) moves it

    @property
    def description(self) -> str:
        return " ".join((self.kl_term.__doc__ or "").split()).rstrip(".")


OBJECTIVE_SPECS: dict[str, ObjectiveSpec] = {
    "beta-vae": ObjectiveSpec("β-VAE", _beta_vae),
    "beta-tcvae": ObjectiveSpec("β-TCVAE", _beta_tcvae, total_correlation=True),
    "capacity": ObjectiveSpec("capacity", _capacity, capacity=True, uses_beta=False),
}


def weighted_kl(kl: torch.Tensor, weight: KLWeight, config: VAEConfig, tc: torch.Tensor | None = None) -> torch.Tensor:
    """The KL term of the loss at one step under the config's objective; β and C may be numbers or 0-d
    tensors (the same arithmetic)."""
    return OBJECTIVE_SPECS[config.objective].kl_term(kl, weight, tc, config)

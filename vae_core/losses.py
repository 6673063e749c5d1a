"""The objective: reconstruction + β·KL, in nats per example (Kingma & Welling 2014, eq. 10), and the
total correlation that β-TCVAE penalises instead (Chen et al. 2018).

Sums run over pixels and latent dimensions; means run over the batch. The KL to N(0, I) is kept per
latent dimension so front ends can show which dimensions carry information. Each likelihood p(x|z)
is one entry of LIKELIHOOD_SPECS (its reconstruction term and how a number measured with it is named);
`VAEConfig.likelihood` takes its valid names from there.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

if TYPE_CHECKING:  # config.py takes the likelihood names from LIKELIHOOD_SPECS
    from vae_core.config import VAEConfig

LOG_2PI = math.log(2 * math.pi)


def kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, σ²) || N(0, 1)) per example and dimension, (B, D), in nats."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """−log p(x|z) per example (B,), Bernoulli with the given logits; x in [0, 1]."""
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


def gaussian_nll(logits: torch.Tensor, x: torch.Tensor, log_sigma: torch.Tensor | float) -> torch.Tensor:
    """−log p(x|z) per example (B,), Gaussian with mean sigmoid(logits) and σ = exp(log_sigma)."""
    log_sigma = torch.as_tensor(log_sigma, dtype=logits.dtype, device=logits.device)
    mean = torch.sigmoid(logits)
    nll = 0.5 * ((x - mean) * torch.exp(-log_sigma)).pow(2) + log_sigma + 0.5 * LOG_2PI
    return nll.flatten(1).sum(1)


def _bernoulli_recon(model, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return bernoulli_nll(logits, x)


def _gaussian_recon(model, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    log_sigma = model.log_sigma if model.log_sigma is not None else math.log(model.config.sigma)
    return gaussian_nll(logits, x, log_sigma)


def _bernoulli_name(config: VAEConfig) -> str:
    return "Bernoulli on binarized data" if config.binarize else "Bernoulli on grey levels"


def _gaussian_name(config: VAEConfig) -> str:
    if config.sigma_mode == "fixed":
        return f"Gaussian, fixed sigma={config.sigma:g}"
    return f"Gaussian, learned {config.sigma_mode} sigma"


@dataclass(frozen=True)
class LikelihoodSpec:
    description: str
    recon: Callable[..., torch.Tensor]  # (model, logits, x) -> −log p(x|z) per example (B,), nats
    name: Callable[[VAEConfig], str]  # how a number measured with it is named, in words


LIKELIHOOD_SPECS: dict[str, LikelihoodSpec] = {
    "bernoulli": LikelihoodSpec("Bernoulli on grey levels in [0, 1] (or on binarized data: binarize)",
                                _bernoulli_recon, _bernoulli_name),
    "gaussian": LikelihoodSpec("Gaussian with mean sigmoid(logits); sigma fixed or learned (sigma_mode)",
                               _gaussian_recon, _gaussian_name),
}


def recon_nll(model, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The model's reconstruction term −log p(x|z) per example (B,), in nats."""
    return LIKELIHOOD_SPECS[model.config.likelihood].recon(model, logits, x)


def gaussian_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, exp(logvar)) per element (broadcast shapes), in nats."""
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar))


def total_correlation(mu: torch.Tensor, logvar: torch.Tensor, dataset_size: int,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """Total correlation KL(q(z) || prod_j q(z_j)) of the aggregate posterior, in nats: the
    minibatch-weighted sampling estimate of Chen et al. 2018 ("Isolating Sources of Disentanglement
    in VAEs", section 4.1) from a batch of posteriors mu, logvar (B, D) over a dataset of
    `dataset_size` images. z is one fresh draw from each q(z|x_i).

    log q(z_i) ≈ logsumexp_j log q(z_i | x_j) − log(B · N), and the same per dimension for q(z_ij).
    Differentiable in mu and logvar (reparameterized). As in the paper's code, the value carries an
    offset between (D − 1)·log B (posteriors that do not overlap) and (D − 1)·log N nats (posteriors
    that all overlap); its gradient, and differences between codes, are what the objective uses.
    """
    eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    z = mu + torch.exp(0.5 * logvar) * eps  # (B, D)
    log_q = gaussian_log_density(z[:, None, :], mu[None], logvar[None])  # (B, B, D): z_i under q(.|x_j)
    log_norm = math.log(mu.shape[0] * dataset_size)
    log_qz = torch.logsumexp(log_q.sum(2), dim=1) - log_norm  # (B,)
    log_prod_qzj = (torch.logsumexp(log_q, dim=1) - log_norm).sum(1)  # (B,)
    return (log_qz - log_prod_qzj).mean()

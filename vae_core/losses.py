"""The objective: reconstruction + β·KL, in nats per example (Kingma & Welling 2014, eq. 10).

Sums run over pixels and latent dimensions; means run over the batch. The KL to N(0, I) is kept per
latent dimension so front ends can show which dimensions carry information.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

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


def recon_nll(model, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The model's reconstruction term −log p(x|z) per example (B,), in nats."""
    cfg = model.config
    if cfg.likelihood == "bernoulli":
        return bernoulli_nll(logits, x)
    log_sigma = model.log_sigma if model.log_sigma is not None else math.log(cfg.sigma)
    return gaussian_nll(logits, x, log_sigma)

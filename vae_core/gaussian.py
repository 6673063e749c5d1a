"""The diagonal Gaussian: the posterior q(z|x) = N(mu, diag(exp(logvar))) of the shipped models and their
prior N(0, I). One home for drawing from it, its log-density and its KL, so the model, the objective
(`vae_core.losses`) and the anomaly scores cannot disagree on a formula.

It is a named pair, so `mu, logvar = model.encode(x)` still reads the codes and their log-variances.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

LOG_2PI = math.log(2 * math.pi)


class DiagonalGaussian(NamedTuple):
    mu: torch.Tensor  # (..., D)
    logvar: torch.Tensor  # (..., D), log σ²

    @classmethod
    def standard(cls, latent_dim: int, device: torch.device | str | None = None) -> DiagonalGaussian:
        """N(0, I) in `latent_dim` dimensions: parameters (D,), which broadcast against any batch of z."""
        zeros = torch.zeros(latent_dim, device=device)
        return cls(zeros, zeros)

    @property
    def mean(self) -> torch.Tensor:
        return self.mu

    def float(self) -> DiagonalGaussian:
        """In float32 (the objective's precision when the model ran under autocast)."""
        return DiagonalGaussian(self.mu.float(), self.logvar.float())

    def rsample(self, generator: torch.Generator | None = None, sample_shape: tuple[int, ...] = ()) -> torch.Tensor:
        """z = mu + σ·ε with ε ~ N(0, I) (the reparameterization trick: gradients flow through mu and σ),
        shape (*sample_shape, *mu.shape); the noise comes from `generator`."""
        eps = torch.randn((*sample_shape, *self.mu.shape), generator=generator, device=self.mu.device,
                          dtype=self.mu.dtype)
        return self.mu + torch.exp(0.5 * self.logvar) * eps

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log N(z; mu, σ²) per element, in nats; z broadcasts against the parameters (z[:, None, :]
        against (B, D) parameters gives (B, B, D): every code under every posterior)."""
        return -0.5 * (LOG_2PI + self.logvar + (z - self.mu).pow(2) * torch.exp(-self.logvar))

    def kl_per_dim(self) -> torch.Tensor:
        """KL(N(mu, σ²) || N(0, 1)) per element, (..., D), in nats: the KL to the standard normal prior."""
        return 0.5 * (self.mu.pow(2) + self.logvar.exp() - 1.0 - self.logvar)

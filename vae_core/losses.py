"""The objective in one place: the terms of the negative ELBO (Kingma & Welling 2014, eq. 10) for a
batch of a model's outputs (`elbo_terms`), and the training loss a step minimises (`training_loss`:
the reconstruction plus the KL term of the config's objective, an entry of `vae_core.objectives`).
Training, evaluation and every anomaly score take their numbers from `elbo_terms`; `vae_core.schedules`
only says what β and C are at a step.

Everything is in nats: sums over pixels and latent dimensions, per example, and means over the batch
where a loss is one number. The KL is kept per latent dimension so front ends can show which
dimensions carry information; the model says what it is (`kl_per_dim`, see `vae_core.models`). Each
likelihood p(x|z) is one entry of LIKELIHOOD_SPECS (its per-pixel reconstruction term and how a number
measured with it is named); `VAEConfig.likelihood` takes its valid names from there.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from vae_core.gaussian import LOG_2PI
from vae_core.objectives import OBJECTIVE_SPECS, weighted_kl

if TYPE_CHECKING:  # config.py takes the likelihood names from LIKELIHOOD_SPECS
    from vae_core.config import VAEConfig
    from vae_core.schedules import KLWeight


def bernoulli_pixel_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """−log p(x|z) per pixel (the shape of `logits`), Bernoulli with the given logits; x in [0, 1],
    broadcast to the logits (one image's pixels against several samples' logits)."""
    return F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none")


def gaussian_pixel_nll(logits: torch.Tensor, x: torch.Tensor, log_sigma: torch.Tensor | float) -> torch.Tensor:
    """−log p(x|z) per pixel, Gaussian with mean sigmoid(logits) and σ = exp(log_sigma)."""
    log_sigma = torch.as_tensor(log_sigma, dtype=logits.dtype, device=logits.device)
    mean = torch.sigmoid(logits)
    return 0.5 * ((x - mean) * torch.exp(-log_sigma)).pow(2) + log_sigma + 0.5 * LOG_2PI


def _bernoulli_recon(model, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return bernoulli_pixel_nll(logits, x)


def _gaussian_recon(model, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    log_sigma = model.log_sigma if model.log_sigma is not None else math.log(model.config.sigma)
    return gaussian_pixel_nll(logits, x, log_sigma)


def _bernoulli_name(config: VAEConfig) -> str:
    return "Bernoulli on binarized data" if config.binarize else "Bernoulli on grey levels"


def _gaussian_name(config: VAEConfig) -> str:
    if config.sigma_mode == "fixed":
        return f"Gaussian, fixed sigma={config.sigma:g}"
    return f"Gaussian, learned {config.sigma_mode} sigma"


@dataclass(frozen=True)
class LikelihoodSpec:
    description: str
    recon: Callable[..., torch.Tensor]  # (model, logits, x) -> −log p(x|z) per pixel (the logits' shape), nats
    name: Callable[[VAEConfig], str]  # how a number measured with it is named, in words


LIKELIHOOD_SPECS: dict[str, LikelihoodSpec] = {
    "bernoulli": LikelihoodSpec("Bernoulli on grey levels in [0, 1] (or on binarized data: binarize)",
                                _bernoulli_recon, _bernoulli_name),
    "gaussian": LikelihoodSpec("Gaussian with mean sigmoid(logits); sigma fixed or learned (sigma_mode)",
                               _gaussian_recon, _gaussian_name),
}


def total_correlation(posterior, dataset_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Total correlation KL(q(z) || prod_j q(z_j)) of the aggregate posterior, in nats: the
    minibatch-weighted sampling estimate of Chen et al. 2018 ("Isolating Sources of Disentanglement
    in VAEs", section 4.1) from a batch of posteriors (B, D) over a dataset of `dataset_size` images.
    z is one fresh draw from each q(z|x_i).

    log q(z_i) ≈ logsumexp_j log q(z_i | x_j) − log(B · N), and the same per dimension for q(z_ij).
    Differentiable in the posteriors' parameters (reparameterized). As in the paper's code, the value
    carries an offset between (D − 1)·log B (posteriors that do not overlap) and (D − 1)·log N nats
    (posteriors that all overlap); its gradient, and differences between codes, are what the objective
    uses.
    """
    z = posterior.rsample(generator)  # (B, D)
    log_q = posterior.log_prob(z[:, None, :])  # (B, B, D): z_i under q(.|x_j)
    log_norm = math.log(z.shape[0] * dataset_size)
    log_qz = torch.logsumexp(log_q.sum(2), dim=1) - log_norm  # (B,)
    log_prod_qzj = (torch.logsumexp(log_q, dim=1) - log_norm).sum(1)  # (B,)
    return (log_qz - log_prod_qzj).mean()


@dataclass(frozen=True)
class ElboTerms:
    """The negative ELBO's terms for a batch of N images, in nats, per example (not yet averaged).
    With S draws of z per image (`elbo_terms` given z (S, N, D)) the per-draw terms are (S, N)."""

    recon: torch.Tensor  # (N,) or (S, N): −log p(x|z)
    kl: torch.Tensor  # (N, D): KL(q(z|x) || p(z)) per latent dimension, the model's (analytic)
    recon_map: torch.Tensor | None = None  # (N, C, H, W) or (S, N, C, H, W): −log p(x|z) per pixel
    log_weight: torch.Tensor | None = None  # like recon: log p(x|z) + log p(z) − log q(z|x) at the drawn z
    tc: torch.Tensor | None = None  # (): the batch's total correlation estimate (β-TCVAE)

    @property
    def nelbo(self) -> torch.Tensor:
        """recon + KL per example, (N,): the one-sample negative ELBO."""
        return self.recon + self.kl.sum(-1)


def elbo_terms(model, x: torch.Tensor, outputs: tuple, *, recon_map: bool = False, importance: bool = False,
               tc_dataset_size: int | None = None, generator: torch.Generator | None = None) -> ElboTerms:
    """The negative ELBO's terms for images x (N, C, H, W) and the model's `outputs` for them,
    (logits, posterior, z) as `model(x, generator)` returns them (see `vae_core.models` for what a model
    provides); logits (*S, N, C, H, W) decoded from z (*S, N, D), S draws per image or none.

    Reconstruction is −log p(x|z) under the model's likelihood (`config.likelihood`), summed over
    pixels; the KL is the model's own, per latent dimension. Asked for, also: `recon_map`, the
    reconstruction per pixel (it sums to `recon`); `importance`, the log importance weight at the
    drawn z (Burda et al. 2016, eq. 8: −log of its mean over z estimates −log p(x)); `tc_dataset_size`,
    β-TCVAE's total correlation over a dataset of that many images, from one more draw from
    `generator`. Model outputs in a lower precision (autocast) are scored in float32.
    """
    logits, posterior, z = outputs
    posterior = posterior.float()
    pixels = LIKELIHOOD_SPECS[model.config.likelihood].recon(model, logits.float(), x)  # (*S, N, C, H, W)
    recon = pixels.flatten(-3).sum(-1)  # (*S, N)
    kl = model.kl_per_dim(posterior)  # (N, D)
    log_weight = None
    if importance:
        log_weight = -recon + model.prior().log_prob(z).sum(-1) - posterior.log_prob(z).sum(-1)
    tc = total_correlation(posterior, tc_dataset_size, generator) if tc_dataset_size is not None else None
    return ElboTerms(recon, kl, pixels if recon_map else None, log_weight, tc)


def training_loss(model, x: torch.Tensor, outputs: tuple, weight: KLWeight, *, dataset_size: int,
                  generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """The loss one training step minimises for images x and the model's `outputs` for them, and its
    parts, each in nats per example (means over the batch): "recon", "kl", "loss" = recon + the KL
    term of the config's objective (`vae_core.objectives`, with `weight` from
    `vae_core.schedules.kl_weight`) and, for an objective with a total correlation (beta-tcvae), "tc"
    (estimated over a training set of `dataset_size` images, from a draw from `generator`)."""
    tcvae = OBJECTIVE_SPECS[model.config.objective].total_correlation
    terms = elbo_terms(model, x, outputs, tc_dataset_size=dataset_size if tcvae else None, generator=generator)
    recon, kl = terms.recon.mean(), terms.kl.mean(0).sum()
    parts = {"recon": recon, "kl": kl, "loss": recon + weighted_kl(kl, weight, model.config, terms.tc)}
    if terms.tc is not None:
        parts["tc"] = terms.tc
    return parts

"""Test-split metrics in nats per example, with the likelihood they use named."""

from __future__ import annotations

import torch

from vae_core.latent import active_units, model_device
from vae_core.losses import elbo_terms

EVAL_SEED = 12345  # fixed noise and binarization, so the same model always scores the same


def binarize_fixed(images: torch.Tensor, seed: int = EVAL_SEED) -> torch.Tensor:
    """One fixed Bernoulli draw of grey-level images, for evaluating binarized-data models."""
    return torch.bernoulli(images.cpu(), generator=torch.Generator().manual_seed(seed))


def as_scored(config, images: torch.Tensor) -> torch.Tensor:
    """Images as a model of `config` is scored on: the fixed binarization for a model trained on
    dynamically binarized data, else the images themselves. Every score and bound uses this rule."""
    return binarize_fixed(images) if config.binarize else images


@torch.no_grad()
def evaluate(model, images: torch.Tensor, *, batch_size: int = 500, seed: int = EVAL_SEED,
             prepared: bool = False, keep_codes: bool = False) -> dict:
    """Negative ELBO (β = 1), reconstruction and KL on `images`, in nats per example.

    One posterior sample per image, from a fixed seed. Binarized-data models see a fixed
    binarization unless `prepared` says `images` already are what the model is scored on.
    `keep_codes`: also the posterior means the pass computed, under "mu" ((N, D) float32 on the CPU;
    the trainer's film takes an epoch's last frame from them instead of encoding its images again).
    """
    cfg = model.config
    dev = model_device(model)
    if cfg.binarize and not prepared:
        images = binarize_fixed(images)
    g = torch.Generator(device=dev).manual_seed(seed)
    recon_sum, kl_dims_sum, n = 0.0, torch.zeros(model.latent_dim, dtype=torch.float64), 0
    mus = []
    for chunk in images.split(batch_size):
        x = chunk.to(dev)
        outputs = model(x, g)
        if keep_codes:
            mus.append(outputs[1][0].float().cpu())  # the posterior's first part: its mean (as latent.encode reads it)
        terms = elbo_terms(model, x, outputs)
        recon_sum += float(terms.recon.sum())
        kl_dims_sum += terms.kl.sum(0).double().cpu()
        n += x.shape[0]
    kl_dims = (kl_dims_sum / n).float()
    recon, kl = recon_sum / n, float(kl_dims.sum())
    return {
        "nelbo": recon + kl,
        "recon": recon,
        "kl": kl,
        "kl_per_dim": [float(v) for v in kl_dims],
        "active_units": active_units(kl_dims),
        "n": n,
        "likelihood": cfg.likelihood_name,
        **({"mu": torch.cat(mus) if mus else torch.empty(0, model.latent_dim)} if keep_codes else {}),
    }

"""A model family is one seam: a family defined here, with a Laplace posterior and prior instead of the
shipped diagonal Gaussian, trains, evaluates, scores anomalies and reloads with no engine change. It
provides only what `vae_core.models` says a family provides (encode → posterior, decode, prior, KL)."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import NamedTuple

import numpy as np
import pytest
import torch

from vae_core import Trainer, evaluate, load_checkpoint
from vae_core import anomaly as A
from vae_core.evaluate import EVAL_SEED
from vae_core.gaussian import DiagonalGaussian
from vae_core.models import MODEL_SPECS, VAE

from .conftest import tiny_config


class Laplace(NamedTuple):
    """Laplace(loc, b) per dimension, b = exp(log_scale)."""

    loc: torch.Tensor
    log_scale: torch.Tensor

    @property
    def mean(self) -> torch.Tensor:
        return self.loc

    def float(self) -> Laplace:
        return Laplace(self.loc.float(), self.log_scale.float())

    def rsample(self, generator=None, sample_shape=()) -> torch.Tensor:
        """The inverse CDF of a uniform draw: loc − b·sign(u)·log(1 − 2|u|), u in (−1/2, 1/2)."""
        u = torch.rand((*sample_shape, *self.loc.shape), generator=generator, device=self.loc.device)
        u = u.clamp(1e-6, 1 - 1e-6) - 0.5
        return self.loc - self.log_scale.exp() * u.sign() * torch.log1p(-2 * u.abs())

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return -math.log(2.0) - self.log_scale - (z - self.loc).abs() / self.log_scale.exp()


class LaplaceVAE(VAE):
    """The shipped encoders and decoders, read as a Laplace posterior under a Laplace(0, 1) prior."""

    def encode(self, x: torch.Tensor) -> Laplace:
        return Laplace(*self.encoder(x))

    def prior(self) -> Laplace:
        zeros = torch.zeros(self.latent_dim, device=next(self.parameters()).device)
        return Laplace(zeros, zeros)

    def kl_per_dim(self, posterior: Laplace) -> torch.Tensor:
        """KL(Laplace(μ, b) || Laplace(0, 1)) = −log b + |μ| + b·exp(−|μ|/b) − 1."""
        loc, scale = posterior.loc, posterior.log_scale.exp()
        return -posterior.log_scale + loc.abs() + scale * torch.exp(-loc.abs() / scale) - 1.0


def test_the_laplace_kl_is_the_expected_log_ratio():
    g = torch.Generator().manual_seed(0)
    q = Laplace(torch.tensor([[0.7, -1.5]]), torch.tensor([[-0.5, 0.3]]))
    z = q.rsample(g, (200_000,))
    prior = Laplace(torch.zeros(2), torch.zeros(2))
    sampled = (q.log_prob(z) - prior.log_prob(z)).mean(0)
    assert torch.allclose(sampled, LaplaceVAE.kl_per_dim(None, q), atol=0.01)


@pytest.mark.parametrize("objective", ["beta-vae", "beta-tcvae"])
def test_a_laplace_family_trains_evaluates_scores_and_reloads_with_no_engine_change(digits, tmp_path, monkeypatch,
                                                                                      objective):
    monkeypatch.setitem(MODEL_SPECS, "mlp", replace(MODEL_SPECS["mlp"], family=LaplaceVAE))
    trainer = Trainer(tiny_config(epochs=3, objective=objective, beta=2.0), bundle=digits,
                      out_path=tmp_path / "laplace.pt")
    trainer.fit()
    model = trainer.model
    assert isinstance(model, LaplaceVAE)
    steps = trainer.history["steps"]
    assert all(math.isfinite(r["loss"]) for r in steps) and steps[-1]["nelbo"] < steps[0]["nelbo"] - 5
    assert ("tc" in steps[-1]) == (objective == "beta-tcvae")

    x = digits.split("test").images
    metrics = evaluate(model, x)
    with torch.no_grad():
        posterior = model.encode(x)
        laplace_kl = model.kl_per_dim(posterior).mean(0)
        gaussian_reading = DiagonalGaussian(*posterior).kl_per_dim().mean(0)
    # evaluation asked the model for its KL: the Laplace one, not the Gaussian formula
    assert torch.allclose(torch.tensor(metrics["kl_per_dim"]), laplace_kl, atol=1e-4)
    assert not torch.allclose(laplace_kl, gaussian_reading, atol=0.05)

    scores = {s: A.anomaly_scores(model, x, s, k=32) for s in A.SCORES}
    assert all(np.isfinite(v).all() and (v > 0).all() for v in scores.values())
    nelbo = A.anomaly_scores(model, x, "nelbo", seed=EVAL_SEED, batch_size=500)
    assert nelbo.mean() == pytest.approx(metrics["nelbo"], rel=1e-5)
    assert scores["iw"].mean() < scores["nelbo"].mean()  # the prior and posterior densities are the family's

    ckpt = load_checkpoint(tmp_path / "laplace.pt")  # rebuilt through the family its kind names
    assert isinstance(ckpt.model, LaplaceVAE)
    assert evaluate(ckpt.model, x)["nelbo"] == pytest.approx(metrics["nelbo"], rel=1e-6)

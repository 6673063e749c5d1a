"""The β-TCVAE total correlation, the cosine learning rate and residual conv blocks."""

import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import norm

from vae_core import Trainer, VAEConfig, VAEError
from vae_core.losses import total_correlation
from vae_core.models import build_model
from vae_core.schedules import KLWeight, learning_rate

from .conftest import tiny_config


def _loop_tc(z, mu, logvar, n_data):
    """The minibatch-weighted sampling estimate written out with scipy, one sample at a time."""
    b, d = z.shape
    sd = np.exp(0.5 * logvar)
    tc = 0.0
    for i in range(b):
        joint = [norm.logpdf(z[i], mu[j], sd[j]).sum() for j in range(b)]
        marginals = [logsumexp([norm.logpdf(z[i, k], mu[j, k], sd[j, k]) for j in range(b)]) for k in range(d)]
        log_norm = math.log(b * n_data)
        tc += (logsumexp(joint) - log_norm) - sum(m - log_norm for m in marginals)
    return tc / b


def test_total_correlation_matches_the_written_out_estimator():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(6, 3, generator=g, dtype=torch.float64), torch.randn(6, 3, generator=g,
                                                                                   dtype=torch.float64)
    got = total_correlation(mu, logvar, 1000, torch.Generator().manual_seed(1))
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    z = (mu + torch.exp(0.5 * logvar) * eps).numpy()
    assert float(got) == pytest.approx(_loop_tc(z, mu.numpy(), logvar.numpy(), 1000), rel=1e-9, abs=1e-9)


def test_total_correlation_is_larger_for_correlated_codes_than_for_independent_ones():
    g = torch.Generator().manual_seed(0)
    logvar = torch.full((512, 4), math.log(0.01))
    independent = total_correlation(torch.randn(512, 4, generator=g), logvar, 512, g)
    shared = torch.randn(512, 1, generator=g).expand(512, 4)  # every dimension the same number
    correlated = total_correlation(shared, logvar, 512, g)
    # both carry the estimator's offset of about (D - 1) log N nats; only the difference is information
    assert float(correlated) > float(independent) + 2.0


def test_total_correlation_has_gradients_for_mean_and_variance():
    mu = torch.randn(16, 5, requires_grad=True)
    logvar = torch.zeros(16, 5, requires_grad=True)
    total_correlation(mu, logvar, 100, torch.Generator().manual_seed(0)).backward()
    assert torch.isfinite(mu.grad).all() and mu.grad.abs().sum() > 0
    assert torch.isfinite(logvar.grad).all() and logvar.grad.abs().sum() > 0


def test_tcvae_term_is_kl_plus_extra_weight_on_tc_and_beta_kl_below_one():
    kl, tc = torch.tensor(10.0), torch.tensor(2.0)
    assert float(KLWeight(4.0).apply(kl, tc)) == pytest.approx(10 + 3 * 2)
    assert float(KLWeight(0.5).apply(kl, tc)) == pytest.approx(5.0)
    assert float(KLWeight(4.0).apply(kl)) == pytest.approx(40.0)


def test_cosine_learning_rate_falls_from_lr_to_zero_over_the_run():
    cfg = VAEConfig(lr=1e-3, epochs=10, lr_schedule="cosine")
    assert learning_rate(cfg, 0, 100) == pytest.approx(1e-3)
    assert learning_rate(cfg, 500, 100) == pytest.approx(5e-4)
    assert learning_rate(cfg, 1000, 100) == pytest.approx(0.0, abs=1e-12)
    assert learning_rate(cfg.replace(lr_schedule="constant"), 900, 100) == 1e-3


@pytest.mark.parametrize("size", [28, 32, 64])
def test_residual_blocks_keep_shapes_and_add_weights(size):
    cfg = VAEConfig(model="conv", latent_dim=6, hidden_sizes=(64,), residual_blocks=2)
    model = build_model(cfg, (1, size, size), seed=0)
    plain = build_model(cfg.replace(residual_blocks=0), (1, size, size), seed=0)
    logits, mu, _ = model(torch.rand(3, 1, size, size))
    assert logits.shape == (3, 1, size, size) and mu.shape == (3, 6)
    assert sum(p.numel() for p in model.parameters()) > sum(p.numel() for p in plain.parameters())


@pytest.mark.parametrize("changes, words", [
    (dict(objective="tcvae"), "objective must be one of"),
    (dict(lr_schedule="step"), "lr_schedule must be one of"),
    (dict(residual_blocks=-1), "residual_blocks must be"),
    (dict(objective="beta-tcvae", beta_schedule="capacity"), "beta-tcvae objective takes"),
])
def test_new_options_are_checked(changes, words):
    with pytest.raises(VAEError, match=words):
        VAEConfig(**changes)


def test_tcvae_training_with_cosine_lr_logs_tc_and_ends_near_zero_lr(digits):
    cfg = tiny_config(objective="beta-tcvae", beta=4.0, lr_schedule="cosine", epochs=2)
    trainer = Trainer(cfg, bundle=digits)
    trainer.fit()
    steps = trainer.history["steps"]
    assert all("tc" in r and math.isfinite(r["tc"]) for r in steps)
    last_lr = trainer.optimizer.param_groups[0]["lr"]
    assert last_lr < 0.01 * cfg.lr and trainer.metrics["test_nelbo"] > 0

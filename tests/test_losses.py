"""The objective (its terms, the per-pixel map, the weighting), the β-TCVAE total correlation, the cosine
learning rate and residual conv blocks."""

import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import norm

from vae_core import Trainer, VAEConfig, VAEError
from vae_core.gaussian import DiagonalGaussian
from vae_core.losses import elbo_terms, total_correlation, training_loss
from vae_core.models import build_model
from vae_core.objectives import weighted_kl
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


@pytest.mark.parametrize("changes", [{}, dict(likelihood="gaussian", sigma_mode="pixel"),
                                     dict(likelihood="gaussian", sigma_mode="fixed", sigma=0.2)])
def test_the_per_pixel_reconstruction_map_sums_to_the_reconstruction_term(changes):
    model = build_model(tiny_config(**changes), (1, 8, 8), seed=0)
    x = torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    terms = elbo_terms(model, x, model(x, torch.Generator().manual_seed(1)), recon_map=True)
    assert terms.recon_map.shape == (5, 1, 8, 8) and terms.recon.shape == (5,) and terms.kl.shape == (5, 4)
    assert torch.allclose(terms.recon_map.flatten(1).sum(1), terms.recon)
    assert torch.equal(terms.nelbo, terms.recon + terms.kl.sum(1))
    assert elbo_terms(model, x, model(x)).recon_map is None  # only when asked for


def test_several_draws_per_image_score_as_each_draw_alone():
    model = build_model(tiny_config(), (1, 8, 8), seed=0)
    x = torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    posterior = model.encode(x)
    z = posterior.rsample(torch.Generator().manual_seed(1), (3,))  # (3, 5, D)
    logits = model.decode(z.flatten(0, 1)).unflatten(0, (3, 5))
    terms = elbo_terms(model, x, (logits, posterior, z), importance=True)
    assert terms.recon.shape == terms.log_weight.shape == (3, 5)
    for s in range(3):
        alone = elbo_terms(model, x, (logits[s], posterior, z[s]), importance=True)
        assert torch.allclose(terms.recon[s], alone.recon) and torch.allclose(terms.log_weight[s], alone.log_weight)
    # log w = log p(x|z) + log p(z) − log q(z|x), written out with torch.distributions
    q = torch.distributions.Normal(posterior.mu, torch.exp(0.5 * posterior.logvar))
    log_pz = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
    expected = -terms.recon + log_pz - q.log_prob(z).sum(-1)
    assert torch.allclose(terms.log_weight, expected, atol=1e-4)


@pytest.mark.parametrize("objective", ["beta-vae", "beta-tcvae"])
def test_the_training_loss_is_the_batch_mean_of_the_terms_weighted(objective):
    model = build_model(tiny_config(objective=objective), (1, 8, 8), seed=0)
    x = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    outputs = model(x, torch.Generator().manual_seed(1))
    parts = training_loss(model, x, outputs, KLWeight(4.0), dataset_size=100, generator=torch.Generator())
    terms = elbo_terms(model, x, outputs)
    assert list(parts) == ["recon", "kl", "loss"] + (["tc"] if objective == "beta-tcvae" else [])
    assert torch.allclose(parts["recon"], terms.recon.mean()) and torch.allclose(parts["kl"], terms.kl.sum(1).mean())
    extra = 3 * parts["tc"] if objective == "beta-tcvae" else 3 * parts["kl"]  # β = 4: 4·KL, or KL + 3·TC
    assert torch.allclose(parts["loss"], parts["recon"] + parts["kl"] + extra)


def test_total_correlation_matches_the_written_out_estimator():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(6, 3, generator=g, dtype=torch.float64), torch.randn(6, 3, generator=g,
                                                                                   dtype=torch.float64)
    got = total_correlation(DiagonalGaussian(mu, logvar), 1000, torch.Generator().manual_seed(1))
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    z = (mu + torch.exp(0.5 * logvar) * eps).numpy()
    assert float(got) == pytest.approx(_loop_tc(z, mu.numpy(), logvar.numpy(), 1000), rel=1e-9, abs=1e-9)


def test_total_correlation_is_larger_for_correlated_codes_than_for_independent_ones():
    g = torch.Generator().manual_seed(0)
    logvar = torch.full((512, 4), math.log(0.01))
    independent = total_correlation(DiagonalGaussian(torch.randn(512, 4, generator=g), logvar), 512, g)
    shared = torch.randn(512, 1, generator=g).expand(512, 4)  # every dimension the same number
    correlated = total_correlation(DiagonalGaussian(shared, logvar), 512, g)
    # both carry the estimator's offset of about (D - 1) log N nats; only the difference is information
    assert float(correlated) > float(independent) + 2.0


def test_total_correlation_has_gradients_for_mean_and_variance():
    mu = torch.randn(16, 5, requires_grad=True)
    logvar = torch.zeros(16, 5, requires_grad=True)
    total_correlation(DiagonalGaussian(mu, logvar), 100, torch.Generator().manual_seed(0)).backward()
    assert torch.isfinite(mu.grad).all() and mu.grad.abs().sum() > 0
    assert torch.isfinite(logvar.grad).all() and logvar.grad.abs().sum() > 0


def test_tcvae_term_is_kl_plus_extra_weight_on_tc_and_beta_kl_below_one():
    kl, tc = torch.tensor(10.0), torch.tensor(2.0)
    tcvae, plain = VAEConfig(objective="beta-tcvae"), VAEConfig()
    assert float(weighted_kl(kl, KLWeight(4.0), tcvae, tc)) == pytest.approx(10 + 3 * 2)
    assert float(weighted_kl(kl, KLWeight(0.5), tcvae, tc)) == pytest.approx(5.0)
    assert float(weighted_kl(kl, KLWeight(4.0), plain)) == pytest.approx(40.0)


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
    logits, posterior, _ = model(torch.rand(3, 1, size, size))
    assert logits.shape == (3, 1, size, size) and posterior.mean.shape == (3, 6)
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

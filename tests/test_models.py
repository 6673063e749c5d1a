import pytest
import torch

from vae_core import VAEConfig, VAEError, build_model
from vae_core.gaussian import DiagonalGaussian
from vae_core.losses import bernoulli_pixel_nll, gaussian_pixel_nll

SHAPES = [(1, 28, 28), (3, 28, 28), (1, 32, 32), (3, 32, 32), (1, 64, 64), (3, 64, 64)]


@pytest.mark.parametrize("model", ["mlp", "conv"])
@pytest.mark.parametrize("shape", SHAPES)
def test_shapes(model, shape):
    cfg = VAEConfig(model=model, latent_dim=5, hidden_sizes=(64,))
    vae = build_model(cfg, shape, seed=0)
    x = torch.rand(3, *shape)
    mu, logvar = vae.encode(x)
    assert mu.shape == logvar.shape == (3, 5)
    z = vae.encode(x).rsample()
    assert z.shape == (3, 5)
    assert vae.decode(z).shape == (3, *shape)
    logits, posterior, z = vae(x)
    assert logits.shape == (3, *shape) and torch.equal(mu, posterior.mean) and z.shape == (3, 5)


def test_mlp_takes_any_size():
    vae = build_model(VAEConfig(model="mlp", latent_dim=2, hidden_sizes=(16,)), (1, 8, 8))
    assert vae.decode(torch.zeros(4, 2)).shape == (4, 1, 8, 8)


def test_conv_rejects_unsupported_size():
    with pytest.raises(VAEError, match="28x28, 32x32, 64x64"):
        build_model(VAEConfig(model="conv"), (1, 8, 8))


def test_seeded_init_is_reproducible_and_leaves_global_rng_alone():
    cfg = VAEConfig(latent_dim=3, hidden_sizes=(16,))
    state = torch.random.get_rng_state()
    a = build_model(cfg, (1, 8, 8), seed=7)
    assert torch.equal(torch.random.get_rng_state(), state)
    b = build_model(cfg, (1, 8, 8), seed=7)
    c = build_model(cfg, (1, 8, 8), seed=8)
    pa, pb, pc = (torch.cat([p.flatten() for p in m.parameters()]) for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)


def test_rsample_uses_mean_and_variance():
    g = torch.Generator().manual_seed(0)
    mu = torch.full((20000, 1), 2.0)
    logvar = torch.full((20000, 1), torch.log(torch.tensor(0.25)).item())
    z = DiagonalGaussian(mu, logvar).rsample(g)
    assert abs(z.mean().item() - 2.0) < 0.02 and abs(z.std().item() - 0.5) < 0.02
    assert DiagonalGaussian(mu[:3], logvar[:3]).rsample(g, (5,)).shape == (5, 3, 1)


def test_gaussian_kl_and_log_prob_match_torch_distributions():
    g = torch.Generator().manual_seed(1)
    mu, logvar, z = (torch.randn(6, 4, generator=g) for _ in range(3))
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    ours = DiagonalGaussian(mu, logvar)
    assert torch.allclose(ours.kl_per_dim(), torch.distributions.kl_divergence(q, p), atol=1e-5)
    assert torch.allclose(ours.log_prob(z), q.log_prob(z), atol=1e-5)
    assert torch.allclose(DiagonalGaussian.standard(4).log_prob(z), p.log_prob(z), atol=1e-6)


def test_bernoulli_nll_is_the_log_likelihood_per_pixel():
    logits = torch.tensor([[0.3, -1.2, 2.0]])
    x = torch.tensor([[1.0, 0.0, 1.0]])
    expected = -torch.distributions.Bernoulli(logits=logits).log_prob(x)
    assert torch.allclose(bernoulli_pixel_nll(logits, x), expected)


def test_gaussian_nll_matches_normal_log_prob():
    logits, x = torch.randn(2, 1, 3, 3), torch.rand(2, 1, 3, 3)
    sigma = 0.2
    expected = -torch.distributions.Normal(torch.sigmoid(logits), sigma).log_prob(x)
    got = gaussian_pixel_nll(logits, x, torch.log(torch.tensor(sigma)))
    assert torch.allclose(got, expected, atol=1e-4)


@pytest.mark.parametrize("mode,shape", [("global", (1,)), ("pixel", (1, 8, 8))])
def test_learned_sigma_is_a_parameter(mode, shape):
    cfg = VAEConfig(likelihood="gaussian", sigma_mode=mode, sigma=0.3, latent_dim=2, hidden_sizes=(8,))
    vae = build_model(cfg, (1, 8, 8))
    assert vae.log_sigma.shape == shape
    assert torch.allclose(vae.log_sigma.exp(), torch.tensor(0.3))
    assert any(p is vae.log_sigma for p in vae.parameters())


def test_fixed_sigma_has_no_parameter():
    vae = build_model(VAEConfig(likelihood="gaussian", latent_dim=2, hidden_sizes=(8,)), (1, 8, 8))
    assert vae.log_sigma is None

import pytest
import torch

from vae_core import VAEError, load_checkpoint
from vae_core import latent as L


@pytest.fixture(scope="module")
def model(tiny_checkpoint):
    return load_checkpoint(tiny_checkpoint).model


def test_encode_in_batches_equals_one_batch(model, digits):
    x = digits.images[:100]
    mu_a, lv_a = L.encode(model, x, batch_size=7)
    mu_b, lv_b = L.encode(model, x, batch_size=1000)
    assert mu_a.shape == (100, 4) and torch.allclose(mu_a, mu_b, atol=1e-6)
    assert torch.allclose(lv_a, lv_b, atol=1e-6)


def test_decode_gives_images_in_unit_range(model):
    imgs = L.decode(model, torch.randn(5, 4))
    assert imgs.shape == (5, 1, 8, 8) and imgs.min() >= 0 and imgs.max() <= 1


def test_reconstruction_is_closer_than_a_shuffled_one(model, digits):
    x = digits.split("test").images[:200]
    rec = L.reconstruct(model, x)
    err = (rec - x).pow(2).mean()
    shuffled = (rec.roll(1, 0) - x).pow(2).mean()
    assert err < shuffled


def test_prior_samples_are_seeded_and_scaled(model):
    z1, im1 = L.sample_prior(model, 2000, temperature=0.5, seed=3)
    z2, im2 = L.sample_prior(model, 2000, temperature=0.5, seed=3)
    assert torch.equal(z1, z2) and torch.equal(im1, im2)
    assert abs(z1.std().item() - 0.5) < 0.03
    z0, _ = L.sample_prior(model, 4, temperature=0.0)
    assert torch.count_nonzero(z0) == 0
    with pytest.raises(VAEError, match="temperature"):
        L.sample_prior(model, 4, temperature=-1)


def test_lerp_ends_and_midpoint():
    a, b = torch.tensor([0.0, 2.0]), torch.tensor([4.0, -2.0])
    path = L.lerp(a, b, 5)
    assert path.shape == (5, 2)
    assert torch.equal(path[0], a) and torch.equal(path[-1], b)
    assert torch.allclose(path[2], torch.tensor([2.0, 0.0]))


def test_slerp_keeps_norm_on_the_sphere():
    a, b = torch.tensor([3.0, 0.0, 0.0]), torch.tensor([0.0, 3.0, 0.0])
    path = L.slerp(a, b, 9)
    assert torch.allclose(path[0], a, atol=1e-5) and torch.allclose(path[-1], b, atol=1e-5)
    assert torch.allclose(path.norm(dim=1), torch.full((9,), 3.0), atol=1e-5)
    assert L.lerp(a, b, 9)[4].norm() < 2.2  # the straight line cuts through the middle
    with pytest.raises(VAEError, match="at least 2 steps"):
        L.slerp(a, b, 1)


def test_slerp_of_parallel_vectors_falls_back_to_lerp():
    a = torch.tensor([1.0, 1.0])
    assert torch.allclose(L.slerp(a, 2 * a, 3), L.lerp(a, 2 * a, 3))


def test_traversal_changes_only_one_dimension():
    z = torch.tensor([0.5, -1.0, 2.0])
    grid = L.traversal_grid(z, [2, 0], steps=5, span=3.0)
    assert grid.shape == (10, 3)
    assert torch.allclose(grid[:5, 2], torch.linspace(-3, 3, 5))
    assert torch.all(grid[:5, :2] == z[:2])
    assert torch.allclose(grid[5:, 0], torch.linspace(-3, 3, 5))
    with pytest.raises(VAEError, match="latent dimension"):
        L.traverse(z, 3, torch.zeros(2))


def test_kl_ranking_and_active_units():
    mu = torch.tensor([[0.0, 3.0, 0.5], [0.0, -3.0, -0.5]])
    logvar = torch.zeros(2, 3)
    kl, order = L.kl_ranking(mu, logvar)
    assert torch.allclose(kl, torch.tensor([0.0, 4.5, 0.125]))
    assert order.tolist() == [1, 2, 0]
    assert L.active_units(kl) == 2
    assert L.active_units(torch.tensor([0.005, 0.02])) == 1

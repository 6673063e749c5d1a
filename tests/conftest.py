"""Shared fixtures: small real data and a tiny trained checkpoint, made once per test session."""

from __future__ import annotations

import pytest
import torch

from vae_core import VAEConfig, load_dataset
from vae_core.train import Trainer


@pytest.fixture(scope="session")
def mnist5k():
    return load_dataset("mnist5k")


@pytest.fixture(scope="session")
def digits():
    return load_dataset("digits")


def tiny_config(**changes) -> VAEConfig:
    """A small MLP on scikit-learn's 8x8 digits: trains in well under a second on a CPU."""
    base = dict(dataset="digits", model="mlp", latent_dim=4, hidden_sizes=(32,), epochs=2,
                batch_size=64, device="cpu", seed=0)
    return VAEConfig(**{**base, **changes})


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, digits):
    """A 2-epoch digits model saved to disk (shared: tests must not modify the file)."""
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    Trainer(tiny_config(), bundle=digits, out_path=path).fit()
    return path


@pytest.fixture
def rng():
    return torch.Generator().manual_seed(0)

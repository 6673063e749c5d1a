"""VAE models: small parts first (encoders, decoders), then the table of model kinds (MODEL_SPECS:
name → description, a builder of its encoder and decoder, and its family), then the whole.

A model family is what the engine asks of a model; training, evaluation and the anomaly scores ask for
nothing else, and the objective (`vae_core.losses.elbo_terms`) is written against it alone:

- `encode(x) -> posterior`: q(z|x) for images x (B, C, H, W) in [0, 1], an object with
  `rsample(generator, sample_shape)` (reparameterized draws (*sample_shape, B, D)), `log_prob(z)`
  (nats per latent dimension, broadcasting z against its (B, D) parameters), `mean` (B, D) and
  `float()`;
- `decode(z) -> logits` (B, C, H, W): the likelihood's parameters for z (B, D), the Bernoulli logits
  or the Gaussian's pre-sigmoid mean (`sigmoid(logits)` is the image mean for both), named by
  `config.likelihood` (`vae_core.losses.LIKELIHOOD_SPECS`); a learned Gaussian σ is `log_sigma`;
- `prior()`: p(z), with `log_prob(z)` per dimension;
- `kl_per_dim(posterior) -> (B, D)`: KL(q(z|x) || p(z)) in nats per latent dimension, analytic;
- `forward(x, generator) -> (logits, posterior, z)`: one z drawn from q(z|x) and decoded;
- `config`, `image_shape` (C, H, W) and `latent_dim`.

`VAE` is the family the shipped models belong to: a diagonal Gaussian posterior and an N(0, I) prior
(`vae_core.gaussian`). Another family is a class with the same methods, named as its model kind's
`family` in MODEL_SPECS. The latent-space tools (`vae_core.latent`: maps, sliders, traversals) still
read a posterior as the pair it unpacks to, (codes, log-variances) for the Gaussian.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from vae_core.errors import VAEError
from vae_core.gaussian import DiagonalGaussian

if TYPE_CHECKING:  # config.py takes the model names from MODEL_SPECS
    from vae_core.config import VAEConfig

CONV_SIZES = (28, 32, 64)  # image sides the conv model takes


class MLPEncoder(nn.Module):
    def __init__(self, in_features: int, hidden_sizes: tuple[int, ...], latent_dim: int):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for h in hidden_sizes:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, 2 * latent_dim)  # mu and logvar side by side

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.head(self.body(x)).chunk(2, dim=1)  # (B, D) each
        return mu, logvar


class MLPDecoder(nn.Module):
    def __init__(self, latent_dim: int, hidden_sizes: tuple[int, ...], shape: tuple[int, int, int]):
        super().__init__()
        layers: list[nn.Module] = []
        width = latent_dim
        for h in reversed(hidden_sizes):
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers += [nn.Linear(width, math.prod(shape)), nn.Unflatten(1, shape)]
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(z)  # (B, C, H, W) logits


def default_conv_channels(image_size: int) -> tuple[int, ...]:
    """One stride-2 conv per halving: 28→14→7, 32→16→8→4, 64→32→16→8→4."""
    return {28: (32, 64), 32: (32, 64, 128), 64: (32, 32, 64, 64)}[image_size]


class ResidualBlock(nn.Module):
    """x + conv1x1(relu(conv3x3(relu(x)))): keeps (B, C, H, W); adds depth without losing the
    identity path (He et al. 2016; the block of van den Oord et al. 2017, VQ-VAE)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _residual(channels: int, count: int) -> list[nn.Module]:
    return [ResidualBlock(channels) for _ in range(count)]


def _dropout(p: float) -> list[nn.Module]:
    return [nn.Dropout(p)] if p > 0 else []  # none at 0, so older checkpoints keep their layer indices


class ConvEncoder(nn.Module):
    def __init__(self, in_ch: int, size: int, channels: tuple[int, ...], hidden: int, latent_dim: int,
                 residual_blocks: int = 0, dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_ch
        for out in channels:  # each halves H and W
            layers += [nn.Conv2d(c, out, 4, stride=2, padding=1), nn.ReLU(), *_residual(out, residual_blocks)]
            c = out
        side = size // 2 ** len(channels)
        layers += [nn.Flatten(), nn.Linear(c * side * side, hidden), nn.ReLU(), *_dropout(dropout)]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(hidden, 2 * latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.head(self.body(x)).chunk(2, dim=1)
        return mu, logvar


class ConvDecoder(nn.Module):
    def __init__(self, out_ch: int, size: int, channels: tuple[int, ...], hidden: int, latent_dim: int,
                 residual_blocks: int = 0, dropout: float = 0.0):
        super().__init__()
        side = size // 2 ** len(channels)
        rev = tuple(reversed(channels))
        layers: list[nn.Module] = [
            nn.Linear(latent_dim, hidden),
            nn.ReLU(),
            *_dropout(dropout),
            nn.Linear(hidden, rev[0] * side * side),
            nn.ReLU(),
            nn.Unflatten(1, (rev[0], side, side)),
        ]
        for c_in, c_out in zip(rev, rev[1:], strict=False):  # each doubles H and W
            layers += [*_residual(c_in, residual_blocks), nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1),
                       nn.ReLU()]
        layers += [*_residual(rev[-1], residual_blocks), nn.ConvTranspose2d(rev[-1], out_ch, 4, stride=2, padding=1)]
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(z)  # (B, C, H, W) logits


def _mlp(config: VAEConfig, shape: tuple[int, int, int]) -> tuple[nn.Module, nn.Module]:
    return (MLPEncoder(math.prod(shape), config.hidden_sizes, config.latent_dim),
            MLPDecoder(config.latent_dim, config.hidden_sizes, shape))


def _conv(config: VAEConfig, shape: tuple[int, int, int]) -> tuple[nn.Module, nn.Module]:
    c, h, w = shape
    if h != w or h not in CONV_SIZES:
        sizes = ", ".join(f"{s}x{s}" for s in CONV_SIZES)
        raise VAEError(f"the conv model takes {sizes} images (got {h}x{w}); choose the mlp model (--model mlp)")
    chans = config.conv_channels or default_conv_channels(h)
    if h % 2 ** len(chans):
        raise VAEError(f"{len(chans)} conv layers do not divide a {h}-pixel image evenly")
    hidden = config.hidden_sizes[0]
    blocks, drop = config.residual_blocks, config.dropout
    return (ConvEncoder(c, h, chans, hidden, config.latent_dim, blocks, drop),
            ConvDecoder(c, h, chans, hidden, config.latent_dim, blocks, drop))


@dataclass(frozen=True)
class ModelSpec:
    description: str
    build: Callable[[VAEConfig, tuple[int, int, int]], tuple[nn.Module, nn.Module]]  # (encoder, decoder)
    family: Callable[[VAEConfig, tuple[int, int, int]], nn.Module] | None = None  # the model class; None: VAE


# One entry per model kind; `VAEConfig.model` takes its valid names from here.
MODEL_SPECS: dict[str, ModelSpec] = {
    "mlp": ModelSpec("fully connected layers (hidden_sizes); any image size", _mlp),
    "conv": ModelSpec("stride-2 convolutions (conv_channels) and one dense layer of hidden_sizes[0]; "
                      f"{', '.join(map(str, CONV_SIZES))} px square images", _conv),
}


class VAE(nn.Module):
    """The diagonal-Gaussian family: encoder + reparameterization + decoder, the N(0, I) prior, and the
    Gaussian σ when it is learned."""

    def __init__(self, config: VAEConfig, image_shape: tuple[int, int, int]):
        super().__init__()
        self.config = config
        self.image_shape = tuple(int(s) for s in image_shape)
        self.latent_dim = config.latent_dim
        self.encoder, self.decoder = MODEL_SPECS[config.model].build(config, self.image_shape)
        # learned Gaussian log σ: one value, or one per pixel (C, H, W); None when σ is fixed
        self.log_sigma: nn.Parameter | None = None
        if config.likelihood == "gaussian" and config.sigma_mode != "fixed":
            shape = (1,) if config.sigma_mode == "global" else self.image_shape
            self.log_sigma = nn.Parameter(torch.full(shape, math.log(config.sigma)))

    def encode(self, x: torch.Tensor) -> DiagonalGaussian:
        """q(z|x): its mu and logvar (B, D) each."""
        return DiagonalGaussian(*self.encoder(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Logits (B, C, H, W); `sigmoid` of them is the image mean."""
        return self.decoder(z)

    def prior(self) -> DiagonalGaussian:
        return DiagonalGaussian.standard(self.latent_dim, next(self.parameters()).device)

    def kl_per_dim(self, posterior: DiagonalGaussian) -> torch.Tensor:
        return posterior.kl_per_dim()  # analytic, to N(0, I)

    def forward(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, DiagonalGaussian, torch.Tensor]:
        posterior = self.encode(x)
        z = posterior.rsample(generator)  # (B, D)
        return self.decode(z), posterior, z


def build_model(config: VAEConfig, image_shape: tuple[int, int, int], *, seed: int | None = None) -> VAE:
    """The model a config describes; `seed` makes its initial weights reproducible without
    touching the caller's global random state."""
    family = MODEL_SPECS[config.model].family or VAE
    if seed is None:
        return family(config, image_shape)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return family(config, image_shape)

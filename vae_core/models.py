"""VAE models: small parts first (encoders, decoders), then the table of model kinds (MODEL_SPECS:
name → description and a builder of its encoder and decoder), then the whole.

Every model maps images x (B, C, H, W) in [0, 1] to a diagonal Gaussian posterior q(z|x) with
`encode(x) -> (mu, logvar)`, each (B, D), and decodes z (B, D) to logits (B, C, H, W): the Bernoulli
logits, or for the Gaussian likelihood the pre-sigmoid mean. `sigmoid(logits)` is the image mean in
[0, 1] for both likelihoods.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from vae_core.errors import VAEError

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
        raise VAEError(f"the conv model takes {sizes} images (got {h}x{w}); use --model mlp")
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


# One entry per model kind; `VAEConfig.model` takes its valid names from here.
MODEL_SPECS: dict[str, ModelSpec] = {
    "mlp": ModelSpec("fully connected layers (hidden_sizes); any image size", _mlp),
    "conv": ModelSpec("stride-2 convolutions (conv_channels) and one dense layer of hidden_sizes[0]; "
                      f"{', '.join(map(str, CONV_SIZES))} px square images", _conv),
}


class VAE(nn.Module):
    """Encoder + reparameterization + decoder, and the Gaussian σ when it is learned."""

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

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(x)

    @staticmethod
    def reparameterize(
        mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """z = mu + sigma * eps with eps ~ N(0, I), so gradients flow through mu and sigma."""
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + torch.exp(0.5 * logvar) * eps

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Logits (B, C, H, W); `sigmoid` of them is the image mean."""
        return self.decoder(z)

    def forward(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar, generator)
        return self.decode(z), mu, logvar


def build_model(config: VAEConfig, image_shape: tuple[int, int, int], *, seed: int | None = None) -> VAE:
    """The model a config describes; `seed` makes its initial weights reproducible without
    touching the caller's global random state."""
    if seed is None:
        return VAE(config, image_shape)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return VAE(config, image_shape)

"""Operations in latent space: encode, decode, sample, interpolate, traverse, rank dimensions.

All take a model in eval mode and run without gradients; inputs and outputs are CPU tensors
(images (N, C, H, W) in [0, 1], codes (N, D)), whatever device the model is on.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import torch

from vae_core.errors import VAEError
from vae_core.gaussian import DiagonalGaussian

ACTIVE_KL_NATS = 0.01  # a dimension is active when its mean KL exceeds this
ENCODE_BATCH = 512  # images per encoder batch, at most
ENCODE_BATCH_BYTES = 64 * 2**20  # and at most this much float32 input per batch


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def encode(model, images: torch.Tensor | Iterable[torch.Tensor],
           batch_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior means and log-variances (N, D) float32 on the CPU.

    `images` is a tensor (N, C, H, W) or streamed images (`vae_core.streaming.LazyImages`), encoded
    `batch_size` images at a time (by default as many as fit in ENCODE_BATCH_BYTES, at most
    ENCODE_BATCH), or any iterable of batches (a generator, or a DataLoader whose (images, labels)
    pairs are taken), so memory holds one batch plus the codes."""
    dev = model_device(model)
    if hasattr(images, "shape"):  # a tensor or LazyImages: both split into batches
        images = images.split(batch_size or encode_batch_size(images.shape[1:]))
    mus, logvars = [], []
    for chunk in images:
        if isinstance(chunk, (tuple, list)):  # a DataLoader's (images, labels)
            chunk = chunk[0]
        mu, logvar = model.encode(chunk.to(dev))
        mus.append(mu.float().cpu())
        logvars.append(logvar.float().cpu())
    if not mus:  # no images: no codes
        return torch.empty(0, model.latent_dim), torch.empty(0, model.latent_dim)
    return torch.cat(mus), torch.cat(logvars)


def encode_batch_size(image_shape: tuple[int, ...] | torch.Size) -> int:
    """Images per encoder batch: ENCODE_BATCH, fewer when that many would pass ENCODE_BATCH_BYTES."""
    per_image = 4 * math.prod(image_shape)  # float32 bytes
    return max(1, min(ENCODE_BATCH, ENCODE_BATCH_BYTES // per_image))


@torch.no_grad()
def decode(model, z: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Image means sigmoid(decoder(z)), (N, C, H, W) in [0, 1]."""
    dev = model_device(model)
    z = torch.as_tensor(z, dtype=torch.float32).reshape(-1, model.latent_dim)
    return torch.cat([torch.sigmoid(model.decode(c.to(dev))).float().cpu() for c in z.split(batch_size)])


def reconstruct(model, images: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
    """Decode the posterior means: the model's reconstruction of each image."""
    mu, _ = encode(model, images, batch_size)
    return decode(model, mu, batch_size or ENCODE_BATCH)


def prior_noise(n: int, latent_dim: int, seed: int = 0) -> torch.Tensor:
    """n draws of N(0, I) in `latent_dim` dimensions, the same for the same seed: a sample at
    temperature T is T times its draw, so one seed's samples move together as T changes."""
    if n < 1:
        raise VAEError(f"number of samples must be >= 1 (got {n})")
    return torch.randn(n, latent_dim, generator=torch.Generator().manual_seed(seed))


def sample_prior(model, n: int, temperature: float = 1.0, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """n codes z ~ N(0, temperature² I) (`prior_noise` times the temperature) and their decoded images."""
    if temperature < 0:
        raise VAEError(f"temperature must be >= 0 (got {temperature})")
    z = prior_noise(n, model.latent_dim, seed) * temperature
    return z, decode(model, z)


def lerp(z0: torch.Tensor, z1: torch.Tensor, steps: int) -> torch.Tensor:
    """`steps` codes on the straight line from z0 to z1, ends included: (steps, D)."""
    t = _steps(steps).unsqueeze(1)
    return (1 - t) * z0.reshape(1, -1) + t * z1.reshape(1, -1)


def slerp(z0: torch.Tensor, z1: torch.Tensor, steps: int) -> torch.Tensor:
    """Spherical interpolation (Shoemake 1985; White 2016 for generative models): follows the
    great circle between z0 and z1 and interpolates the norm, so the path stays where the
    Gaussian prior has its mass instead of cutting through the low-norm middle."""
    t = _steps(steps).unsqueeze(1)
    a, b = z0.reshape(-1).float(), z1.reshape(-1).float()
    na, nb = a.norm(), b.norm()
    if na < 1e-8 or nb < 1e-8:
        return lerp(a, b, steps)
    cos = torch.clamp((a / na) @ (b / nb), -1.0, 1.0)
    omega = torch.arccos(cos)
    if omega < 1e-4:
        return lerp(a, b, steps)
    direction = (torch.sin((1 - t) * omega) * (a / na) + torch.sin(t * omega) * (b / nb)) / torch.sin(omega)
    return direction * ((1 - t) * na + t * nb)


def _steps(steps: int) -> torch.Tensor:
    if steps < 2:
        raise VAEError(f"interpolation needs at least 2 steps (got {steps})")
    return torch.linspace(0, 1, steps)


def corner_plane(c0: torch.Tensor, c1: torch.Tensor, c2: torch.Tensor, c3: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The bilinear surface through four corner codes (top-left, top-right, bottom-left,
    bottom-right) as z(u, v) = origin + u·du + v·dv + u·v·duv, with u from left (0) to right (1)
    and v from bottom (0) to top (1). Returns (origin, du, dv, duv), each (D,)."""
    c0, c1, c2, c3 = (c.reshape(-1).float() for c in (c0, c1, c2, c3))
    return c2, c3 - c2, c0 - c2, c1 - c0 - c3 + c2


def corner_grid(corners: torch.Tensor, size: int) -> torch.Tensor:
    """A size × size grid of codes mixing four corner codes (4, D) bilinearly, row-major from the
    top-left corner: (size · size, D)."""
    if size < 2:
        raise VAEError(f"the corner grid needs at least 2 cells a side (got {size})")
    origin, du, dv, duv = corner_plane(*corners)
    u = torch.linspace(0, 1, size).repeat(size).unsqueeze(1)  # left to right within a row
    v = torch.linspace(1, 0, size).repeat_interleave(size).unsqueeze(1)  # rows from the top
    return origin + u * du + v * dv + u * v * duv


def traverse(z: torch.Tensor, dim: int, values: torch.Tensor) -> torch.Tensor:
    """Copies of z (D,) with dimension `dim` set to each of `values`: (len(values), D)."""
    z = z.reshape(-1)
    if not 0 <= dim < z.numel():
        raise VAEError(f"latent dimension must be from 0 to {z.numel() - 1} (got {dim})")
    out = z.repeat(len(values), 1)
    out[:, dim] = torch.as_tensor(values, dtype=out.dtype)
    return out


def traversal_grid(z: torch.Tensor, dims: list[int], steps: int = 7, span: float = 3.0) -> torch.Tensor:
    """One row per dimension in `dims`, that dimension swept over [−span, span] while the others
    keep z's values: (len(dims) · steps, D), row-major."""
    values = torch.linspace(-span, span, steps)
    return torch.cat([traverse(z, d, values) for d in dims])


def kl_ranking(mu: torch.Tensor, logvar: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean KL per dimension (D,) in nats, and the dimensions ordered from most to least KL."""
    kl = DiagonalGaussian(mu, logvar).kl_per_dim().mean(0)
    return kl, torch.argsort(kl, descending=True)


def stored_kl_ranking(ckpt) -> tuple[torch.Tensor, torch.Tensor] | None:
    """`kl_ranking` from the test metrics a checkpoint stores (its last evaluation), so a page can
    order dimensions before loading any data; None when the file holds none for every dimension."""
    kl = ckpt.metrics.get("test_kl_per_dim")
    if not kl or len(kl) != ckpt.latent_dim:
        return None
    kl = torch.as_tensor(kl, dtype=torch.float32)
    return kl, torch.argsort(kl, descending=True)


def active_units(kl_dims: torch.Tensor, threshold: float = ACTIVE_KL_NATS) -> int:
    """How many dimensions carry more than `threshold` nats of KL on average."""
    return int((torch.as_tensor(kl_dims) > threshold).sum())


def _mulberry32(seed: int):
    """The 32-bit generator mulberry32 (Tommy Ettinger's), as `ui/explainer.js` runs it: uniform floats in
    [0, 1), the same sequence in Python and in the browser for the same seed."""
    mask = 0xFFFFFFFF
    a = seed & mask
    while True:
        a = (a + 0x6D2B79F5) & mask
        t = ((a ^ (a >> 15)) * (a | 1)) & mask
        t = ((t + (((t ^ (t >> 7)) * (t | 61)) & mask)) & mask) ^ t
        yield ((t ^ (t >> 14)) & mask) / 4294967296


def lesson_noise(seed: int, rows: int, latent_dim: int) -> np.ndarray:
    """`rows` draws of N(0, I) in `latent_dim` dimensions from a seed, float32 (rows, latent_dim): the same
    numbers `ui/explainer.js` draws (mulberry32 and Box–Muller, pair by pair within a row), so a page
    address holding the seed reproduces the browser's ε exactly. Hand-written because a browser cannot
    run torch's generator; `prior_noise` stays the engine's own draw."""
    if not 0 <= seed < 2**32:
        raise VAEError(f"seed must be from 0 to {2**32 - 1} (got {seed})")
    rand = _mulberry32(seed)
    out = np.empty((rows, latent_dim), dtype=np.float64)
    for r in range(rows):
        for i in range(0, latent_dim, 2):
            u, v = 1 - next(rand), next(rand)
            radius = math.sqrt(-2 * math.log(u))
            out[r, i] = radius * math.cos(2 * math.pi * v)
            if i + 1 < latent_dim:
                out[r, i + 1] = radius * math.sin(2 * math.pi * v)
    return out.astype(np.float32)

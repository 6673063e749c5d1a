"""Honest runs: warnings when an epoch's numbers or pictures say the model is degenerate.

`epoch_warnings` is a pure function of one epoch's test metrics (nats per example), the epochs
before it and the epoch's health images (a few test images and their reconstructions). The trainer
stores its warnings in the history and in the checkpoint's metrics; the CLI prints them and the
Train page shows them.
"""

from __future__ import annotations

import math

import torch

IDENTICAL_SPREAD = 0.01  # reconstructions varying less than this fraction of their originals
EXPLODE_FACTOR = 10.0  # test nELBO this many times the best earlier epoch's
EXPLODE_NATS_PER_VALUE = 100.0  # a test nELBO above this many nats per pixel value is no model of the data


def _spread(images: torch.Tensor) -> float:
    """How much a batch of images (N, C, H, W) differs from image to image: the mean over pixels
    of the standard deviation over the batch."""
    return float(images.float().std(dim=0).mean())


def identical_outputs(originals: torch.Tensor, reconstructions: torch.Tensor) -> str | None:
    if len(originals) < 2:
        return None
    source, output = _spread(originals), _spread(reconstructions)
    if source > 1e-6 and output < IDENTICAL_SPREAD * source:
        return (f"reconstructions of different test images are nearly identical (they vary "
                f"{100 * output / source:.1f}% as much as the images): the decoder ignores z")
    return None


def _negative(nelbo: float, likelihood: str) -> str | None:
    if nelbo < 0:
        return (f"test nELBO is {nelbo:,.1f} nats ({likelihood}): negative, because a Gaussian with a "
                "tiny σ has densities above 1 on continuous data (a learned σ collapsing toward 0), so it "
                "is not a code length; use a fixed σ or a lower learning rate")
    return None


def _exploding(nelbo: float, earlier: list[dict], values: int | None) -> str | None:
    best = min((e["test_nelbo"] for e in earlier if e.get("test_nelbo", -1) > 0), default=None)
    if not math.isfinite(nelbo):
        return f"test nELBO is {nelbo}: the loss exploded; lower the learning rate"
    if best is not None and nelbo > EXPLODE_FACTOR * best:
        return (f"test nELBO rose from {best:,.1f} to {nelbo:,.1f} nats: the loss is exploding; "
                "lower the learning rate")
    if values and nelbo > EXPLODE_NATS_PER_VALUE * values:
        return (f"test nELBO is {nelbo:,.0f} nats, over {EXPLODE_NATS_PER_VALUE:g} nats per pixel value: "
                "the model does not describe the data (the loss exploded or the KL is unbounded, e.g. "
                "β = 0); do not read it as a likelihood")
    return None


def epoch_warnings(record: dict, earlier: list[dict], likelihood: str,
                   preview: dict[str, torch.Tensor] | None = None) -> list[str]:
    """Warnings for one epoch: `record` holds test_nelbo and active_units (as the trainer's epoch
    records do), `earlier` the records before it, `preview` test `originals` and their
    `reconstructions` (N, C, H, W) in [0, 1]."""
    nelbo = float(record["test_nelbo"])
    originals = (preview or {}).get("originals")
    values = None if originals is None else math.prod(originals.shape[1:])
    found = [_negative(nelbo, likelihood), _exploding(nelbo, earlier, values)]
    if preview and originals is not None:
        found.append(identical_outputs(originals, preview["reconstructions"]))
    if record.get("active_units") == 0:
        found.append("no latent dimension carries information (each has under 0.01 nats of KL): the "
                     "posterior collapsed to the prior; try a lower β or a β warm-up")
    return [w for w in found if w]

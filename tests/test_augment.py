"""Random-shift augmentation (`shift_pixels`): training batches are translated copies of the images,
evaluation sees the images untouched, seeded runs repeat, and streamed data is shifted as held data is."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from vae_core import Trainer
from vae_core.data import load_for_config
from vae_core.streaming import BUDGET_ENV, LazyImages
from vae_core.train import shift_images

from .conftest import tiny_config


def _translated(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """x (C, H, W) moved down dy and right dx pixels, zeros moving in."""
    out = torch.zeros_like(x)
    h, w = x.shape[1:]
    out[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        x[:, max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out


def test_every_shifted_image_is_its_image_moved_by_at_most_the_shift(mnist5k):
    x = mnist5k.images[:64]
    shifted = shift_images(x, 2, torch.Generator().manual_seed(0))
    assert shifted.shape == x.shape and not torch.equal(shifted, x)
    moves = set()
    for original, got in zip(x, shifted, strict=True):
        match = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                 if torch.equal(_translated(original, dy, dx), got)]
        assert match, "a shifted image is no translate of its original within ±2 pixels"
        moves.add(match[0])
    assert len(moves) > 5  # each image draws its own shift


def test_training_batches_are_shifted_and_evaluation_is_not(digits):
    trainer = Trainer(tiny_config(shift_pixels=1, epochs=1), bundle=digits)
    seen = {True: [], False: []}
    trainer.model.register_forward_pre_hook(lambda m, args: seen[m.training].append(args[0].clone()))
    trainer.fit()
    originals = {tuple(img.flatten().tolist()) for img in digits.images}
    trained = torch.cat(seen[True])
    assert sum(tuple(img.flatten().tolist()) not in originals for img in trained) > len(trained) // 2
    evaluated = torch.cat(seen[False])
    assert all(tuple(img.flatten().tolist()) in originals for img in evaluated)
    test = digits.split("test").images
    assert torch.equal(evaluated[:len(test)], test)


def test_seeded_shifted_runs_repeat_and_differ_from_unshifted(digits):
    def steps(**changes):
        trainer = Trainer(tiny_config(**changes), bundle=digits)
        trainer.fit()
        return [(r["recon"], r["kl"]) for r in trainer.history["steps"]]

    shifted = steps(shift_pixels=2)
    assert shifted == steps(shift_pixels=2)
    assert shifted != steps() and shifted != steps(shift_pixels=2, seed=1)


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(1)
    for i in range(48):
        (tmp_path / "imgs" / "x").mkdir(parents=True, exist_ok=True)
        Image.fromarray((rng.random((12, 12)) * 255).astype(np.uint8)).save(tmp_path / "imgs" / "x" / f"{i}.png")
    return tmp_path / "imgs"


def test_streamed_images_are_shifted_as_held_ones(folder, monkeypatch):
    histories = []
    for budget in ("1GB", "10KB"):
        monkeypatch.setenv(BUDGET_ENV, budget)
        cfg = tiny_config(dataset=f"folder:{folder}", image_size=12, shift_pixels=1)
        bundle = load_for_config(cfg)
        trainer = Trainer(cfg, bundle=bundle)
        trainer.fit()
        histories.append((type(bundle.images), [r["nelbo"] for r in trainer.history["steps"]]))
    (held, held_steps), (streamed, streamed_steps) = histories
    assert held is torch.Tensor and streamed is LazyImages
    assert held_steps == streamed_steps

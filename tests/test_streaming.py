"""Data larger than the memory budget: streamed through DataLoader workers (vae_core.streaming)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from tests.test_cli import ok, run_cli
from vae_core import VAEConfig
from vae_core.data import load_for_config
from vae_core.errors import VAEError
from vae_core.sprites import SpriteImages, render_sprites
from vae_core.streaming import BUDGET_ENV, LazyImages, parse_size, plan
from vae_core.train import Trainer


@pytest.mark.parametrize("text, size", [("512MB", 512 * 2**20), ("8GB", 8 * 2**30), ("1.5 gb", int(1.5 * 2**30)),
                                        ("1000", 1000), ("64KB", 65536)])
def test_sizes_parse(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["lots", "-1GB", "0", "5 parsecs", ""])
def test_a_bad_size_is_one_clear_line(text):
    with pytest.raises(VAEError, match="memory budget must be a positive size"):
        parse_size(text)


def test_the_plan_streams_only_what_does_not_fit():
    need = 1000 * 3 * 64 * 64 * 4
    assert plan(1000, (3, 64, 64), budget=need)["loading"] == "resident"
    over = plan(1000, (3, 64, 64), budget=need - 1)
    assert over["loading"] == "streamed" and "streamed through a DataLoader" in over["loading_line"]


def test_a_sprite_drawn_alone_is_the_sprite_of_the_grid():
    grid, one_by_one = render_sprites(16, 3, 4, 2), SpriteImages(16, 3, 4, 2)
    assert len(one_by_one) == len(grid.images)
    assert all(torch.equal(one_by_one[i], grid.images[i]) for i in range(len(one_by_one)))
    assert torch.equal(one_by_one.factors(), grid.factors) and one_by_one.factor_values() == grid.factor_values


def test_the_full_sprite_grid_over_the_budget_is_never_drawn_whole(monkeypatch):
    from vae_core.data import load_dataset

    monkeypatch.setenv(BUDGET_ENV, "64MB")
    bundle = load_dataset("sprites-full")
    assert isinstance(bundle.images, LazyImages) and bundle.images.shape == (737_280, 1, 64, 64)
    assert bundle.spec["loading"] == "streamed"
    test = bundle.split("test").images  # a view: nothing decoded
    assert isinstance(test, LazyImages) and len(test) == 73_728
    first = next(test.split(16, workers=0))
    source = SpriteImages(64, 40, 32)
    assert torch.equal(first, torch.stack([source[int(i)] for i in bundle.test_idx[:16]]))


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (tmp_path / "imgs" / label).mkdir(parents=True)
        for i in range(60):
            Image.fromarray((rng.random((20, 20)) * 255).astype(np.uint8)).save(tmp_path / "imgs" / label / f"{i}.png")
    return tmp_path / "imgs"


def _run(folder, monkeypatch, budget: str):
    monkeypatch.setenv(BUDGET_ENV, budget)
    cfg = VAEConfig(dataset=f"folder:{folder}", image_size=16, model="mlp", hidden_sizes=(32,), latent_dim=3,
                    epochs=2, batch_size=16, device="cpu", seed=0)
    bundle = load_for_config(cfg)
    trainer = Trainer(cfg, bundle=bundle)
    trainer.fit()
    return bundle, trainer


def test_streaming_a_folder_trains_exactly_as_holding_it(folder, monkeypatch):
    held_bundle, held = _run(folder, monkeypatch, "1GB")
    streamed_bundle, streamed = _run(folder, monkeypatch, "10KB")
    assert isinstance(held_bundle.images, torch.Tensor) and isinstance(streamed_bundle.images, LazyImages)
    assert streamed.steps_per_epoch == held.steps_per_epoch == 6  # 96 training images / batch 16
    assert [r["nelbo"] for r in streamed.history["steps"]] == [r["nelbo"] for r in held.history["steps"]]
    assert streamed.metrics["test_nelbo"] == held.metrics["test_nelbo"]
    assert streamed.history["steps"][-1]["nelbo"] < streamed.history["steps"][0]["nelbo"]


def test_a_file_that_cannot_be_decoded_while_streaming_is_named(folder, monkeypatch):
    bad = folder / "a" / "0.png"
    bad.write_bytes(bad.read_bytes()[:60])  # the header survives, the pixels do not
    monkeypatch.setenv(BUDGET_ENV, "10KB")
    cfg = VAEConfig(dataset=f"folder:{folder}", image_size=16, model="mlp", hidden_sizes=(32,), latent_dim=3,
                    epochs=1, batch_size=16, device="cpu")
    with pytest.raises(VAEError) as e:
        Trainer(cfg).fit()
    assert "\n" not in str(e.value) and str(bad) in str(e.value) and "could not be decoded" in str(e.value)


def test_the_cli_streams_over_its_budget_and_says_so(folder, tmp_path):
    proc = ok(run_cli(["train", "--dataset", f"folder:{folder}", "--image-size", "16", "--model", "mlp",
                       "--hidden-sizes", "32", "--latent-dim", "3", "--epochs", "1", "--memory-budget", "10KB",
                       "--out", "s.pt"], tmp_path))
    assert "streamed through a DataLoader" in proc.stderr and "saved s.pt" in proc.stdout


def test_a_view_indexes_like_the_tensor_it_stands_for():
    source = SpriteImages(16, 3, 4, 2)
    held = render_sprites(16, 3, 4, 2).images
    lazy = LazyImages(source, (1, 16, 16))
    idx = torch.tensor([5, 2, 40, 7])
    assert torch.equal(lazy[idx].load(), held[idx])  # a view keeps the order asked for
    assert torch.equal(lazy[idx][1], held[2]) and torch.equal(lazy[-1], held[-1])
    assert lazy[3:9].shape == (6, 1, 16, 16)
    resized = lazy.convert(8, 3)
    assert resized.shape == (len(held), 3, 8, 8) and resized[idx].load().shape == (4, 3, 8, 8)
    assert [b.shape[0] for b in lazy[idx].split(3, workers=0)] == [3, 1]


def test_anomaly_scores_of_streamed_images_equal_those_of_held_ones(tiny_checkpoint):
    from vae_core import load_checkpoint
    from vae_core.anomaly import anomaly_scores

    model = load_checkpoint(tiny_checkpoint).model  # 8x8 digits
    held = torch.rand(37, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    lazy = LazyImages(_Items(held), (1, 8, 8))
    for score in ("nelbo", "recon"):
        assert np.array_equal(anomaly_scores(model, lazy, score, batch_size=10),
                              anomaly_scores(model, held, score, batch_size=10))


class _Items(torch.utils.data.Dataset):
    def __init__(self, images):
        self.images = images

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i]


def test_the_probe_of_a_streamed_split_matches_the_held_one_and_reads_pixels_in_batches(
        tiny_checkpoint, digits, monkeypatch):
    """Latent and pixel probes score the same on streamed images; PCA is fitted incrementally there
    (close, not equal); nothing larger than the labelled draw is ever decoded at once."""
    import dataclasses

    from vae_core import load_checkpoint, metrics

    model = load_checkpoint(tiny_checkpoint).model  # 8x8 digits
    monkeypatch.setattr(metrics, "PROBE_BATCH", 128)  # several batches of the 360 test images
    held = metrics.probe(model, digits, label_counts=(10, 100))
    loads = []
    real_load = LazyImages.load
    monkeypatch.setattr(LazyImages, "load", lambda self: loads.append(len(self)) or real_load(self))
    streamed_bundle = dataclasses.replace(digits, images=LazyImages(_Items(digits.images), (1, 8, 8)))
    streamed = metrics.probe(model, streamed_bundle, label_counts=(10, 100))
    for n in ("10", "100"):
        assert streamed["labels"][n]["latent_acc"] == held["labels"][n]["latent_acc"]
        assert streamed["labels"][n]["pixel_acc"] == held["labels"][n]["pixel_acc"]
        assert abs(streamed["labels"][n]["pca_acc"] - held["labels"][n]["pca_acc"]) < 0.1
    assert loads and max(loads) <= 100 < len(digits.images)  # only the labelled draw, never a split


@pytest.mark.parametrize("binarize", [False, True])
def test_images_held_as_bytes_train_exactly_as_their_float_tensor(digits, binarize):
    """ByteImages (what torchvision datasets load into: uint8, a quarter of float32) give every batch,
    view and score the float32 tensor would; training on them repeats the float run step for step."""
    import dataclasses

    from vae_core.streaming import ByteImages, as_tensor, streamed

    pixels = (digits.images * 255).round().to(torch.uint8)
    as_float = pixels.float() / 255
    held = ByteImages(pixels)
    assert held.resident and not streamed(held) and streamed(LazyImages(_Items(as_float), (1, 8, 8)))
    assert torch.equal(as_tensor(held), as_float) and torch.equal(held[5], as_float[5])
    pick = torch.tensor([7, 3, 3, 0])
    assert isinstance(held[pick], ByteImages) and torch.equal(as_tensor(held[pick]), as_float[pick])
    assert [torch.equal(a, as_float[p]) for a, p in zip(held.batches(pick.split(3)), pick.split(3), strict=True)] \
        == [True, True]

    histories = []
    for images in (as_float, held):
        cfg = VAEConfig(dataset="digits", model="mlp", hidden_sizes=(16,), latent_dim=2, epochs=2, batch_size=64,
                        device="cpu", seed=0, binarize=binarize)
        trainer = Trainer(cfg, bundle=dataclasses.replace(digits, images=images))
        trainer.fit()
        histories.append(([r["nelbo"] for r in trainer.history["steps"]], trainer.metrics["test_nelbo"]))
    assert histories[0] == histories[1] and histories[0][0][-1] < histories[0][0][0]

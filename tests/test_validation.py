"""The validation split: a seeded part of the train split held out of training, scored every epoch."""

import pytest
import torch

from vae_core import Trainer, VAEConfig, VAEError, load_checkpoint
from vae_core.cli import main
from vae_core.evaluate import evaluate
from vae_core.train import validation_split

from .conftest import tiny_config


def test_validation_split_is_a_seeded_disjoint_part_of_the_train_split(digits):
    train, val = validation_split(digits.train_idx, 0.1)
    again, val_again = validation_split(digits.train_idx, 0.1)
    assert len(val) == round(0.1 * len(digits.train_idx)) and len(train) + len(val) == len(digits.train_idx)
    assert not set(val.tolist()) & set(train.tolist())
    assert set(train.tolist()) | set(val.tolist()) == set(digits.train_idx.tolist())
    assert not set(val.tolist()) & set(digits.test_idx.tolist())
    assert torch.equal(val, val_again) and torch.equal(train, again)


def test_no_validation_keeps_the_whole_train_split(digits):
    train, val = validation_split(digits.train_idx, 0.0)
    assert torch.equal(train, digits.train_idx) and len(val) == 0


@pytest.mark.parametrize("bad", [-0.1, 0.6])
def test_val_fraction_out_of_range_is_refused(bad):
    with pytest.raises(VAEError, match="val_fraction"):
        VAEConfig(val_fraction=bad)


def test_training_never_sees_the_validation_images_and_reports_them(digits, tmp_path):
    trainer = Trainer(tiny_config(val_fraction=0.2), bundle=digits, out_path=tmp_path / "v.pt")
    seen = []
    trainer.model.register_forward_pre_hook(lambda m, args: seen.append(args[0].clone()) if m.training else None)
    trainer.fit()
    trained_on = torch.cat(seen).flatten(1)
    val_images = digits.images[trainer.val_idx].flatten(1)
    assert len(trained_on) == 2 * len(trainer.train_idx)  # two epochs of the reduced split
    assert not (torch.cdist(val_images, trained_on) == 0).any()  # no validation image was trained on
    record = trainer.history["epochs"][-1]
    expected = evaluate(trainer.model.eval(), digits.images[trainer.val_idx], prepared=True)
    assert record["val_nelbo"] == pytest.approx(expected["nelbo"])
    ckpt = load_checkpoint(tmp_path / "v.pt")
    assert ckpt.config.val_fraction == 0.2 and ckpt.metrics["val_nelbo"] == pytest.approx(expected["nelbo"])
    assert ckpt.data_spec["n_val"] == len(trainer.val_idx) and ckpt.data_spec["n_train"] == len(trainer.train_idx)


def test_cli_trains_with_a_validation_split(tmp_path, capsys):
    out = tmp_path / "c.pt"
    assert main(["train", "--dataset", "digits", "--model", "mlp", "--latent-dim", "2", "--hidden-sizes", "16",
                 "--epochs", "1", "--val-fraction", "0.25", "--lr-schedule", "cosine", "--device", "cpu",
                 "--out", str(out), "--quiet"]) == 0
    ckpt = load_checkpoint(out)
    assert ckpt.config.val_fraction == 0.25 and ckpt.config.lr_schedule == "cosine"
    assert "val_nelbo" in ckpt.history["epochs"][0]

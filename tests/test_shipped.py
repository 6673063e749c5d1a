"""The models that ship in checkpoints/: present, small, loadable, and what their preset says."""

from pathlib import Path

import pytest
import torch

from vae_core import load_checkpoint
from vae_core.presets import PRESETS
from vae_core.projection import checkpoint_cache_key

CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"


def test_shipped_checkpoints_stay_under_25_mb():
    total = sum(p.stat().st_size for p in CHECKPOINTS.rglob("*") if p.is_file())
    assert total < 25 * 2**20, f"{total / 2**20:.1f} MB"


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_shipped_checkpoint_matches_its_preset(name):
    path = CHECKPOINTS / f"{name}.pt"
    ckpt = load_checkpoint(path)  # rebuilds the model from the stored config and loads weights strictly
    for key, value in PRESETS[name].items():
        got = getattr(ckpt.config, key)
        assert (tuple(got) if isinstance(value, tuple) else got) == value, key
    assert ckpt.config.extra.get("preset") == name
    assert ckpt.progress["epoch"] == ckpt.config.epochs and ckpt.progress["status"] == "finished"
    n_weights = sum(v.numel() for v in ckpt.model.state_dict().values())
    assert n_weights == sum(p.numel() for p in ckpt.model.parameters())
    with torch.no_grad():
        images = ckpt.model.decode(torch.zeros(2, ckpt.config.latent_dim))
    assert images.shape == (2, *ckpt.image_shape)
    assert ckpt.metrics["test_nelbo"] > 0 and ckpt.metrics["likelihood"]


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_shipped_projections_are_there(name):
    key = checkpoint_cache_key(CHECKPOINTS / f"{name}.pt")
    methods = {p.name.split("-")[1] for p in (CHECKPOINTS / "projections").glob(f"{key}-*.npy")}
    assert {"pca", "umap"} <= methods

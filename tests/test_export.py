"""Decoder export to ONNX: every model kind and image size matches the PyTorch decoder under
onnxruntime, carries the metadata a front end needs, and an unexportable decoder is one clear line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from vae_core import Checkpoint, VAEConfig, VAEError, build_model
from vae_core.cli import main
from vae_core.export import export_decoder, kl_order, read_metadata
from vae_core.latent import decode

ort = pytest.importorskip("onnxruntime")  # a test dependency (requirements-dev.txt)

CASES = [  # (model, image shape, hidden sizes, likelihood)
    ("mlp", (1, 28, 28), (64, 32), "bernoulli"),
    ("mlp", (1, 8, 8), (16,), "bernoulli"),
    ("mlp", (3, 32, 32), (64,), "gaussian"),
    ("conv", (1, 28, 28), (64,), "bernoulli"),
    ("conv", (1, 32, 32), (64,), "bernoulli"),
    ("conv", (3, 32, 32), (64,), "gaussian"),
    ("conv", (1, 64, 64), (64,), "bernoulli"),
    ("conv", (3, 64, 64), (32,), "gaussian"),
]


def checkpoint(model: str, shape, hidden, likelihood: str, latent_dim: int = 5, metrics=None) -> Checkpoint:
    config = VAEConfig(model=model, latent_dim=latent_dim, hidden_sizes=hidden, likelihood=likelihood,
                       sigma_mode="global" if likelihood == "gaussian" else "fixed", image_size=shape[1],
                       channels=shape[0])
    vae = build_model(config, shape, seed=1).eval()
    return Checkpoint(path=Path(f"{model}-{'x'.join(map(str, shape))}.pt"), config=config, model=vae,
                      image_shape=tuple(shape), metrics=metrics or {})


@pytest.mark.parametrize(("model", "shape", "hidden", "likelihood"), CASES)
def test_onnx_decoder_matches_pytorch(model, shape, hidden, likelihood):
    ckpt = checkpoint(model, shape, hidden, likelihood)
    session = ort.InferenceSession(export_decoder(ckpt), providers=["CPUExecutionProvider"])
    z = torch.randn(7, ckpt.config.latent_dim, generator=torch.Generator().manual_seed(0)) * 2
    (got,) = session.run(None, {"z": z.numpy()})
    want = decode(ckpt.model, z).numpy()
    assert got.shape == (7, *shape)
    assert np.abs(got - want).max() <= 1e-4
    assert 0.0 <= got.min() and got.max() <= 1.0


def test_metadata_names_shape_likelihood_and_kl_order():
    kl = [0.1, 3.0, 0.0, 1.5, 0.7]
    ckpt = checkpoint("conv", (1, 28, 28), (64,), "bernoulli", metrics={"test_kl_per_dim": kl})
    meta = read_metadata(export_decoder(ckpt))
    assert meta["latent_dim"] == 5 and meta["image_shape"] == [1, 28, 28]
    assert meta["likelihood"] == "Bernoulli on grey levels"
    assert meta["kl_order"] == [1, 3, 4, 0, 2] == kl_order(ckpt)
    assert kl_order(checkpoint("mlp", (1, 8, 8), (16,), "bernoulli")) == [0, 1, 2, 3, 4]  # no metrics stored


class _SVDDecoder(nn.Module):  # an op the ONNX exporter has no translation for
    def forward(self, z):
        return torch.linalg.svd(z[:, :4].reshape(-1, 2, 2))[0].reshape(-1, 1, 2, 2)


def test_unexportable_decoder_is_one_clear_line(tmp_path):
    ckpt = checkpoint("mlp", (1, 8, 8), (16,), "bernoulli")
    ckpt.model.decoder = _SVDDecoder()
    with pytest.raises(VAEError) as err:
        export_decoder(ckpt, tmp_path / "d.onnx")
    message = str(err.value)
    assert "cannot be exported to ONNX" in message and "svd" in message and "\n" not in message
    assert not (tmp_path / "d.onnx").exists()


def test_cli_export_writes_a_runnable_graph(tmp_path, capsys):
    ckpt = checkpoint("conv", (1, 28, 28), (64,), "bernoulli")
    from vae_core.checkpoint import save_checkpoint

    path = save_checkpoint(tmp_path / "m.pt", config=ckpt.config, model=ckpt.model)
    out = tmp_path / "sub" / "decoder.onnx"
    assert main(["export", str(path), "--onnx", str(out), "--json"]) == 0
    meta = json.loads(capsys.readouterr().out)
    assert meta["bytes"] == out.stat().st_size and meta["image_shape"] == [1, 28, 28]
    (got,) = ort.InferenceSession(str(out)).run(None, {"z": np.zeros((2, 5), np.float32)})
    assert got.shape == (2, 1, 28, 28)
    assert main(["export", str(tmp_path / "missing.pt"), "--onnx", str(out)]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    assert main(["export", str(path), "--onnx", str(tmp_path)]) == 2  # a folder, not a file
    assert "is a folder" in capsys.readouterr().err

"""Decoder and encoder export to ONNX: every model kind and image size matches the PyTorch decoder
(and encoder) under onnxruntime, carries the metadata a front end needs, and an unexportable one is one
clear line. The app serves each checkpoint's encoder beside its decoder, exported once."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from vae_core import Checkpoint, VAEConfig, VAEError, build_model
from vae_core.cli import main
from vae_core.export import export_decoder, export_encoder, kl_order, read_metadata
from vae_core.latent import decode, encode

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


def checkpoint(model: str, shape, hidden, likelihood: str, latent_dim: int = 5, metrics=None, **options) -> Checkpoint:
    config = VAEConfig(model=model, latent_dim=latent_dim, hidden_sizes=hidden, likelihood=likelihood,
                       sigma_mode="global" if likelihood == "gaussian" else "fixed", image_size=shape[1],
                       channels=shape[0], **options)
    vae = build_model(config, shape, seed=1).eval()
    return Checkpoint(path=Path(f"{model}-{'x'.join(map(str, shape))}.pt"), config=config, model=vae,
                      image_shape=tuple(shape), metrics=metrics or {})


@pytest.mark.parametrize(("model", "shape", "hidden", "likelihood"), CASES)
def test_onnx_decoder_matches_pytorch(model, shape, hidden, likelihood):
    ckpt = checkpoint(model, shape, hidden, likelihood)
    session = ort.InferenceSession(export_decoder(ckpt), providers=["CPUExecutionProvider"])
    z = torch.randn(7, ckpt.latent_dim, generator=torch.Generator().manual_seed(0)) * 2
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


ENCODER_CASES = [  # (model, image shape, hidden sizes, likelihood, latent size, options)
    ("mlp", (1, 28, 28), (64, 32), "bernoulli", 2, {}),
    ("mlp", (1, 8, 8), (16,), "bernoulli", 16, {}),
    ("mlp", (3, 32, 32), (64,), "gaussian", 16, {}),
    ("conv", (1, 28, 28), (64,), "bernoulli", 2, {}),
    ("conv", (1, 28, 28), (64,), "bernoulli", 16, {"residual_blocks": 2, "dropout": 0.3}),
    ("conv", (1, 32, 32), (64,), "bernoulli", 16, {}),
    ("conv", (3, 32, 32), (64,), "gaussian", 2, {"residual_blocks": 1}),
    ("conv", (1, 64, 64), (64,), "bernoulli", 16, {}),
    ("conv", (3, 64, 64), (32,), "gaussian", 16, {"residual_blocks": 1}),
]


@pytest.mark.parametrize(("model", "shape", "hidden", "likelihood", "latent_dim", "options"), ENCODER_CASES)
def test_onnx_encoder_matches_pytorch(model, shape, hidden, likelihood, latent_dim, options):
    ckpt = checkpoint(model, shape, hidden, likelihood, latent_dim, **options)
    ckpt.model.train()  # dropout on: the export must still be the eval-mode encoder, and leave the mode alone
    session = ort.InferenceSession(export_encoder(ckpt), providers=["CPUExecutionProvider"])
    assert ckpt.model.training
    ckpt.model.eval()
    assert [i.name for i in session.get_inputs()] == ["x"]
    assert [o.name for o in session.get_outputs()] == ["mu", "logvar"]
    assert session.get_inputs()[0].type == "tensor(float)" and session.get_outputs()[0].shape[1] == latent_dim
    x = torch.rand(7, *shape, generator=torch.Generator().manual_seed(0))  # images in [0, 1], as the app holds them
    want_mu, want_logvar = encode(ckpt.model, x)
    for batch in (x, x[:1]):  # the batch axis is dynamic
        mu, logvar = session.run(None, {"x": batch.numpy()})
        assert mu.shape == logvar.shape == (len(batch), latent_dim) and mu.dtype == logvar.dtype == np.float32
        assert np.abs(mu - want_mu[: len(batch)].numpy()).max() <= 1e-4
        assert np.abs(logvar - want_logvar[: len(batch)].numpy()).max() <= 1e-4


def test_encoder_metadata_is_the_decoders_and_names_the_part():
    kl = [0.1, 3.0, 0.0, 1.5, 0.7]
    ckpt = checkpoint("conv", (3, 32, 32), (64,), "gaussian", metrics={"test_kl_per_dim": kl})
    meta = read_metadata(export_encoder(ckpt))
    assert meta == read_metadata(export_decoder(ckpt)) | {"part": "encoder"}
    assert meta["latent_dim"] == 5 and meta["image_shape"] == [3, 32, 32] and meta["kl_order"] == [1, 3, 4, 0, 2]
    assert meta["source"] == ckpt.path.name and meta["likelihood"] == ckpt.config.likelihood_name


class _SVDEncoder(nn.Module):  # an op the ONNX exporter has no translation for
    def forward(self, x):
        u = torch.linalg.svd(x[:, 0, :2, :2])[0].reshape(-1, 4)
        return u[:, :2], u[:, 2:]


def test_unexportable_encoder_is_one_clear_line(tmp_path):
    ckpt = checkpoint("mlp", (1, 8, 8), (16,), "bernoulli", latent_dim=2)
    ckpt.model.encoder = _SVDEncoder()
    with pytest.raises(VAEError) as err:
        export_encoder(ckpt, tmp_path / "e.onnx")
    message = str(err.value)
    assert "encoder of" in message and "cannot be exported to ONNX" in message and "svd" in message
    assert "\n" not in message and not (tmp_path / "e.onnx").exists()


def test_cli_export_part_encoder_writes_a_runnable_graph(tmp_path, capsys):
    ckpt = checkpoint("conv", (1, 28, 28), (64,), "bernoulli")
    from vae_core.checkpoint import save_checkpoint

    path = save_checkpoint(tmp_path / "m.pt", config=ckpt.config, model=ckpt.model)
    out = tmp_path / "encoder.onnx"
    assert main(["export", str(path), "--onnx", str(out), "--part", "encoder", "--json"]) == 0
    meta = json.loads(capsys.readouterr().out)
    assert meta["bytes"] == out.stat().st_size and meta["part"] == "encoder" and meta["latent_dim"] == 5
    x = np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)
    mu, logvar = ort.InferenceSession(str(out)).run(None, {"x": x})
    want_mu, want_logvar = encode(ckpt.model, torch.from_numpy(x))
    assert np.abs(mu - want_mu.numpy()).max() <= 1e-4 and np.abs(logvar - want_logvar.numpy()).max() <= 1e-4
    assert main(["export", str(path), "--onnx", str(out), "--part", "encoder"]) == 0
    assert "mu, logvar (5 each)" in capsys.readouterr().out
    assert main(["export", str(path), "--onnx", str(tmp_path), "--part", "encoder"]) == 2  # a folder
    assert "encoder.onnx" in capsys.readouterr().err


def test_app_serves_the_encoder_beside_the_decoder_exported_once(tmp_path, monkeypatch):
    ui_live = pytest.importorskip("ui.live_decoder")
    from vae_core import load_checkpoint
    from vae_core.checkpoint import save_checkpoint
    from vae_core.library import checkpoint_cache_key

    monkeypatch.setattr(ui_live, "DECODERS", tmp_path / "decoders")
    exports = []

    def counted(ckpt, out):
        exports.append(out)
        return export_encoder(ckpt, out)

    monkeypatch.setattr(ui_live, "export_encoder", counted)
    made = checkpoint("mlp", (1, 8, 8), (16,), "bernoulli", latent_dim=2)
    ckpt = load_checkpoint(save_checkpoint(tmp_path / "m.pt", config=made.config, model=made.model))
    name = f"{checkpoint_cache_key(ckpt.path)}.encoder.onnx"
    ui_live._exported_encoder.clear()
    try:
        url = ui_live.encoder_url(ckpt)
        assert url == ui_live.static_base() + "decoders/" + name and exports == [tmp_path / "decoders" / name]
        ui_live._exported_encoder.clear()  # a fresh server: the file is there, so it is not exported again
        assert ui_live.encoder_url(ckpt) == url and len(exports) == 1
        assert [p.name for p in (tmp_path / "decoders").iterdir()] == [name]  # the decoder's name is {key}.onnx
        x = np.zeros((1, 1, 8, 8), np.float32)
        assert ort.InferenceSession(str(tmp_path / "decoders" / name)).run(None, {"x": x})[0].shape == (1, 2)

        ckpt.model.encoder = _SVDEncoder()  # a model whose encoder cannot be exported: one line, pages fall back
        (tmp_path / "decoders" / name).unlink()
        ui_live._exported_encoder.clear()
        monkeypatch.setattr(ui_live.st, "get_option", lambda option: True)
        reason = ui_live.encoder_unavailable(ckpt)
        assert reason is not None and "cannot be exported to ONNX" in reason and "\n" not in reason
    finally:
        ui_live._exported_encoder.clear()

"""Size limits, checked before anything is allocated: model size from the config alone, a hostile
checkpoint refused without building it, training settings refused with a message naming the limit
and the variable that changes it, stricter defaults in the public demo, image pixels bounded."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
import torch
from PIL import Image

from tests.conftest import tiny_config
from vae_core import Trainer, VAEConfig, VAEError, build_model, load_checkpoint, sizing
from vae_core.checkpoint import FORMAT, FORMAT_VERSION
from vae_core.data import read_image
from vae_core.limits import LIMITS, describe_limits, limit
from vae_core.sizing import check_model, check_training, model_size

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("default_limits")  # each test starts from the local defaults


@pytest.mark.parametrize("config,shape", [
    (VAEConfig(model="mlp"), (1, 28, 28)),
    (VAEConfig(model="mlp", hidden_sizes=(64,), latent_dim=3, likelihood="gaussian", sigma_mode="pixel"), (3, 8, 8)),
    (VAEConfig(model="conv"), (1, 28, 28)),
    (VAEConfig(model="conv", hidden_sizes=(100,), likelihood="gaussian", sigma_mode="global"), (3, 32, 32)),
    (VAEConfig(model="conv", conv_channels=(8, 16, 24), residual_blocks=1), (1, 64, 64)),
])
def test_model_size_is_exact_without_building_the_model(config, shape):
    built = build_model(config, shape)
    size = model_size(config, shape)
    assert size.parameters == sum(p.numel() for p in built.parameters())
    assert size.activations_per_example > sum(shape)
    assert size.megabytes(256, training=True) > size.megabytes(64, training=True) > size.megabytes(64, training=False)


def test_small_models_are_counted_on_the_cpu_as_the_meta_device_counts_them(monkeypatch):
    config, shape = VAEConfig(model="conv", residual_blocks=1), (1, 28, 28)
    torch.manual_seed(3)
    expected_draw = torch.rand(3)
    torch.manual_seed(3)
    on_cpu = model_size(config, shape)
    assert torch.equal(torch.rand(3), expected_draw)  # the global random state is untouched
    monkeypatch.setattr(sizing, "COUNTED_ON_CPU", 0)
    assert model_size(config, shape) == on_cpu


def test_large_images_are_sized_on_the_meta_device(monkeypatch):
    # one image through a real copy would allocate its activations: not for images above 64 x 64
    devices, count = [], sizing._leaf_outputs
    monkeypatch.setattr(sizing, "_leaf_outputs", lambda model, x: devices.append(x.device.type) or count(model, x))
    config = VAEConfig(model="mlp", hidden_sizes=(32,))
    small, large = model_size(config, (1, 28, 28)), model_size(config, (1, 128, 128))
    assert devices == ["cpu", "meta"]
    assert large.activations_per_example > small.activations_per_example


def test_sizing_a_conv_model_does_not_import_the_meta_kernels():
    # the meta device's Python kernels for convolutions import sympy and ~900 modules (0.9 s)
    script = ("import sys\nfrom vae_core.config import VAEConfig\nfrom vae_core.sizing import model_size\n"
              "model_size(VAEConfig(model='conv'), (1, 28, 28))\nprint('sympy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.stdout.strip() == "False", out.stderr[-500:]


def _hostile_checkpoint(path: Path, hidden: tuple[int, ...]) -> Path:
    """A tiny file whose config asks for a model of `hidden` widths and holds no weights."""
    config = VAEConfig(model="mlp", hidden_sizes=hidden, latent_dim=2)
    torch.save({"format": FORMAT, "format_version": FORMAT_VERSION, "config": config.to_dict(),
                "image_shape": [1, 28, 28], "model_state": {}}, path)
    return path


def test_a_small_file_asking_for_a_huge_model_is_refused_without_allocating(tmp_path):
    path = _hostile_checkpoint(tmp_path / "huge.pt", (16_384, 16_384))
    assert path.stat().st_size < 4096
    # VmHWM, the peak of this process's own memory: getrusage's ru_maxrss would carry over the
    # peak of the forking test process (Linux keeps it across fork and exec)
    script = ("import sys\nfrom vae_core import VAEError, load_checkpoint\n"
              "try:\n    load_checkpoint(sys.argv[1])\nexcept VAEError as e:\n    print(e)\n"
              "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')))")
    out = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, cwd=ROOT,
                         timeout=120, check=True).stdout.splitlines()
    message, peak_kb = out[0], int(out[1])
    assert "model too large (model parameters 562,725,652;" in message and "VAE_MAX_PARAMETERS" in message
    assert peak_kb < 1_500_000  # the model it asks for needs 2.1 GiB of weights alone


def test_a_file_whose_weights_do_not_fit_its_config_is_refused_before_building(tmp_path):
    path = _hostile_checkpoint(tmp_path / "empty.pt", (64,))
    with pytest.raises(VAEError, match=r"does not match .* needs 101,652 weights, the file holds 0"):
        load_checkpoint(path)


def test_training_a_huge_hidden_layer_is_a_message_not_an_allocation_error(digits):
    with pytest.raises(VAEError, match="model too large .*VAE_MAX_PARAMETERS") as err:
        Trainer(tiny_config(hidden_sizes=(99_999_999,)), bundle=digits)
    assert "\n" not in str(err.value)


def test_memory_at_the_batch_size_is_checked(monkeypatch):
    monkeypatch.setenv("VAE_MAX_MEMORY_MB", "64")
    config = VAEConfig(model="conv", latent_dim=8, hidden_sizes=(64,), batch_size=4096)
    with pytest.raises(VAEError, match="model too large to train at batch size 4096 .*VAE_MAX_MEMORY_MB"):
        check_training(config.replace(dataset="sprites"))
    check_training(config.replace(dataset="sprites", batch_size=32))


def test_limits_come_from_the_environment_and_are_stricter_in_public(monkeypatch):
    assert limit("epochs") == 10_000 and limit("train_minutes") is None
    check_training(VAEConfig(dataset="sprites-full", epochs=50, batch_size=1024))
    monkeypatch.setenv("VAE_EXPLORER_PUBLIC", "1")
    assert limit("epochs") == 20 and limit("train_minutes") == 10
    with pytest.raises(VAEError, match=r"too many epochs \(epochs 50; the limit is 20 in the public demo, "
                                       r"set VAE_MAX_EPOCHS to change it\)"):
        check_training(VAEConfig(dataset="mnist5k", epochs=50))
    with pytest.raises(VAEError, match="batch too large .*VAE_MAX_BATCH_SIZE"):
        check_training(VAEConfig(dataset="mnist5k", epochs=5, batch_size=1024))
    with pytest.raises(VAEError, match="dataset sprites-full too large .*737,280.*VAE_MAX_DATASET_IMAGES"):
        check_training(VAEConfig(dataset="sprites-full", epochs=5))
    monkeypatch.setenv("VAE_MAX_EPOCHS", "none")
    check_training(VAEConfig(dataset="mnist5k", epochs=50))
    monkeypatch.setenv("VAE_MAX_EPOCHS", "lots")
    with pytest.raises(VAEError, match="VAE_MAX_EPOCHS must be a number or 'none'"):
        limit("epochs")


def test_every_limit_is_described_with_its_variable():
    lines = describe_limits()
    assert len(lines) == len(LIMITS)
    assert all(spec.env in line for spec, line in zip(LIMITS.values(), lines, strict=True))


def test_image_shape_and_pixels_are_bounded(monkeypatch):
    with pytest.raises(VAEError, match="image size .*VAE_MAX_IMAGE_SIDE"):
        check_model(VAEConfig(model="mlp"), (1, 4096, 4096))
    with pytest.raises(VAEError, match="channels 1 or 3"):
        check_model(VAEConfig(model="mlp"), (7, 28, 28))
    png = io.BytesIO()
    Image.new("L", (5000, 5000)).save(png, format="PNG")  # 25 megapixels in a few kilobytes
    monkeypatch.setenv("VAE_MAX_IMAGE_PIXELS", "1000000")
    with pytest.raises(VAEError, match=r"image too large \(5000x5000\) .*VAE_MAX_IMAGE_PIXELS"):
        read_image(png.getvalue(), (1, 28, 28))


def test_the_servers_upload_size_is_the_documented_upload_limit():
    """`server.maxUploadSize` (what the server accepts in one request at all) is the local upload limit, the
    one source of truth in LIMITS, and 1 MB for the request's framing; the public demo's limit lies below
    it, so its uploader can enforce it."""
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    spec = LIMITS["upload_mb"]
    assert config["server"]["maxUploadSize"] == spec.local + 1
    assert spec.public < spec.local

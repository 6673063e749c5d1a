"""Limits a hosted explorer enforces before anything is allocated.

Each limit has a generous local default, a stricter default in the public-demo mode
(`VAE_EXPLORER_PUBLIC=1`) and an environment variable that overrides both (a number, or `none` for
no limit). Model size comes from the config and the image shape alone, the model instantiated on the meta
device (shapes, no storage), so a 2 KB file that asks for two 16,384-wide layers is refused before
a byte of it is allocated. Every refusal is one `VAEError` line naming the limit and the variable that changes it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch

from vae_core.config import VAEConfig
from vae_core.errors import VAEError

PUBLIC_ENV = "VAE_EXPLORER_PUBLIC"
FLOAT_BYTES = 4
INFERENCE_BATCH = 512  # the chunk size the latent operations encode and decode in
# a model up to this many parameters, for images up to this many pixels a channel, is measured on a
# real CPU copy (one image: at most a few tens of MB for the largest layer), any other on the meta device
COUNTED_ON_CPU = 10_000_000
COUNTED_ON_CPU_PIXELS = 64 * 64


@dataclass(frozen=True)
class Limit:
    what: str  # in the user's words
    env: str
    local: float | None  # None: no limit
    public: float | None
    unit: str = ""


LIMITS: dict[str, Limit] = {
    "parameters": Limit("model parameters", "VAE_MAX_PARAMETERS", 100_000_000, 5_000_000),
    "memory_mb": Limit("estimated model memory", "VAE_MAX_MEMORY_MB", 8192, 1024, "MB"),
    "image_side": Limit("image side", "VAE_MAX_IMAGE_SIDE", 256, 64, "pixels"),
    "image_pixels": Limit("pixels in an image file", "VAE_MAX_IMAGE_PIXELS", 40_000_000, 16_000_000),
    "dataset_images": Limit("images in a dataset", "VAE_MAX_DATASET_IMAGES", 1_000_000, 60_000),
    "epochs": Limit("epochs", "VAE_MAX_EPOCHS", 10_000, 20),
    "batch_size": Limit("batch size", "VAE_MAX_BATCH_SIZE", 65_536, 512),
    "train_minutes": Limit("training time per run", "VAE_MAX_TRAIN_MINUTES", None, 10, "minutes"),
    "concurrent_runs": Limit("training runs at once on this server", "VAE_MAX_CONCURRENT_RUNS", 4, 2),
    # the local default is also server.maxUploadSize in .streamlit/config.toml, which caps every upload
    "upload_mb": Limit("size of an upload (checkpoint or image)", "VAE_MAX_UPLOAD_MB", 50, 10, "MB"),
}


def public_mode() -> bool:
    """True when the server runs as a public demo (`VAE_EXPLORER_PUBLIC=1`)."""
    return os.environ.get(PUBLIC_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def limit(key: str) -> float | None:
    """The limit in force: the environment variable if set, else the mode's default."""
    spec = LIMITS[key]
    text = os.environ.get(spec.env, "").strip()
    if not text:
        return spec.public if public_mode() else spec.local
    if text.lower() == "none":
        return None
    try:
        value = float(text)
    except ValueError:
        raise VAEError(f"{spec.env} must be a number or 'none' (got {text!r})") from None
    if not value > 0:
        raise VAEError(f"{spec.env} must be > 0 (got {text!r})")
    return value


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def check(key: str, value: float, subject: str) -> None:
    """Refuse `value` when it is over limit `key`; `subject` says what was asked for."""
    cap = limit(key)
    if cap is not None and value > cap:
        spec = LIMITS[key]
        unit = f" {spec.unit}" if spec.unit else ""
        mode = " in the public demo" if public_mode() else ""
        raise VAEError(f"{subject} ({spec.what} {_number(value)}{unit}; the limit is {_number(cap)}{unit}"
                       f"{mode}, set {spec.env} to change it)")


def describe_limits() -> list[str]:
    """Every limit in force, one line each, for a UI to show."""
    lines = []
    for key, spec in LIMITS.items():
        cap = limit(key)
        shown = "none" if cap is None else f"{_number(cap)}{' ' + spec.unit if spec.unit else ''}"
        lines.append(f"{spec.what}: {shown} ({spec.env})")
    return lines


# --- model size from the config alone


@dataclass(frozen=True)
class ModelSize:
    parameters: int
    activations_per_example: int  # float values a forward pass keeps for one image

    def megabytes(self, batch_size: int, *, training: bool) -> float:
        """Training: weights, gradients and Adam's two moments, and activations with their
        gradients. Inference: weights and one forward pass."""
        per_param, per_activation = (4, 2) if training else (1, 1)
        values = self.parameters * per_param + self.activations_per_example * per_activation * batch_size
        return values * FLOAT_BYTES / 2**20


def _leaf_outputs(model: torch.nn.Module, x: torch.Tensor) -> int:
    """Values the leaf modules output in one forward pass of `x`."""
    total = 0

    def count(module, inputs, output):
        nonlocal total
        total += sum(t.numel() for t in (output if isinstance(output, tuple) else (output,)))

    leaves = [m for m in model.modules() if not any(m.children())]
    hooks = [m.register_forward_hook(count) for m in leaves]
    try:
        model(x)
    finally:
        for h in hooks:
            h.remove()
    return total


def model_size(config: VAEConfig, image_shape: tuple[int, int, int]) -> ModelSize:
    """Parameters and activations of the model `config` describes for images (C, H, W).

    The parameters are counted on PyTorch's meta device, which records shapes and allocates no
    storage, so nothing is allocated however large the config asks the model to be. The activations
    come from one forward pass of one image: on a real CPU copy when the model and its images are
    small enough (`COUNTED_ON_CPU`, `COUNTED_ON_CPU_PIXELS`), else on the meta device; the figures are
    exact for any architecture either way. A config no model can take raises the model's own `VAEError`.
    """
    from vae_core.models import VAE

    shape = tuple(int(s) for s in image_shape)
    with torch.device("meta"):
        model = VAE(config, shape)
    parameters = sum(p.numel() for p in model.parameters())
    if parameters <= COUNTED_ON_CPU and math.prod(shape[1:]) <= COUNTED_ON_CPU_PIXELS:
        # a real copy, one image, in milliseconds: on the meta device a convolution runs PyTorch's
        # Python meta kernels, whose first use in a process imports ~900 modules (sympy among them;
        # 0.9 s of a fresh app's first page). The global random state is left as it was.
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            activations = _leaf_outputs(VAE(config, shape).eval(), torch.zeros((1, *shape)))
    else:
        with torch.device("meta"):
            activations = _leaf_outputs(model, torch.empty((1, *shape)))
    # plus the input, the loss terms per pixel, and z with its noise and σ
    activations += 2 * math.prod(shape) + 3 * config.latent_dim
    return ModelSize(parameters, activations)


def check_image_shape(image_shape: tuple[int, ...]) -> None:
    if len(image_shape) != 3 or image_shape[0] not in (1, 3) or min(image_shape) < 1:
        raise VAEError(f"image shape must be (channels 1 or 3, height, width) (got {tuple(image_shape)})")
    check("image_side", max(image_shape[1:]), "image size")


def check_model(config: VAEConfig, image_shape: tuple[int, int, int], *, batch_size: int = INFERENCE_BATCH,
                training: bool = False) -> ModelSize:
    """Refuse a model too large to build (parameters) or to run at `batch_size` (memory)."""
    check_image_shape(image_shape)
    size = model_size(config, image_shape)
    check("parameters", size.parameters, "model too large")
    use = "train" if training else "run"
    check("memory_mb", math.ceil(size.megabytes(batch_size, training=training)),
          f"model too large to {use} at batch size {batch_size}")
    return size


def expected_image_shape(config: VAEConfig) -> tuple[int, int, int] | None:
    """The image shape a config's dataset will have, known before loading it; None if unknown."""
    info = _dataset(config.dataset)
    if info is None:
        return None
    c, h, w = info.image_shape or (3, 64, 64)  # a folder: RGB at 64 px unless told otherwise
    side = config.image_size
    return (config.channels or c, side or h, side or w)


def _dataset(name: str):
    """The registry entry of a dataset name (`folder:PATH` for any folder); None for an unknown name,
    which loading the data refuses."""
    from vae_core.data import dataset_info

    try:
        return dataset_info(name)
    except VAEError:
        return None


def check_training(config: VAEConfig, image_shape: tuple[int, int, int] | None = None,
                   n_images: int | None = None) -> None:
    """Everything a run would allocate, checked before it starts: epochs, batch, data, model."""
    check("epochs", config.epochs, "too many epochs")
    check("batch_size", config.batch_size, "batch too large")
    info = _dataset(config.dataset)
    n = n_images if n_images is not None else info.size if info else None
    if n is not None:
        check("dataset_images", n, f"dataset {config.dataset} too large")
    shape = image_shape or expected_image_shape(config)
    if shape is not None:
        check_model(config, shape, batch_size=config.batch_size, training=True)

"""What a model or a training run would allocate, from its config alone, checked against the limits
(`vae_core.limits`) before anything is allocated.

Model size comes from the config and the image shape alone, the model instantiated on the meta
device (shapes, no storage), so a 2 KB file that asks for two 16,384-wide layers is refused before
a byte of it is allocated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from vae_core.data import dataset_info
from vae_core.errors import VAEError
from vae_core.limits import check
from vae_core.models import build_model

if TYPE_CHECKING:
    from vae_core.config import VAEConfig

FLOAT_BYTES = 4
INFERENCE_BATCH = 512  # the chunk size the latent operations encode and decode in
# a model up to this many parameters, for images up to this many pixels a channel, is measured on a
# real CPU copy (one image: at most a few tens of MB for the largest layer), any other on the meta device
COUNTED_ON_CPU = 10_000_000
COUNTED_ON_CPU_PIXELS = 64 * 64


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
    shape = tuple(int(s) for s in image_shape)
    with torch.device("meta"):
        model = build_model(config, shape)
    parameters = sum(p.numel() for p in model.parameters())
    if parameters <= COUNTED_ON_CPU and math.prod(shape[1:]) <= COUNTED_ON_CPU_PIXELS:
        # a real copy, one image, in milliseconds: on the meta device a convolution runs PyTorch's
        # Python meta kernels, whose first use in a process imports ~900 modules (sympy among them;
        # 0.9 s of a fresh app's first page). The global random state is left as it was.
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            activations = _leaf_outputs(build_model(config, shape).eval(), torch.zeros((1, *shape)))
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

"""Models trained elsewhere, made checkpoints of this library (issue 35): one `Importer` entry per source
in IMPORTERS, each in a file of its own in this package, so a new source is one file and one entry.

An importer reads only weights (`torch.load(weights_only=True)`; ONNX later): nothing of a model's
author runs. It recognises its source by what the file holds (the keys and shapes of a state_dict), maps
the weights onto one of this library's model kinds and says which likelihood the source trained with;
`import_model` then scores the model on the dataset it is explored on (test nELBO in nats, the
likelihood named) and writes a checkpoint every page opens. `python -m vae_core import SRC --dataset
NAME` is the command line's way in.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from vae_core.errors import VAEError
from vae_core.importers import pytorch_examples

MAX_SOURCE_BYTES = 512 * 2**20  # a state_dict larger than this is not one of the models an importer reads


@dataclass(frozen=True)
class Importer:
    description: str
    recognise: Callable[[dict], str | None]  # a state_dict -> None when it is this source's, else why not
    build: Callable[..., tuple]  # (state_dict, dataset's image shape) -> (VAEConfig changes, our state_dict)
    source: str  # what the checkpoint names as where it came from


IMPORTERS: dict[str, Importer] = {
    "pytorch-examples": Importer(pytorch_examples.DESCRIPTION, pytorch_examples.recognise, pytorch_examples.build,
                                 pytorch_examples.SOURCE),
}


def read_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A file's state_dict (names → tensors), read with `weights_only=True`: a pickle of code (a whole
    model object, a class) is refused with one line, as is anything that is not a dict of tensors."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as e:
        raise VAEError(f"cannot read {path.name}: {e.strerror or e}") from None
    if not path.is_file():
        raise VAEError(f"{path.name} is not a file")
    if size > MAX_SOURCE_BYTES:
        raise VAEError(f"{path.name} is {size / 2**20:.0f} MB; an importable state_dict is at most "
                       f"{MAX_SOURCE_BYTES / 2**20:.0f} MB")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch reports a pickle of code, a damaged file, ... in many types
        first = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise VAEError(f"{path.name} is not a file of weights this can read without running its code "
                       f"(torch.load with weights_only=True: {first})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]  # a training script's {"state_dict": ..., "epoch": ...}
    if not isinstance(state, dict) or not state or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise VAEError(f"{path.name} does not hold a state_dict (a dict of names to tensors)")
    return state


def recognised(state: dict[str, torch.Tensor]) -> str:
    """The IMPORTERS entry whose source `state` is; a one-line error saying what each expected when none is."""
    reasons = []
    for name, importer in IMPORTERS.items():
        why = importer.recognise(state)
        if why is None:
            return name
        reasons.append(f"{name}: {why}")
    raise VAEError("not a model this can import (" + "; ".join(reasons) + ")")


def import_model(source: str | os.PathLike, dataset: str, out: str | os.PathLike, *, download: bool = True) -> dict:
    """Read `source`, recognise it, map it onto this library's model, score it on `dataset`'s test split
    and write the checkpoint `out`; returns what was done (the importer, the config, the test metrics)."""
    from vae_core.checkpoint import save_checkpoint
    from vae_core.config import VAEConfig
    from vae_core.data import load_for_config
    from vae_core.evaluate import evaluate
    from vae_core.models import build_model
    from vae_core.streaming import as_tensor

    state = read_weights(source)
    kind = recognised(state)
    config = VAEConfig(dataset=dataset, epochs=1, film_frames=0).with_absolute_paths()
    bundle = load_for_config(config, download=download)
    changes, ours = IMPORTERS[kind].build(state, tuple(bundle.image_shape))
    config = config.replace(**changes, extra={"imported_from": IMPORTERS[kind].source,
                                              "source_file": Path(source).name[:200]})
    config.validate()
    model = build_model(config, tuple(bundle.image_shape))
    model.load_state_dict(ours)
    model.eval()
    test = as_tensor(bundle.images[bundle.test_idx])
    metrics = evaluate(model, test)
    summary = {"test_nelbo": metrics["nelbo"], "test_recon": metrics["recon"], "test_kl": metrics["kl"],
               "kl_per_dim": metrics["kl_per_dim"], "active_units": metrics["active_units"],
               "likelihood": metrics["likelihood"]}
    if not math.isfinite(summary["test_nelbo"]):
        raise VAEError(f"the imported model's test nELBO on {dataset} is not finite: the weights do not fit this data")
    path = save_checkpoint(out, config=config, model=model, history={"steps": [], "epochs": []},
                           data_spec=bundle.spec | {"image_shape": list(bundle.image_shape),
                                                    "n_test": len(bundle.test_idx)},
                           metrics=summary, progress={"status": "imported"})
    return {"importer": kind, "checkpoint": str(path), "config": config.to_dict(), **summary}

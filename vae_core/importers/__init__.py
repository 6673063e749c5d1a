"""Models trained elsewhere, made checkpoints of this library (issue 35): one `Importer` entry per source
in IMPORTERS, each in a file of its own in this package, so a new source is one file and one entry.

An importer reads only weights (`torch.load(weights_only=True)`) and plain JSON: nothing of a model's
author runs. A source is a file (a state_dict) or a folder: an ONNX pair (`encoder.onnx`, `decoder.onnx`,
`manifest.json`) or pythae's `model.pt` + `model_config.json` (a folder holding pickled networks,
`encoder.pkl`/`decoder.pkl`, is refused). An importer recognises
its source by what it holds (the keys and shapes of a state_dict, the folder's config), maps the weights
onto one of this library's model kinds and says which likelihood the source trained with;
`import_model` then scores the model on the dataset it is explored on (test nELBO in nats, the
likelihood named) and writes a checkpoint every page opens. `python -m vae_core import SRC --dataset
NAME` is the command line's way in.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from vae_core.errors import VAEError
from vae_core.importers import onnx_pair, pythae_folder, pytorch_examples

MAX_SOURCE_BYTES = 512 * 2**20  # a state_dict larger than this is not one of the models an importer reads


MAX_CONFIG_BYTES = 1 * 2**20  # a folder's model_config.json
PICKLED_NETWORKS = ("encoder.pkl", "decoder.pkl")  # pythae's custom networks: pickled code, never read


@dataclass(frozen=True)
class Source:
    """What an importer reads: the weights, and the folder's config when the source is a folder."""
    state: dict[str, torch.Tensor]
    meta: dict | None  # model_config.json's or manifest.json's contents (a folder), None for a file of weights
    name: str  # the file's or the folder's name, for messages and the checkpoint
    folder: Path | None = None  # the folder itself (an ONNX pair's graphs are read from it)


@dataclass(frozen=True)
class Importer:
    description: str
    recognise: Callable[[Source], str | None]  # None when the source is this importer's, else why not
    build: Callable[..., tuple]  # (Source, dataset's image shape) -> (VAEConfig changes, our state_dict)
    source: str  # what the checkpoint names as where it came from
    claims: Callable[[Source], bool]  # whether the source has this importer's form (a file, a kind of folder)


def _entry(module) -> Importer:
    return Importer(module.DESCRIPTION, module.recognise, module.build, module.SOURCE, module.claims)


IMPORTERS: dict[str, Importer] = {
    "pytorch-examples": _entry(pytorch_examples),
    "pythae": _entry(pythae_folder),
    "onnx": _entry(onnx_pair),
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
    for key in ("state_dict", "model_state_dict"):  # a training script's {"state_dict": ..., "epoch": ...}, pythae's
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not state or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise VAEError(f"{path.name} does not hold a state_dict (a dict of names to tensors)")
    return state


def _json(folder: Path, name: str) -> dict:
    """A folder's JSON file as a dict (a config, a manifest): one line when it is not."""
    path = folder / name
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise VAEError(f"{folder.name}/{name} is over {MAX_CONFIG_BYTES // 2**20} MB: not a model's config")
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise VAEError(f"cannot read {folder.name}/{name}: {str(e).splitlines()[0][:120]}") from None
    if not isinstance(meta, dict):
        raise VAEError(f"{folder.name}/{name} is not a JSON object")
    return meta


def read_source(path: str | os.PathLike) -> Source:
    """A file of weights, or a folder of them with its config (pythae's `model.pt` + `model_config.json`).
    A folder with pickled networks is refused: reading them would run its author's code."""
    path = Path(path)
    if not path.is_dir():
        return Source(read_weights(path), None, path.name)
    if (path / "manifest.json").is_file():  # an ONNX pair: its graphs are read by its importer
        return Source({}, _json(path, "manifest.json"), path.name, path)
    pickled = [name for name in PICKLED_NETWORKS if (path / name).exists()]
    if pickled:
        raise VAEError(f"{path.name} holds {' and '.join(pickled)}: custom networks saved as pickled code, which "
                       "this never runs; export the model as ONNX, or train it with pythae's default networks")
    if not (path / "model.pt").is_file() or not (path / "model_config.json").is_file():
        raise VAEError(f"{path.name} is a folder without model.pt and model_config.json (a pythae model's folder) "
                       "or manifest.json (an ONNX pair)")
    meta = _json(path, "model_config.json")
    return Source(read_weights(path / "model.pt"), meta, path.name, path)


def recognised(source: Source | dict[str, torch.Tensor]) -> str:
    """The IMPORTERS entry that reads `source` (or a bare state_dict); a one-line error saying what each
    expected when none does."""
    if not isinstance(source, Source):
        source = Source(source, None, "")
    reasons = []
    claiming = {name: i for name, i in IMPORTERS.items() if i.claims(source)} or IMPORTERS
    for name, importer in claiming.items():
        why = importer.recognise(source)
        if why is None:
            return name
        reasons.append(f"{name}: {why}")
    raise VAEError("not a model this can import (" + "; ".join(reasons) + ")")


PUBLIC_KINDS = ("onnx",)  # what a public demo's visitors may import: graphs read as data, nothing pickled
STAGED_NAMES = {"onnx": ("encoder.onnx", "decoder.onnx", "manifest.json"), "pythae": ("model.pt", "model_config.json")}
STATE_DICT_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin")


def stage(files: dict[str, bytes], into: str | os.PathLike, *, public: bool = False) -> Path:
    """Uploaded files (name → bytes) laid out as a source `import_model` reads, in the new folder `into`:
    an ONNX pair's three files, pythae's two, or one file of weights; the path to import. Any other set
    of files is one line saying what each source is made of; in a public demo only an ONNX pair."""
    names = {Path(name).name for name in files}
    if len(names) != len(files):
        raise VAEError("two uploaded files have the same name")
    kind = next((k for k, wanted in STAGED_NAMES.items() if names == set(wanted)), None)
    if kind is None and len(names) == 1 and next(iter(names)).lower().endswith(STATE_DICT_SUFFIXES):
        kind = "state_dict"
    if kind is None or (public and kind not in PUBLIC_KINDS):
        onnx_files = " + ".join(STAGED_NAMES["onnx"])
        raise VAEError(f"upload {onnx_files} together (an ONNX pair)" + ("" if public else (
            ", model.pt + model_config.json (a pythae folder) or one .pth file of weights")) +
            ("; this public demo imports ONNX only" if public else ""))
    folder = Path(into)
    folder.mkdir(parents=True)
    if kind == "state_dict":  # stored under a plain name: the upload's own may be anything
        (data,) = files.values()
        path = folder / f"weights{Path(next(iter(names))).suffix.lower()}"
        path.write_bytes(data)
        return path
    for name, data in files.items():
        (folder / Path(name).name).write_bytes(data)
    return folder


def import_model(source: str | os.PathLike, dataset: str, out: str | os.PathLike, *, download: bool = True) -> dict:
    """Read `source`, recognise it, map it onto this library's model, score it on `dataset`'s test split
    and write the checkpoint `out`; returns what was done (the importer, the config, the test metrics)."""
    from vae_core.checkpoint import save_checkpoint
    from vae_core.config import VAEConfig
    from vae_core.data import load_for_config
    from vae_core.evaluate import evaluate
    from vae_core.models import build_model
    from vae_core.streaming import as_tensor

    read = read_source(source)
    kind = recognised(read)
    config = VAEConfig(dataset=dataset, epochs=1, film_frames=0).with_absolute_paths()
    bundle = load_for_config(config, download=download)
    changes, ours = IMPORTERS[kind].build(read, tuple(bundle.image_shape))
    config = config.replace(**changes, extra={"imported_from": IMPORTERS[kind].source,
                                              "source_file": read.name[:200]})
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

"""Checkpoint files: one file rebuilds its model, and opening one never runs code.

A checkpoint is a plain dict saved with `torch.save` and read back with
`torch.load(weights_only=True)`: format tag and version, the config as a dict, the image shape,
weights, optimizer state, history, data spec, test metrics, progress and library versions.
The model a file describes is checked against the size limits (`vae_core.sizing`) before it is
built. Saves go through a temp file named after the writing process, so temp files left by a killed
process can be told apart from a save in progress and cleaned (`clean_stale_temp_files`).
"""

from __future__ import annotations

import os
import pickle
import pickletools
import platform
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from vae_core.config import VAEConfig
from vae_core.errors import VAEError, first_line
from vae_core.models import VAE, build_model
from vae_core.sizing import check_model

FORMAT = "vae-latent-explorer"
FORMAT_VERSION = 1
ZIP_MAGIC = b"PK\x03\x04"  # torch.save's format is a zip archive
TEMP_SUFFIX = ".tmp"
ORPHAN_AGE_S = 3600  # a temp file without a writer's pid counts as stale after this long


@dataclass
class Checkpoint:
    path: Path
    config: VAEConfig
    model: VAE  # in eval mode
    image_shape: tuple[int, int, int]
    history: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    data_spec: dict = field(default_factory=dict)
    progress: dict = field(default_factory=dict)  # epoch (completed), step
    optimizer_state: dict | None = None
    versions: dict = field(default_factory=dict)


def library_versions() -> dict:
    import vae_core

    return {"vae_core": vae_core.__version__, "torch": str(torch.__version__),
            "python": platform.python_version()}


def save_checkpoint(path: str | os.PathLike, *, config: VAEConfig, model: VAE,
                    optimizer: torch.optim.Optimizer | None = None, history: dict | None = None,
                    data_spec: dict | None = None, metrics: dict | None = None,
                    progress: dict | None = None) -> Path:
    """Write atomically: a temp file beside the target, then a rename, so a crash mid-write
    never damages the file already there."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": config.to_dict(),
        "image_shape": list(model.image_shape),
        "model_state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer_state": None if optimizer is None else optimizer.state_dict(),
        "history": history or {},
        "data_spec": data_spec or {},
        "metrics": metrics or {},
        "progress": progress or {},
        "versions": library_versions(),
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}{TEMP_SUFFIX}")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_payload(path: str | os.PathLike) -> dict:
    """The raw dict of a checkpoint, checked to be ours; a clear `VAEError` otherwise."""
    path = Path(path)
    if not path.exists():
        raise VAEError(f"checkpoint not found: {path}")
    if path.is_dir():
        raise VAEError(f"{path} is a folder, not a checkpoint file")
    if path.stat().st_size == 0:
        raise VAEError(f"{path} is empty (0 bytes): not a checkpoint")
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickle protocols; we say it once
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - an unreadable file can fail in many ways inside torch.load
        raise VAEError(_unreadable(path, e)) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise VAEError(f"{path} is not a VAE Latent Explorer checkpoint")
    if payload.get("format_version", 0) > FORMAT_VERSION:
        raise VAEError(f"{path} was written by a newer version (format {payload['format_version']}); "
                       "upgrade vae_core to open it")
    return payload


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> Checkpoint:
    """Rebuild a model from a checkpoint file alone (its stored config), in eval mode."""
    payload = read_payload(path)
    try:
        config = VAEConfig.from_dict(dict(payload["config"]))
        image_shape = tuple(int(s) for s in payload["image_shape"])
        size = check_model(config, image_shape)  # before anything the file asks for is allocated
        stored = sum(t.numel() for t in payload["model_state"].values())
        if stored != size.parameters:
            raise ValueError(f"its config needs {size.parameters:,} weights, the file holds {stored:,}")
        model = build_model(config, image_shape)
        model.load_state_dict(payload["model_state"])
    except VAEError as e:
        raise VAEError(f"{path}: {e}") from None
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise VAEError(f"{path} does not match the model its config describes ({first_line(e)})") from None
    model.to(device).eval()
    return Checkpoint(
        path=Path(path), config=config, model=model, image_shape=image_shape,
        history=payload.get("history") or {}, metrics=payload.get("metrics") or {},
        data_spec=payload.get("data_spec") or {}, progress=payload.get("progress") or {},
        optimizer_state=payload.get("optimizer_state"), versions=payload.get("versions") or {},
    )



def _is_pickle(path: Path) -> bool:
    """Whether the file parses as one complete pickle stream (parsing runs nothing)."""
    try:
        with open(path, "rb") as f:
            for _ in pickletools.genops(f):
                pass
    except Exception:  # noqa: BLE001 - anything that is not a well-formed pickle
        return False
    return True


def _unreadable(path: Path, error: Exception) -> str:
    """Why `torch.load(weights_only=True)` refused a file, in words that fit what the file is."""
    refused = (f"{path} holds Python objects a checkpoint may not contain; refused "
               "(nothing in it was run)")
    with open(path, "rb") as f:
        head = f.read(len(ZIP_MAGIC))
    if head == ZIP_MAGIC:
        if isinstance(error, pickle.UnpicklingError):
            return refused
        return f"{path} is truncated or corrupt: it starts as a PyTorch archive but cannot be read whole"
    if _is_pickle(path):
        return refused
    return f"{path} is not a readable checkpoint: its bytes are neither a PyTorch archive nor a pickle"


def process_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists but belongs to someone else
        return True
    return True


def clean_stale_temp_files(folder: str | os.PathLike) -> list[Path]:
    """Remove temp files that saves into `folder` left behind when their process died (a
    `kill -9` mid-save). A save in progress, by this or another live process, is left alone."""
    removed = []
    for tmp in Path(folder).glob(f".*.pt.*{TEMP_SUFFIX}"):
        tag = tmp.name[: -len(TEMP_SUFFIX)].rsplit(".", 1)[-1]
        pid = tag.split("-", 1)[0]
        if pid.isdigit() and "-" in tag:
            stale = int(pid) != os.getpid() and not process_alive(int(pid))
        else:  # written before temp names carried the writer's pid
            stale = time.time() - tmp.stat().st_mtime > ORPHAN_AGE_S
        if stale:
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def run_interrupted(progress: dict, *, running_here: bool = False) -> bool:
    """Whether a checkpoint's run died before it ended: saved as "running" by a process that is gone
    (a killed server or CLI), or by this process when no run of it goes on here (`running_here`)."""
    if progress.get("status") != "running":
        return False
    pid = progress.get("pid")
    if not isinstance(pid, int) or not process_alive(pid):
        return True
    return pid == os.getpid() and not running_here

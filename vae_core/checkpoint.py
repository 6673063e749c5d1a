"""Checkpoint files: one file rebuilds its model, and opening one never runs code.

A checkpoint is a plain dict saved with `torch.save` and read back with
`torch.load(weights_only=True)`: format tag and version, the config as a dict, the image shape,
weights, optimizer state, history, data spec, test metrics, progress, library versions and, when
the run recorded one, its film (`vae_core.film`: plain tensors and numbers; None in older files).
The model a file describes is checked against the size limits (`vae_core.sizing`) before it is
built. Saves go through a temp file named after the writing process, so temp files left by a killed
process can be told apart from a save in progress and cleaned (`clean_stale_temp_files`).
"""

from __future__ import annotations

import os
import pickle
import pickletools
import platform
import re
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
    film: dict | None = None  # the run's film as stored (`vae_core.film.film_of` reads it); None: none

    @property
    def latent_dim(self) -> int:
        """The size of z: the model's (the one source; its config says the same)."""
        return self.model.latent_dim


def library_versions() -> dict:
    import vae_core

    return {"vae_core": vae_core.__version__, "torch": str(torch.__version__),
            "python": platform.python_version()}


def save_checkpoint(path: str | os.PathLike, *, config: VAEConfig, model: VAE,
                    optimizer: torch.optim.Optimizer | None = None, history: dict | None = None,
                    data_spec: dict | None = None, metrics: dict | None = None,
                    progress: dict | None = None, film: dict | None = None) -> Path:
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
    if film:
        payload["film"] = film
    tmp = temp_name(path)
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
        film=payload.get("film") or None,
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
    except (ProcessLookupError, OverflowError):  # no such process; no process can have an id that large
        return False
    except OSError:  # it exists but belongs to someone else
        return True
    return True


def temp_name(path: str | os.PathLike) -> Path:
    """The temp file an atomic write of `path` goes through, beside it: `.{name}.{pid}-{8 hex}.tmp`,
    named after the writing process so that `clean_stale_temp_files` can tell a dead writer's leftovers
    from a save in progress."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}{TEMP_SUFFIX}")


# `temp_name`'s names, and the names before they carried the writer's pid (`.{name}.{8 hex}.tmp`,
# which projection caches still use): nothing else in a folder is ever removed
_TEMP_NAME = re.compile(r"\.(?P<target>.+)\.(?P<pid>[0-9]{1,10})-[0-9a-f]{8}" + re.escape(TEMP_SUFFIX))
_OLD_TEMP_NAME = re.compile(r"\.(?P<target>.+)\.[0-9a-f]{8}" + re.escape(TEMP_SUFFIX))
_IMPORTED = time.time()  # before this process could have begun any save of its own
CLOCK_SLACK_S = 5.0  # file times may be coarser than a second and clocks may step a little


def clean_stale_temp_files(folder: str | os.PathLike) -> list[Path]:
    """Remove the temp files that atomic writes into `folder` left behind when their process died
    (a `kill -9` mid-save); the paths removed. Only `temp_name`'s names are touched, and only where
    the writer is gone: a save in progress by a live process is left alone. A temp file named after
    this very process but older than it was left by an earlier process that had the same id (a
    restarted container's server is pid 1 again). Names without a pid (older saves, projection
    caches) go once they are ORPHAN_AGE_S old. A missing folder, and a file another cleaner removed
    first or that cannot be removed, are skipped: this runs at every start and must never fail it."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:  # missing, not a folder, or unreadable
        return removed
    for entry in entries:
        named = _TEMP_NAME.fullmatch(entry.name)
        if not named and not _OLD_TEMP_NAME.fullmatch(entry.name):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            modified = entry.stat(follow_symlinks=False).st_mtime
            if named:
                pid = int(named["pid"])
                if pid == os.getpid():
                    stale = modified < _IMPORTED - CLOCK_SLACK_S
                else:
                    stale = not process_alive(pid)
            else:
                stale = time.time() - modified > ORPHAN_AGE_S
            if stale:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:  # gone already (another cleaner, or the save renamed it), or not ours to remove
            continue
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

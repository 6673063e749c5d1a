"""The checkpoint library: where checkpoints live, how a new one is named, what is there, a
summary of each, and the key of its content that its cached projections and decoder are named by.
Used by the CLI and the app alike.

One setting: `$VAE_CHECKPOINT_DIR`, else `checkpoints/` in the project. One collision scheme: a
descriptive stem (`mnist5k-conv-z16-beta1`), then `-2`, `-3`, … until the name is free.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING

from vae_core.errors import VAEError

if TYPE_CHECKING:
    from vae_core.checkpoint import Checkpoint
    from vae_core.config import VAEConfig

CHECKPOINT_DIR_ENV = "VAE_CHECKPOINT_DIR"
PROJECT_DIR = Path(__file__).resolve().parents[1]


def checkpoint_dir() -> Path:
    """The shared library folder (read at each call, so a test or a server can point it elsewhere)."""
    return Path(os.environ.get(CHECKPOINT_DIR_ENV) or PROJECT_DIR / "checkpoints")


def list_checkpoints(directory: Path | None = None) -> list[Path]:
    """The `.pt` files of a folder (the library by default), by name; hidden files left out."""
    folder = directory or checkpoint_dir()
    return sorted((p for p in folder.glob("*.pt") if not p.name.startswith(".")), key=lambda p: p.name)


def checkpoint_cache_key(path: str | os.PathLike) -> str:
    """A short sha256 (16 hex digits) of a checkpoint file's content, read in 1 MiB chunks, so a
    retrained file never reuses projections cached for its previous content."""
    path = Path(path)
    if not path.is_file():
        raise VAEError(f"checkpoint not found: {path}")
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def projection_cache_key(path: str | os.PathLike, split: str) -> str:
    """The name of a split's cached projections (`projection.project`'s cache_key), from what defines its
    codes: the checkpoint's content and the split ("dc7340501f893993.test" for mnist5k-z2). Not from the codes'
    bytes, which differ in their last bits between machines, so shipped maps are found on every install."""
    if not split.isalnum():
        raise VAEError(f"split must be a name of letters and digits (got {split!r})")
    return f"{checkpoint_cache_key(path)}.{split}"


def unfinished_reason(summary_: dict, *, running_here: bool = False) -> str | None:
    """Why a checkpoint (its `summary`) is not a finished run's, in a few words; None when it is. A
    run still training, interrupted (its process died), stopped before its last epoch, or with no test
    metrics yet (they are written after its first epoch)."""
    from vae_core.checkpoint import run_interrupted

    progress, config = summary_.get("progress") or {}, summary_.get("config") or {}
    epoch, epochs = progress.get("epoch", 0), config.get("epochs")
    where = f" at epoch {epoch} of {epochs}" if epochs else ""
    if summary_.get("metrics", {}).get("test_recon") is None:
        return "no test metrics yet (they are written after a run's first epoch)"
    if run_interrupted(progress, running_here=running_here):
        return f"its run was interrupted{where}"
    if progress.get("status") == "running":
        return f"still training{where}"
    if progress.get("status") == "stopped" and epochs and epoch < epochs:
        return f"its run was stopped{where}"
    return None


RUN_DATA_MAX = 64  # characters of a run's file name taken from its data (a folder's name may be far longer)


def run_stem(config: VAEConfig) -> str:
    """A descriptive file stem for a run: dataset (at most RUN_DATA_MAX characters of it), model, latent
    size, β and a non-constant schedule."""
    if config.dataset.startswith("folder:"):
        data = f"folder-{Path(config.dataset[len('folder:'):]).name or 'images'}"
    else:
        data = config.dataset
    data = re.sub(r"[^A-Za-z0-9]+", "-", data).strip("-")[:RUN_DATA_MAX].rstrip("-") or "data"
    stem = f"{data}-{config.model}-z{config.latent_dim}-beta{config.beta:g}"
    return stem if config.beta_schedule == "constant" else f"{stem}-{config.beta_schedule}"


def free_path(directory: Path, stem: str, taken: Collection[Path] = ()) -> Path:
    """`directory/stem.pt`, or `stem-2.pt`, `stem-3.pt`, …: the first not on disk and not in `taken`."""
    path, n = directory / f"{stem}.pt", 2
    while path.exists() or path in taken:
        path, n = directory / f"{stem}-{n}.pt", n + 1
    return path


def default_out_path(config: VAEConfig, directory: Path | None = None, taken: Collection[Path] = ()) -> Path:
    """Where a new run of `config` is saved unless told otherwise: never over an existing file."""
    return free_path(directory or checkpoint_dir(), run_stem(config), taken)


def summary(ckpt: Checkpoint) -> dict:
    """What a checkpoint holds, as plain JSON-able values: config, data, progress, test metrics
    (nats per example, likelihood named) and a summary of the history."""
    epochs = ckpt.history.get("epochs", [])
    last = epochs[-1] if epochs else {}
    return {
        "checkpoint": str(ckpt.path),
        "config": ckpt.config.to_dict(),
        "likelihood": ckpt.config.likelihood_name,
        "image_shape": list(ckpt.image_shape),
        "data": ckpt.data_spec,
        "progress": ckpt.progress,
        "metrics": {k: v for k, v in ckpt.metrics.items() if k != "test_kl_per_dim"},
        "history": {
            "epochs": len(epochs),
            "last_train_nelbo": last.get("train_nelbo"),
            "last_test_nelbo": last.get("test_nelbo"),
            "best_test_nelbo": min((e["test_nelbo"] for e in epochs), default=None),
            "seconds": sum(e.get("seconds", 0.0) for e in epochs),
        },
        "versions": ckpt.versions,
        "film_frames": len((ckpt.film or {}).get("frames") or ()),  # the run's film (vae_core.film)
    }

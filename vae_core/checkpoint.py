"""Checkpoint files: one file rebuilds its model, and opening one never runs code.

A checkpoint is a plain dict saved with `torch.save` and read back with
`torch.load(weights_only=True)`: format tag and version, the config as a dict, the image shape,
weights, optimizer state, history, data spec, test metrics, progress and library versions.
"""

from __future__ import annotations

import os
import pickle
import platform
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from vae_core.config import VAEConfig
from vae_core.errors import VAEError
from vae_core.models import VAE, build_model

FORMAT = "vae-latent-explorer"
FORMAT_VERSION = 1


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
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
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
    except pickle.UnpicklingError:
        raise VAEError(f"{path} holds Python objects a checkpoint may not contain; refused "
                       "(nothing in it was run)") from None
    except Exception as e:  # noqa: BLE001 - an unreadable file can fail in many ways inside torch.load
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:120]
        raise VAEError(f"{path} is not a readable checkpoint (truncated or corrupt: {reason})") from None
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
        model = build_model(config, image_shape)
        model.load_state_dict(payload["model_state"])
    except VAEError as e:
        raise VAEError(f"{path}: {e}") from None
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:120]
        raise VAEError(f"{path} does not match the model its config describes ({reason})") from None
    model.to(device).eval()
    return Checkpoint(
        path=Path(path), config=config, model=model, image_shape=image_shape,
        history=payload.get("history") or {}, metrics=payload.get("metrics") or {},
        data_spec=payload.get("data_spec") or {}, progress=payload.get("progress") or {},
        optimizer_state=payload.get("optimizer_state"), versions=payload.get("versions") or {},
    )

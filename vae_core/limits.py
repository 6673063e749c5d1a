"""Limits a hosted explorer enforces before anything is allocated: the table and the check.

Each limit has a generous local default, a stricter default in the public-demo mode
(`VAE_EXPLORER_PUBLIC=1`) and an environment variable that overrides both (a number, or `none` for
no limit). Every refusal is one `VAEError` line naming the limit and the variable that changes it.
This module imports nothing of the engine but its error, so the data loaders check image files with it;
what a model or a run would allocate is measured and checked in `vae_core.sizing`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from vae_core.errors import VAEError

PUBLIC_ENV = "VAE_EXPLORER_PUBLIC"


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
    # a run whose every browser tab is closed is saved and stopped after this long (vae_core.hosting)
    "unwatched_minutes": Limit("a run with nobody watching goes on for", "VAE_UNWATCHED_RUN_MINUTES", 10, 5,
                               "minutes"),
    # the local default + 1 MB (a request's framing) is server.maxUploadSize in .streamlit/config.toml,
    # which caps every upload request
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

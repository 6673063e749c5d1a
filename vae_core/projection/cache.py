"""The projections' disk cache: a file per checkpoint content, method and parameters, written
atomically and read only when it matches the codes it is asked for."""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np

from vae_core.errors import VAEError

# ---- disk cache ----------------------------------------------------------------------------------


def _cache_path(cache_dir, cache_key: str | None, method: str, params: dict,
                codes: np.ndarray) -> Path | None:
    if cache_dir is None and cache_key is None:
        return None
    if cache_dir is None or cache_key is None:
        raise VAEError("cache_dir and cache_key must be given together (or neither)")
    if not cache_key or not all(c.isascii() and (c.isalnum() or c in "-_.") for c in cache_key):
        raise VAEError(f"cache_key may only hold letters, digits, '-', '_' and '.' (got {cache_key!r})")
    # what defines the map besides the codes, which cache_key names: never the codes' float bytes, which
    # differ in their last bits between machines and torch builds (a shipped map would never be found)
    spec = {"method": method, **params, "n": codes.shape[0], "d": codes.shape[1]}
    param_hash = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
    return Path(cache_dir) / f"{cache_key}-{method}-{param_hash}.npy"


def methods_on_disk(cache_dir, cache_key: str) -> set[str]:
    """The methods with a projection cached for `cache_key` under `cache_dir` (read from the file
    names `_cache_path` gives: `{cache_key}-{method}-{param_hash}.npy`)."""
    prefix = f"{cache_key}-"
    return {p.name[len(prefix):-len(".npy")].rsplit("-", 1)[0] for p in Path(cache_dir).glob(f"{prefix}*.npy")}


def _load_coords(path: Path, n: int) -> np.ndarray | None:
    """The cached coords (n, 2) float32, or None when the file is missing or not usable."""
    try:
        coords = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if coords.shape != (n, 2) or coords.dtype != np.float32 or not np.isfinite(coords).all():
        return None
    return coords


def _save_coords(path: Path, coords: np.ndarray) -> None:
    """Atomic write (temp file, then rename). A cache that cannot be written only costs a refit
    next time, so it warns instead of failing the projection."""
    from vae_core.checkpoint import temp_name  # the writer's pid in the name: a killed write is cleaned safely

    tmp = temp_name(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            np.save(f, coords, allow_pickle=False)
        os.replace(tmp, path)
    except OSError as e:
        warnings.warn(f"could not write the projection cache {path}: {e}", stacklevel=3)
    finally:
        tmp.unlink(missing_ok=True)

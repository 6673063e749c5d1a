"""Hosting: what a server shared by strangers needs besides the size limits (`vae_core.limits`).

- `safe_upload_stem`: an uploaded file's name made safe to store and show.
- `confine_path`: a folder typed in a browser, kept inside the allowed data roots.
- Scratch folders: one per browser session, for its uploads (and, in the public demo, its runs),
  removed when unused for a while.
- `start_run`: a training run started from a page, within the limits on runs at once and on
  time, in a thread that leaves the server a core and a higher priority.
- `page_thread_setup`: a page's own computations on one intra-op thread, so sessions and a
  training run do not spin against each other.

The CLI is the local user's own tool and uses none of this: it takes any path.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import tempfile
import threading
import time
import unicodedata
import weakref
from pathlib import Path, PureWindowsPath

import torch

from vae_core.data import default_data_root
from vae_core.errors import VAEError
from vae_core.limits import check, limit, public_mode

PROJECT_DIR = Path(__file__).resolve().parents[1]
ROOTS_ENV = "VAE_ALLOWED_DATA_ROOTS"  # os.pathsep-separated folders a browser may read data from
SCRATCH_ENV = "VAE_SCRATCH_DIR"
NAME_MAX = 64  # characters of an uploaded name kept
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")
SCRATCH_MAX_AGE_S = 6 * 3600  # a session folder untouched this long is removed
PAGE_THREADS_ENV = "VAE_PAGE_THREADS"  # intra-op threads of a page's script (default 1)


# --- names


def safe_upload_stem(filename: str) -> str:
    """A stem to store an upload under: no folder parts, ASCII letters, digits, '.', '-' and '_'
    only, not hidden, at most NAME_MAX characters of the original, without repeated checkpoint
    suffixes, and always marked `-upload-xxxx` so it never looks like a shipped or trained name."""
    name = unicodedata.normalize("NFKC", PureWindowsPath(filename).name)  # drops / and \ parts
    while name.lower().endswith(CHECKPOINT_SUFFIXES):
        name = name[: name.rfind(".")]
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", name)
    name = re.sub(r"([._-])[._-]+", r"\1", name).strip("._-")[:NAME_MAX].rstrip("._-")
    return f"{name or 'checkpoint'}-upload-{secrets.token_hex(2)}"


# --- data paths chosen in a browser


def allowed_data_roots() -> list[Path]:
    """Folders a page may read data from: $VAE_ALLOWED_DATA_ROOTS, else the project's data/ folder
    and the data cache (`default_data_root()`)."""
    text = os.environ.get(ROOTS_ENV, "").strip()
    roots = [Path(p).expanduser() for p in text.split(os.pathsep) if p.strip()] if text else [
        PROJECT_DIR / "data", default_data_root()]
    return [r.resolve() for r in roots]


def confine_path(text: str, roots: list[Path] | None = None) -> Path:
    """The folder `text` names, resolved (links followed), if it lies inside an allowed root;
    a relative path is taken inside the first root. The refusal is the same whether or not the
    path exists, so it tells nothing about the server's files."""
    roots = roots if roots is not None else allowed_data_roots()
    text = text.strip()
    if not text:
        raise VAEError("choose a folder")
    try:
        path = Path(text)
        resolved = (path if path.is_absolute() else roots[0] / path).resolve()
    except (OSError, RuntimeError, ValueError):
        resolved = None
    if resolved is not None and any(resolved == r or resolved.is_relative_to(r) for r in roots):
        return resolved
    shown = ", ".join(str(r) for r in roots)
    raise VAEError(f"data folders must be inside {shown}, and {text!r} is not; whoever starts the "
                   f"server can allow others with {ROOTS_ENV}")


def stored_path(text: str) -> str:
    """A data path as a checkpoint stored it, for `confine_path`: a relative one (saved by a run of
    `python -m vae_core` before runs stored their paths absolute, or typed as that command takes it) is
    taken inside the project folder, where that command runs, when it names a folder there that lies
    inside the allowed roots; otherwise as it is (`confine_path` takes it inside the first root)."""
    path = Path(text).expanduser()
    if path.is_absolute():
        return text
    try:
        in_project = (PROJECT_DIR / path).resolve()
        inside = any(in_project == r or in_project.is_relative_to(r) for r in allowed_data_roots())
        return str(in_project) if inside and in_project.is_dir() else text
    except (OSError, RuntimeError, ValueError):
        return text


def confine_config_data(config):
    """`config` with its data paths (a folder dataset, a data root) confined to the allowed roots,
    for a page to load or train on, and a folder's files held to them too (its `extra["data_roots"]`:
    `vae_core.data.load_for_config` skips the files that link outside them); in the public demo only
    the datasets that ship with the install."""
    from vae_core.data import DATASETS, dataset_info

    folder = config.dataset.startswith("folder:")
    if public_mode() and (folder or config.data_root or not dataset_info(config.dataset).offline):
        shipped = ", ".join(n for n, d in DATASETS.items() if d.offline and not n.startswith("folder"))
        raise VAEError(f"the public demo reads no server paths: it uses the datasets that ship with it ({shipped})")
    changes = {}
    if folder:
        changes["dataset"] = f"folder:{confine_path(stored_path(config.dataset[len('folder:'):]))}"
        changes["extra"] = {**config.extra, "data_roots": [str(r) for r in allowed_data_roots()]}
    if config.data_root:
        changes["data_root"] = str(confine_path(stored_path(config.data_root)))
    return config.replace(**changes) if changes else config


# --- per-session scratch folders


def scratch_root() -> Path:
    return Path(os.environ.get(SCRATCH_ENV) or Path(tempfile.gettempdir()) / "vae-latent-explorer")


def session_folder(key: str) -> Path:
    """The scratch folder of the browser session `key` (hex), created, and marked as in use now."""
    if not re.fullmatch(r"[0-9a-f]{8,64}", key):
        raise VAEError(f"a session key is 8 to 64 hex digits (got {key!r})")
    folder = scratch_root() / "sessions" / key
    folder.mkdir(parents=True, exist_ok=True)
    os.utime(folder)
    return folder


def clean_scratch(max_age_s: float = SCRATCH_MAX_AGE_S) -> list[Path]:
    """Remove the session folders nobody used for `max_age_s` seconds."""
    now, removed = time.time(), []
    sessions = scratch_root() / "sessions"
    for folder in sessions.iterdir() if sessions.is_dir() else []:
        if folder.is_dir() and now - folder.stat().st_mtime > max_age_s:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


# --- training runs started from pages


_last_page_run = [float("-inf")]  # time.monotonic() when a page's script (or fragment) last began


def seconds_since_a_page_ran() -> float:
    """Seconds since a page last began running in this process (`page_thread_setup`): infinite before
    the first. Background work that holds the interpreter lock for long waits for a quiet moment."""
    return time.monotonic() - _last_page_run[0]


def page_thread_setup() -> None:
    """For the thread running a page's script (Streamlit starts one per rerun, and the setting is per
    thread): $VAE_PAGE_THREADS intra-op threads, 1 by default. Sessions already run in parallel
    threads and a page's work is small (one image, a grid); with more, OpenMP threads waiting on
    each other beside a training run made one decode cost 90 ms of CPU instead of 1 on a busy 2-core
    machine."""
    _last_page_run[0] = time.monotonic()
    text = os.environ.get(PAGE_THREADS_ENV, "").strip() or "1"
    threads = int(text) if text.isdigit() else 0
    if threads < 1:
        raise VAEError(f"{PAGE_THREADS_ENV} must be a whole number >= 1 (got {text!r})")
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


_runs: list = []  # TrainingJobs started by start_run, alive or not yet pruned
_runs_lock = threading.Lock()
_timed_out: weakref.WeakSet = weakref.WeakSet()


def _stop_at_time_limit(job) -> None:
    if job.alive:
        _timed_out.add(job)
        job.stop()


def start_run(config, out_path: Path, *, resume=None):
    """Start a training run for a page, in a process of its own (`ProcessTrainingJob`: a run's Python
    work never holds the server's interpreter lock): data paths confined, never downloads, refused when the
    server already runs its limit of runs at once, and stopped (saving its checkpoint) at the time
    limit."""
    from vae_core.job import ProcessTrainingJob
    from vae_core.sizing import check_training

    config = confine_config_data(config)
    check_training(config)
    with _runs_lock:
        _runs[:] = [j for j in _runs if j.alive]
        check("concurrent_runs", len(_runs) + 1, "too many training runs at once; try again when one ends")
        job = ProcessTrainingJob(config, out_path, resume=resume, download=False).start()
        _runs.append(job)
    minutes = limit("train_minutes")
    if minutes is not None:
        timer = threading.Timer(minutes * 60, _stop_at_time_limit, args=(job,))
        timer.daemon = True
        timer.start()
    return job


def stopped_at_time_limit(job) -> bool:
    return job in _timed_out


def paths_being_written() -> set[Path]:
    """Checkpoint paths of runs in progress in this process."""
    with _runs_lock:
        return {j.out_path.resolve() for j in _runs if j.alive}

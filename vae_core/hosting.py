"""Hosting: what a server shared by strangers needs besides the size limits (`vae_core.limits`).

- `safe_upload_stem`: an uploaded file's name made safe to store and show.
- `confine_path`: a folder typed in a browser, kept inside the allowed data roots, its length capped;
  a refusal names the roots relative to the project or by their setting, never by their server path.
- Scratch folders: one per browser session, for its uploads (and, in the public demo, its runs),
  removed when unused for a while with what the session made elsewhere (`clean_scratch`).
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
from collections.abc import Callable
from pathlib import Path, PureWindowsPath

import torch

from vae_core.data import default_data_root
from vae_core.errors import VAEError
from vae_core.limits import limit, public_mode

PROJECT_DIR = Path(__file__).resolve().parents[1]
ROOTS_ENV = "VAE_ALLOWED_DATA_ROOTS"  # os.pathsep-separated folders a browser may read data from
SCRATCH_ENV = "VAE_SCRATCH_DIR"
NAME_MAX = 64  # characters of an uploaded name kept
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")
SCRATCH_MAX_AGE_S = 6 * 3600  # a session folder untouched this long is removed
PATH_MAX_CHARS = 1024  # characters of a folder typed in a browser
PART_MAX_BYTES = 255  # bytes of one name in it (what common file systems allow)
SHOWN_MAX = 60  # characters of a user's text repeated in a message
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


def shown_text(text: str, width: int = SHOWN_MAX) -> str:
    """A user's text as a message repeats it: on one line, cut to `width` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def describe_roots(roots: list[Path] | None = None) -> str:
    """The allowed data roots in words, never as server paths: a folder inside the project by its path
    there ("the project's data/ folder"), the data cache by its setting, any other by ROOTS_ENV."""
    roots = roots if roots is not None else allowed_data_roots()
    project, cache = PROJECT_DIR.resolve(), default_data_root().expanduser().resolve()
    names, others = [], 0
    for root in roots:
        if root == project:
            names.append("the project folder")
        elif root.is_relative_to(project):
            names.append(f"the project's {root.relative_to(project).as_posix()}/ folder")
        elif root == cache and not os.environ.get(ROOTS_ENV, "").strip():
            names.append("the data cache (VAE_DATA_ROOT)")
        else:
            others += 1
    if others:
        names.append(f"the folder{'s' if others > 1 else ''} set in {ROOTS_ENV}")
    return " or ".join(dict.fromkeys(names))


def confine_path(text: str, roots: list[Path] | None = None) -> Path:
    """The folder `text` names, resolved (links followed), if it lies inside an allowed root;
    a relative path is taken inside the first root. A path over PATH_MAX_CHARS characters, or with a
    name over PART_MAX_BYTES bytes, is refused before the file system sees it. The refusal is the same
    whether or not the path exists, so it tells nothing about the server's files, and names the roots
    without their server paths (`describe_roots`)."""
    roots = roots if roots is not None else allowed_data_roots()
    text = text.strip()
    if not text:
        raise VAEError("choose a folder")
    if len(text) > PATH_MAX_CHARS:
        raise VAEError(f"a folder path is at most {PATH_MAX_CHARS:,} characters (this one has {len(text):,})")
    for part in re.split(r"[/\\]", text):
        size = len(part.encode("utf-8", "surrogatepass"))
        if size > PART_MAX_BYTES:
            raise VAEError(f"a folder name is at most {PART_MAX_BYTES} bytes ({shown_text(part, 24)!r} has {size:,})")
    try:
        path = Path(text)
        resolved = (path if path.is_absolute() else roots[0] / path).resolve()
    except (OSError, RuntimeError, ValueError):
        resolved = None
    if resolved is not None and any(resolved == r or resolved.is_relative_to(r) for r in roots):
        return resolved
    raise VAEError(f"data folders must be inside {describe_roots(roots)}, and {shown_text(text)!r} is not; "
                   f"whoever starts the server can allow others with {ROOTS_ENV}")


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


def session_of(path: str | Path) -> Path | None:
    """The session folder holding the file `path` (an upload, a run of the session), else None."""
    folder = Path(path).parent
    return folder if folder.parent == scratch_root() / "sessions" else None


def _age_s(path: Path, now: float) -> float:
    try:
        return now - path.stat().st_mtime
    except OSError:  # removed meanwhile
        return 0.0


def clean_scratch(max_age_s: float = SCRATCH_MAX_AGE_S, companions: tuple[Path, ...] = ()) -> list[Path]:
    """Remove the session folders nobody used for `max_age_s` seconds, and with them what their sessions
    made elsewhere: in each of `companions` (say, the folder of decoders exported for sessions' own
    models), the subfolder named after a session folder that is no longer there. Also the public demo's
    shared projection files (`scratch/projections`) not written for `max_age_s`. What it removed."""
    now, removed = time.time(), []
    sessions = scratch_root() / "sessions"
    for folder in sessions.iterdir() if sessions.is_dir() else []:
        if folder.is_dir() and _age_s(folder, now) > max_age_s:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    for companion in companions:
        for folder in companion.iterdir() if companion.is_dir() else []:
            if not (sessions / folder.name).is_dir():
                if folder.is_dir():
                    shutil.rmtree(folder, ignore_errors=True)
                else:
                    folder.unlink(missing_ok=True)
                removed.append(folder)
    shared = scratch_root() / "projections"
    for file in shared.iterdir() if shared.is_dir() else []:
        if file.is_file() and _age_s(file, now) > max_age_s:
            file.unlink(missing_ok=True)
            removed.append(file)
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


_runs: dict[str, object] = {}  # run id → the TrainingJob start_run started, alive or ended not long ago
_runs_lock = threading.Lock()
_timed_out: weakref.WeakSet = weakref.WeakSet()
_unwatched: weakref.WeakSet = weakref.WeakSet()  # runs stopped because nobody watched them
ENDED_KEPT_S = 3600  # an ended run can be found again by its address this long (its result, its replay)


def _stop_at_time_limit(job) -> None:
    if job.alive:
        _timed_out.add(job)
        job.stop()


def _running_runs() -> list:
    """The runs going on now (the lock held); ended runs older than ENDED_KEPT_S are forgotten."""
    now = time.monotonic()
    for run_id, job in list(_runs.items()):
        if not job.alive:
            job.ended_at = getattr(job, "ended_at", None) or now
            if now - job.ended_at > ENDED_KEPT_S:
                del _runs[run_id]
    return [j for j in _runs.values() if j.alive]


def start_run(config, out_path: Path, *, resume=None, watcher: str | None = None):
    """Start a training run for a page, in a process of its own (`ProcessTrainingJob`: a run's Python
    work never holds the server's interpreter lock): data paths confined, never downloads, refused when the
    server already runs its limit of runs at once, and stopped (saving its checkpoint) at the time
    limit. The run gets an id that is hard to guess (`job.run_id`, for the page's address: a reload or
    another tab finds it again with `find_run`); `watcher` is the browser session that started it."""
    from vae_core.job import ProcessTrainingJob
    from vae_core.sizing import check_training

    config = confine_config_data(config)
    check_training(config)
    with _runs_lock:
        going = len(_running_runs())
        cap = limit("concurrent_runs")
        if cap is not None and going >= cap:
            mode = " in the public demo" if public_mode() else ""
            raise VAEError(f"too many training runs at once: {going} going on this server, the limit is {cap:g}{mode} "
                           f"(VAE_MAX_CONCURRENT_RUNS); try again when one ends")
        job = ProcessTrainingJob(config, out_path, resume=resume, download=False)
        job.run_id = secrets.token_urlsafe(12)
        job.watchers, job.last_watched = ({watcher} if watcher else set()), time.monotonic()
        _runs[job.run_id] = job.start()
    minutes = limit("train_minutes")
    if minutes is not None:
        timer = threading.Timer(minutes * 60, _stop_at_time_limit, args=(job,))
        timer.daemon = True
        timer.start()
    return job


def find_run(run_id: str):
    """The run started here under `run_id` (going on, or ended within ENDED_KEPT_S), else None."""
    if not isinstance(run_id, str) or not re.fullmatch(r"[A-Za-z0-9_-]{8,64}", run_id):
        return None
    with _runs_lock:
        _running_runs()
        return _runs.get(run_id)


def watch_run(job, watcher: str) -> None:
    """Browser session `watcher` shows `job` now: it counts as watched, and by `watcher` from now on."""
    with _runs_lock:
        job.watchers = getattr(job, "watchers", set()) | {watcher}
        job.last_watched = time.monotonic()


def stop_unwatched_runs(connected: Callable[[str], bool], now: float | None = None) -> list:
    """Save and stop the runs that nobody watched for the `unwatched_minutes` limit: no browser session
    that started or showed them is `connected`. Returns the runs stopped now."""
    minutes = limit("unwatched_minutes")
    now = time.monotonic() if now is None else now
    stopped = []
    with _runs_lock:
        for job in _running_runs():
            if any(connected(w) for w in getattr(job, "watchers", ())):
                job.last_watched = now
            elif minutes is not None and now - job.last_watched >= minutes * 60 and job not in _unwatched:
                _unwatched.add(job)
                stopped.append(job)
    for job in stopped:
        job.stop()  # saves its checkpoint, as Stop does
    return stopped


def stopped_unwatched(job) -> bool:
    return job in _unwatched


_watcher_started = threading.Event()


def keep_stopping_unwatched_runs(connected: Callable[[str], bool], every_s: float = 30.0) -> None:
    """Once per process: a daemon thread that calls `stop_unwatched_runs(connected)` every `every_s` s
    (the UI passes whether a browser session is still connected; the engine knows no screen)."""
    if _watcher_started.is_set():
        return
    _watcher_started.set()

    def loop() -> None:
        while True:
            time.sleep(every_s)
            try:
                stop_unwatched_runs(connected)
            except Exception:  # noqa: BLE001 - a failed look must not end the watch over later runs
                pass

    threading.Thread(target=loop, name="vae-unwatched-runs", daemon=True).start()


def stopped_at_time_limit(job) -> bool:
    return job in _timed_out


def paths_being_written() -> set[Path]:
    """Checkpoint paths of runs in progress in this process."""
    with _runs_lock:
        return {j.out_path.resolve() for j in _runs.values() if j.alive}

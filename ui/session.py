"""This browser session: the selected checkpoint (or a message and a stop), its own scratch folder
for uploads and runs, the checkpoints it can see, file names claimed by runs it starts, and uploads
held to the upload limit (in the browser, and again on the bytes that arrive)."""

from __future__ import annotations

import functools
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import streamlit as st
import torch

from ui.display import plain
from ui.loaders import checkpoint_summary, get_checkpoint, get_data
from ui.routing import one_line_errors
from vae_core import Checkpoint, DataBundle, VAEError
from vae_core.checkpoint import clean_stale_temp_files, run_interrupted
from vae_core.data import read_image
from vae_core.hosting import clean_scratch, page_thread_setup, paths_being_written, session_folder, shown_text
from vae_core.library import checkpoint_dir, default_out_path
from vae_core.library import list_checkpoints as library_checkpoints
from vae_core.limits import check, limit

SELECTED = "checkpoint_path"  # session key: the path of the selected checkpoint
DEFAULT_MODEL = "mnist5k-conv-z16"  # selected on a first visit when it is there


def page_fragment(body: Callable | None = None, *, run_every: float | None = None):
    """`st.fragment` (as `@page_fragment` or `@page_fragment(run_every=...)`) whose every rerun first
    sets up its thread (`page_thread_setup`): a fragment's rerun runs in a thread of its own; an
    unexpected exception in it is one line (`one_line_errors`), as on the page around it."""
    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def run(*args, **kwargs):
            page_thread_setup()
            with one_line_errors("This part of the page"):
                return fn(*args, **kwargs)
        return st.fragment(run, run_every=run_every)
    return wrap(body) if body is not None else wrap


SLIDERS_START = "sliders_start"  # session key: a code another page hands to the Sliders page


def open_in_sliders(model: tuple, z, origin: str) -> None:
    """Go to the Sliders page, starting from the code z of the model keyed `model`; `origin` says whose
    code it is (a point of the map), for the page to show."""
    st.session_state[SLIDERS_START] = (model, [float(v) for v in z], origin)
    st.switch_page("pages/sliders.py")


def sliders_button(model: tuple, z, origin: str, *, key: str, where=st) -> None:
    """An "Open in Sliders" button (in `where`) that starts the Sliders page from z, the code of `origin`."""
    if where.button("Open in Sliders", key=key,
                    help="Start the Sliders page from this image's code (its posterior mean)"):
        open_in_sliders(model, z, origin)


def sliders_picker(model: tuple, indices, codes, *, name, key: str, split: str = "test") -> None:
    """A picker of `indices` (each shown as `name(i)`) and a button that opens the Sliders at codes[i]."""
    pick, go = st.columns([2, 1], vertical_alignment="bottom")
    i = pick.selectbox("Open one in the Sliders", [int(v) for v in indices], format_func=name, key=key)
    sliders_button(model, codes[i], f"{split} image {name(i)}", key=f"{key}_go", where=go)


def sliders_start(model: tuple) -> tuple[list[float], str] | None:
    """The code another page handed to the Sliders page for this model and whose it is, taken once."""
    handed = st.session_state.pop(SLIDERS_START, None)
    return (handed[1], handed[2]) if handed is not None and handed[0] == model else None


def session_dir() -> Path:
    """This browser session's scratch folder: its uploads, and its runs in the public demo."""
    return session_folder(st.session_state.setdefault("session_key", uuid.uuid4().hex))


def list_checkpoints() -> list[Path]:
    """The shared library, then this session's own uploads and runs."""
    return library_checkpoints() + library_checkpoints(session_dir())


def in_session(path: str | Path) -> bool:
    return Path(path).parent == session_dir()


_claimed: set[Path] = set()  # checkpoint paths of runs started from this server, in any session
_claim_lock = threading.Lock()


def claim_checkpoint_path(config, directory: Path | None = None) -> Path:
    """A new file name for a run under `directory` (checkpoints/): not on disk, and not taken by
    another session's run that has not written its first epoch yet."""
    with _claim_lock:
        path = default_out_path(config, directory, taken=_claimed)
        _claimed.add(path)
        return path


_cleaned: set[str] = set()  # checkpoint folders whose stale temp files this process removed
_scratch_cleaned = [0.0]  # when scratch folders were last cleaned (time.monotonic)


def startup_cleanup(companions: tuple[Path, ...] = ()) -> None:
    """Once per server process: remove temp files that saves killed mid-write left in checkpoints/ and
    its projection cache; every ten minutes: remove scratch folders of sessions unused for SCRATCH_MAX_AGE_S,
    and with each its subfolder of every folder in `companions` (what the session made elsewhere: its
    models' exports for the browser; `vae_core.hosting.clean_scratch`)."""
    with _claim_lock:
        if str(checkpoint_dir()) not in _cleaned and checkpoint_dir().is_dir():
            _cleaned.add(str(checkpoint_dir()))
            for folder in (checkpoint_dir(), checkpoint_dir() / "projections"):
                clean_stale_temp_files(folder)  # a missing folder is skipped
        if time.monotonic() - _scratch_cleaned[0] > 600 or not _scratch_cleaned[0]:
            _scratch_cleaned[0] = time.monotonic()
            clean_scratch(companions=companions)


def current_checkpoint() -> Checkpoint | None:
    path = st.session_state.get(SELECTED)
    if not path or not Path(path).exists():
        return None
    try:
        return get_checkpoint(path)
    except VAEError as e:  # named by its file name, not its server path
        st.error(plain(str(e).replace(str(path), Path(path).name)))
        return None


def require_checkpoint() -> Checkpoint:
    """The selected checkpoint, or a message saying what to do, and the page stops."""
    ckpt = current_checkpoint()
    if ckpt is None:
        st.info("No model selected. Train one on the **Train** page, or open a checkpoint file from the sidebar.")
        st.stop()
    return ckpt


def require_data(ckpt: Checkpoint) -> DataBundle:
    try:
        return get_data(ckpt)
    except VAEError as e:
        st.error(plain(f"This model's data cannot be loaded: {e}"))
        st.stop()


def run_state(path: Path) -> str | None:
    """"training" for a run going on in this server, "interrupted" for one that died, else None."""
    progress = checkpoint_summary(path).get("progress") or {}
    here = path.resolve() in paths_being_written()
    if run_interrupted(progress, running_here=here):
        return "interrupted"
    return "training" if here and progress.get("status") == "running" else None


# --- uploads


IMAGE_TYPES = ["png", "jpg", "jpeg", "bmp", "gif", "webp"]


def upload_limit_mb() -> int:
    """The size of one upload the browser accepts: the upload limit in force (VAE_MAX_UPLOAD_MB), at most
    `server.maxUploadSize` less 1 MB. The server refuses a request whose body (the file and its multipart
    framing) is over `server.maxUploadSize` with a bare 413, which the uploader shows as a raw
    "AxiosError"; a file the uploader lets through must never reach that, so a file over this limit is
    refused in the browser, in one line that says the limit."""
    server = int(st.get_option("server.maxUploadSize")) - 1  # the request's framing: a few hundred bytes
    cap = limit("upload_mb")
    return max(1, server if cap is None else min(server, int(cap)))


def upload_bytes(name: str, data: bytes) -> bytes:
    """`data` if it is within the upload limit (checked again here: a browser's check can be skipped); the
    refusal names the file by at most `shown_text`'s characters of its name."""
    check("upload_mb", round(len(data) / 2**20, 1), f"{shown_text(name)} is too large")
    return data


def uploaded_image(label: str, key: str, image_shape: tuple[int, int, int], background: str) -> torch.Tensor | None:
    """An image file the user uploads, within the upload and pixel limits, as (1, C, H, W) in [0, 1], as a
    model of `image_shape` trained with `background` (`VAEConfig.background`) sees it; None (after a
    message on the page for a refused file) when there is none."""
    upload = st.file_uploader(label, type=IMAGE_TYPES, key=key, max_upload_size=upload_limit_mb(),
                              help=f"at most {upload_limit_mb()} MB")
    if upload is None:
        return None
    try:
        return read_image(upload_bytes(upload.name, upload.getvalue()), image_shape, background)
    except VAEError as e:
        st.error(plain(str(e)))
        return None

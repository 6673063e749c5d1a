"""Streamlit helpers shared by the pages: cached loaders, the sidebar model picker, image display.

Pages stay thin: widgets and layout here and in each page, all computation in vae_core.
"""

from __future__ import annotations

import os
import shutil
import string
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from vae_core import Checkpoint, DataBundle, VAEError, describe_device, load_checkpoint, resolve_device
from vae_core.checkpoint import clean_stale_temp_files, run_interrupted
from vae_core.cli import default_out_path, info_dict
from vae_core.hosting import (
    SCRATCH_MAX_AGE_S,
    clean_scratch,
    confine_config_data,
    paths_being_written,
    safe_upload_stem,
    scratch_root,
    session_folder,
)
from vae_core.images import to_display
from vae_core.latent import encode
from vae_core.limits import check, describe_limits, limit, public_mode
from vae_core.projection import Projection, checkpoint_cache_key, project

# VAE_CHECKPOINT_DIR points the app at another folder (the tests use a temporary one)
CHECKPOINT_DIR = Path(os.environ.get("VAE_CHECKPOINT_DIR") or Path(__file__).resolve().parent.parent / "checkpoints")
SELECTED = "checkpoint_path"
DEFAULT_MODEL = "mnist5k-conv-z16"  # selected on a first visit when it is there


# --- cached loaders (models and data are shared by every browser session: never mutate them)


@st.cache_resource(show_spinner="Loading model…", max_entries=32)
def _load_checkpoint(path: str, mtime: float) -> Checkpoint:
    return load_checkpoint(path)


def get_checkpoint(path: str | Path) -> Checkpoint:
    """The checkpoint at `path`, loaded once per file version (path + modification time)."""
    path = Path(path)
    return _load_checkpoint(str(path), path.stat().st_mtime)


@st.cache_data(show_spinner=False, max_entries=256)
def _summary(path: str, mtime: float) -> dict:
    try:
        return info_dict(load_checkpoint(path))
    except VAEError as e:
        return {"error": str(e)}


def checkpoint_summary(path: Path) -> dict:
    return _summary(str(path), path.stat().st_mtime)


@st.cache_resource(show_spinner="Loading data…", max_entries=4)
def _load_data(dataset: str, data_root: str | None, image_size: int | None, channels: int | None) -> DataBundle:
    from vae_core.data import load_dataset

    return load_dataset(dataset, data_root=data_root, image_size=image_size, channels=channels, download=False)


def get_data(ckpt: Checkpoint) -> DataBundle:
    """The dataset a checkpoint was trained on (never downloads from a page; its data paths must
    lie inside the allowed roots, see `vae_core.hosting.confine_path`)."""
    c = confine_config_data(ckpt.config)
    return _load_data(c.dataset, c.data_root, c.image_size, c.channels)


@st.cache_data(show_spinner="Encoding the data…", max_entries=16)
def _encode(_ckpt: Checkpoint, key: tuple, split: str) -> tuple[np.ndarray, np.ndarray]:
    images = get_data(_ckpt).split(split).images
    mu, logvar = encode(_ckpt.model, images)
    return mu.numpy(), logvar.numpy()


def encoded(ckpt: Checkpoint, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """Posterior means and log-variances (N, D) of a split, computed once per checkpoint file."""
    return _encode(ckpt, model_key(ckpt), split)


def model_key(ckpt: Checkpoint) -> tuple:
    """What identifies a loaded model's file version in cache keys: (path, mtime)."""
    return (str(ckpt.path), ckpt.path.stat().st_mtime)


@st.cache_resource(show_spinner=False, max_entries=32)
def projection(_codes: np.ndarray, key: tuple, split: str, method: str, params: tuple = ()) -> Projection:
    """A 2-D projection of a split's codes; `key` is (checkpoint path, mtime). Computed once, kept in
    memory and on disk under checkpoints/projections (keyed by the checkpoint's content)."""
    cache_key = checkpoint_cache_key(key[0])
    return project(_codes, method, **dict(params), cache_dir=_projection_dir(cache_key), cache_key=cache_key)


def _projection_dir(cache_key: str) -> Path:
    """checkpoints/projections; in the public demo, which writes nothing outside its scratch folder,
    a scratch copy holding this checkpoint's shipped projections."""
    shared = CHECKPOINT_DIR / "projections"
    if not public_mode():
        return shared
    scratch = scratch_root() / "projections"
    scratch.mkdir(parents=True, exist_ok=True)
    for f in shared.glob(f"{cache_key}-*.npy"):
        if not (scratch / f.name).exists():
            shutil.copyfile(f, scratch / f.name)
    return scratch


_claimed: set[Path] = set()  # checkpoint paths of runs started from this server, in any session
_claim_lock = threading.Lock()


def claim_checkpoint_path(config, directory: Path | None = None) -> Path:
    """A new file name for a run under `directory` (checkpoints/): not on disk, and not taken by
    another session's run that has not written its first epoch yet."""
    directory = directory or CHECKPOINT_DIR
    with _claim_lock:
        path = default_out_path(config, directory)
        n = 2
        while path in _claimed or path.exists():
            path = path.with_name(f"{default_out_path(config, directory).stem}-s{n}.pt")
            n += 1
        _claimed.add(path)
        return path


@st.cache_data(show_spinner=False, max_entries=64)
def _cached_methods(path: str, mtime: float) -> set[str]:
    key = checkpoint_cache_key(path)
    return {p.name[len(key) + 1 :].split("-")[0] for p in (CHECKPOINT_DIR / "projections").glob(f"{key}-*.npy")}


def cached_methods(ckpt: Checkpoint) -> set[str]:
    """Projection methods with a result on disk for this checkpoint (shipped models have pca, umap)."""
    return _cached_methods(*model_key(ckpt))


# --- hosting: plain text, this session's scratch folder, clean-up at start


def plain(text: str) -> str:
    """`text` on one line with every ASCII punctuation character escaped, so st.caption, st.success
    or st.markdown show a user's text as typed: no Markdown, links, images, HTML or math."""
    return "".join("\\" + c if c in string.punctuation else c for c in " ".join(str(text).split()))


def session_dir() -> Path:
    """This browser session's scratch folder: its uploads, and its runs in the public demo."""
    return session_folder(st.session_state.setdefault("session_key", uuid.uuid4().hex))


_cleaned: set[str] = set()  # checkpoint folders whose stale temp files this process removed
_scratch_cleaned = [0.0]  # when scratch folders were last cleaned (time.monotonic)


def startup_cleanup() -> None:
    """Once per server process: remove temp files that saves killed mid-write left in checkpoints/;
    every ten minutes: remove scratch folders of sessions unused for SCRATCH_MAX_AGE_S."""
    with _claim_lock:
        if str(CHECKPOINT_DIR) not in _cleaned and CHECKPOINT_DIR.is_dir():
            _cleaned.add(str(CHECKPOINT_DIR))
            clean_stale_temp_files(CHECKPOINT_DIR)
        if time.monotonic() - _scratch_cleaned[0] > 600 or not _scratch_cleaned[0]:
            _scratch_cleaned[0] = time.monotonic()
            clean_scratch()


# --- the sidebar


def list_checkpoints() -> list[Path]:
    """The shared library (checkpoints/), then this session's own uploads and runs."""
    shared = sorted(CHECKPOINT_DIR.glob("*.pt"), key=lambda p: p.name)
    return shared + sorted(session_dir().glob("*.pt"), key=lambda p: p.name)


def in_session(path: str | Path) -> bool:
    return Path(path).parent == session_dir()


def run_state(path: Path) -> str | None:
    """"training" for a run going on in this server, "interrupted" for one that died, else None."""
    progress = checkpoint_summary(path).get("progress") or {}
    here = path.resolve() in paths_being_written()
    if run_interrupted(progress, running_here=here):
        return "interrupted"
    return "training" if here and progress.get("status") == "running" else None


def _label(path: str) -> str:
    """A picker entry's text; it never changes while the entry exists (a selectbox matches the
    choice by its text), so a run's state goes in the caption below instead."""
    return f"{Path(path).stem} (this session only)" if in_session(path) else Path(path).stem


def _details(path: Path) -> str:
    s = checkpoint_summary(path)
    if "error" in s:
        return "unreadable: " + s["error"]
    c = s["config"]
    nelbo = s["history"]["last_test_nelbo"]
    score = f" · test nELBO {nelbo:.1f} nats" if nelbo is not None else ""
    return f"{c['dataset']} · {c['model']} · z={c['latent_dim']} · β={c['beta']:g}{score}"


def _state_note(path: Path) -> None:
    state = run_state(path)
    if state == "interrupted":
        s = checkpoint_summary(path)
        st.warning(f"Interrupted: the server stopped during epoch {s['progress'].get('epoch', 0) + 1} of "
                   f"{s['config']['epochs']}. Resume it on the Train page.")
    elif state == "training":
        st.caption("Training now: the file grows after every epoch.")


def limits_panel() -> None:
    """Every limit in force and how to change it, as plain text."""
    with st.expander("Public demo: limits" if public_mode() else "Limits on this server"):
        st.text("\n".join(describe_limits()))
        st.caption("Whoever starts the server sets these with the environment variables named.")


def sidebar() -> None:
    """Model picker, device and checkpoint upload; shared by every page."""
    startup_cleanup()
    files = list_checkpoints()
    with st.sidebar:
        if files:
            names = [str(p) for p in files]
            current = st.session_state.get(SELECTED)
            preferred = str(CHECKPOINT_DIR / f"{DEFAULT_MODEL}.pt")
            first = current if current in names else preferred if preferred in names else names[0]
            choice = st.selectbox(
                "Model", names, index=names.index(first), format_func=_label,
                help="The shared library, then what you uploaded or trained in this session (only you see those)",
            )
            st.session_state[SELECTED] = choice
            st.caption(plain(_details(Path(choice))))
            _state_note(Path(choice))
            if in_session(choice) and not public_mode():
                st.button("Save to the shared library", on_click=_save_to_library, args=(choice,),
                          help="Copy it into checkpoints/, where every visitor sees it")
        else:
            st.session_state.pop(SELECTED, None)
            st.caption("No checkpoints yet: train one on the Train page.")
        st.caption(f"Device: {describe_device(resolve_device('auto'))}")
        _upload_box()
        if public_mode():
            limits_panel()


def _upload_box() -> None:
    hours = SCRATCH_MAX_AGE_S / 3600
    with st.expander("Open a checkpoint file"):
        st.file_uploader(
            "Checkpoint (.pt)", type=["pt", "pth", "ckpt"], key="upload", on_change=_on_upload,
            help=f"Only this browser session sees it (removed after {hours:g} h unused); "
            f"at most {limit('upload_mb') or 'any number of'} MB",
        )
        if msg := st.session_state.get("upload_message"):
            (st.error if msg[0] == "error" else st.success)(plain(msg[1]))


def _on_upload() -> None:
    """Runs before the rerun that shows it, so the picker and its caption already name the upload."""
    upload = st.session_state.get("upload")
    if upload is not None:
        try:
            path = _accept_upload(upload.name, upload.getvalue())
        except VAEError as e:
            st.session_state["upload_message"] = ("error", str(e))
            return
        st.session_state[SELECTED] = str(path)
        shown = upload.name if len(upload.name) <= 80 else upload.name[:79] + "…"
        st.session_state["upload_message"] = ("ok", f"Opened {shown} as {path.stem} (only this session sees it)")


def _accept_upload(name: str, data: bytes) -> Path:
    """Check an uploaded file's size and open it safely (weights_only) before it joins this
    session's folder under a safe name; the path it got."""
    check("upload_mb", round(len(data) / 2**20, 1), f"{name} is too large")
    folder = session_dir()
    incoming = folder / f".incoming-{uuid.uuid4().hex[:8]}.pt"
    incoming.write_bytes(data)
    try:
        load_checkpoint(incoming)
    except VAEError as e:
        incoming.unlink(missing_ok=True)
        raise VAEError(str(e).replace(str(incoming), name)) from None
    return incoming.rename(folder / f"{safe_upload_stem(name)}.pt")


def _save_to_library(path: str) -> None:
    """Copy a session's checkpoint into the shared library without overwriting anything there."""
    source = Path(path)
    target, n = CHECKPOINT_DIR / source.name, 2
    while target.exists():
        target, n = CHECKPOINT_DIR / f"{source.stem}-{n}.pt", n + 1
    CHECKPOINT_DIR.mkdir(exist_ok=True)
    tmp = CHECKPOINT_DIR / f".{target.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)
    st.session_state[SELECTED] = str(target)
    st.session_state["upload_message"] = ("ok", f"Saved {target.stem} to the shared library: every visitor sees it")


def current_checkpoint() -> Checkpoint | None:
    path = st.session_state.get(SELECTED)
    if not path or not Path(path).exists():
        return None
    try:
        return get_checkpoint(path)
    except VAEError as e:
        st.error(plain(str(e)))
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


def page_header(title: str, caption: str | None = None) -> None:
    """Every page starts here: through the router (see pages/router.py), then its title."""
    from pages.router import ensure_router

    ensure_router()
    st.header(title)
    if caption:
        st.caption(caption)


# --- images


def show_grid(
    images: torch.Tensor, *, per_row: int = 8, captions: list[str] | None = None, width: int | None = None
) -> None:
    """Images (N, C, H, W) in [0, 1], upscaled (nearest neighbour) so small ones are visible."""
    arrays = list(to_display(images))
    width = width or max(72, min(160, 900 // per_row))
    for start in range(0, len(arrays), per_row):
        cols = st.columns(per_row)
        for i, col in enumerate(cols):
            if start + i < len(arrays):
                cap = captions[start + i] if captions else None
                col.image(arrays[start + i], caption=cap, width=width)

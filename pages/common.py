"""Streamlit helpers shared by the pages: cached loaders, the sidebar model picker, image display.

Pages stay thin: widgets and layout here and in each page, all computation in vae_core.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import uuid
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from vae_core import Checkpoint, DataBundle, VAEError, describe_device, load_checkpoint, resolve_device
from vae_core.cli import default_out_path, info_dict
from vae_core.images import to_display
from vae_core.latent import encode
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
    """The dataset a checkpoint was trained on (never downloads from a page)."""
    c = ckpt.config
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
    return project(
        _codes, method, **dict(params), cache_dir=CHECKPOINT_DIR / "projections", cache_key=checkpoint_cache_key(key[0])
    )


_claimed: set[Path] = set()  # checkpoint paths of runs started from this server, in any session
_claim_lock = threading.Lock()


def claim_checkpoint_path(config) -> Path:
    """A new file name under checkpoints/ for a run: not on disk, and not taken by another session's
    run that has not written its first epoch yet."""
    with _claim_lock:
        path = default_out_path(config, CHECKPOINT_DIR)
        n = 2
        while path in _claimed or path.exists():
            path = path.with_name(f"{default_out_path(config, CHECKPOINT_DIR).stem}-s{n}.pt")
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


# --- the sidebar


def list_checkpoints() -> list[Path]:
    return sorted(CHECKPOINT_DIR.glob("*.pt"), key=lambda p: p.name)


def _details(path: Path) -> str:
    s = checkpoint_summary(path)
    if "error" in s:
        return "unreadable: " + s["error"]
    c = s["config"]
    nelbo = s["history"]["last_test_nelbo"]
    score = f" · test nELBO {nelbo:.1f} nats" if nelbo is not None else ""
    return f"{c['dataset']} · {c['model']} · z={c['latent_dim']} · β={c['beta']:g}{score}"


def sidebar() -> None:
    """Model picker, device and checkpoint upload; shared by every page."""
    files = list_checkpoints()
    with st.sidebar:
        if files:
            names = [str(p) for p in files]
            current = st.session_state.get(SELECTED)
            preferred = str(CHECKPOINT_DIR / f"{DEFAULT_MODEL}.pt")
            first = current if current in names else preferred if preferred in names else names[0]
            index = names.index(first)
            choice = st.selectbox(
                "Model", names, index=index, format_func=lambda p: Path(p).stem, help=f"Checkpoints in {CHECKPOINT_DIR}"
            )
            st.session_state[SELECTED] = choice
            st.caption(_details(Path(choice)))
        else:
            st.session_state.pop(SELECTED, None)
            st.caption("No checkpoints yet: train one on the Train page.")
        st.caption(f"Device: {describe_device(resolve_device('auto'))}")
        with st.expander("Open a checkpoint file"):
            upload = st.file_uploader("Checkpoint (.pt)", type=["pt", "pth", "ckpt"], key="upload")
            if upload is not None and st.session_state.get("uploaded_id") != upload.file_id:
                st.session_state["uploaded_id"] = upload.file_id
                _accept_upload(upload)
            if msg := st.session_state.get("upload_message"):
                (st.error if msg[0] == "error" else st.success)(msg[1])


def _accept_upload(upload) -> None:
    """Validate an uploaded file safely (weights_only) before it joins checkpoints/; never
    overwrite a file already there."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp) / "upload.pt"
        tmp_path.write_bytes(upload.getvalue())
        try:
            load_checkpoint(tmp_path)
        except VAEError as e:
            st.session_state["upload_message"] = ("error", str(e).replace(str(tmp_path), upload.name))
            return
        stem = Path(upload.name).stem or "uploaded"
        target = CHECKPOINT_DIR / f"{stem}.pt"
        if target.exists():
            target = CHECKPOINT_DIR / f"{stem}-{uuid.uuid4().hex[:6]}.pt"
        CHECKPOINT_DIR.mkdir(exist_ok=True)
        shutil.copyfile(tmp_path, target)
    st.session_state[SELECTED] = str(target)
    st.session_state["upload_message"] = ("ok", f"Opened {upload.name} as {target.name}")


def current_checkpoint() -> Checkpoint | None:
    path = st.session_state.get(SELECTED)
    if not path or not Path(path).exists():
        return None
    try:
        return get_checkpoint(path)
    except VAEError as e:
        st.error(str(e))
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
        st.error(f"This model's data cannot be loaded: {e}")
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

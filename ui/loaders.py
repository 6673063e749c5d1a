"""Every cached loader of the app, with its key spelled out: checkpoints and their summaries (by
path and modification time), datasets (by their config), encodings and projections (by the model's
file version and the split), and the slower results pages ask for (anomaly scores, MIG, probes).
Projections of large maps run as background jobs (`projection_job`), shared by every session.

Models and data are shared by every browser session: never mutate what these return.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np
import streamlit as st

from vae_core import Checkpoint, DataBundle, VAEError, load_checkpoint
from vae_core.hosting import confine_config_data, scratch_root, session_of
from vae_core.latent import encode
from vae_core.library import checkpoint_dir, projection_cache_key, summary
from vae_core.limits import public_mode
from vae_core.projection import Projection, ProjectionJob, methods_on_disk, project


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
        return summary(_load_checkpoint(path, mtime))  # the page's own cache: the file is read once
    except VAEError as e:
        return {"error": str(e)}


def checkpoint_summary(path: Path) -> dict:
    return _summary(str(path), path.stat().st_mtime)


@st.cache_resource(show_spinner="Loading data…", max_entries=4)
def _load_data(dataset: str, data_root: str | None, image_size: int | None, channels: int | None,
               background: str, roots: tuple[str, ...] | None) -> DataBundle:
    from vae_core.data import load_dataset

    return load_dataset(dataset, data_root=data_root, image_size=image_size, channels=channels, download=False,
                        background=background, roots=roots)


def get_data(ckpt: Checkpoint) -> DataBundle:
    """The dataset a checkpoint was trained on, as its model sees it (size, channels, background); never
    downloads from a page; its data paths, and a folder's files, must lie inside the allowed roots (see
    `vae_core.hosting.confine_config_data`)."""
    c = confine_config_data(ckpt.config)
    roots = c.extra.get("data_roots")
    return _load_data(c.dataset, c.data_root, c.image_size, c.channels, c.background,
                      None if roots is None else tuple(roots))


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
    memory and on disk under checkpoints/projections (keyed by the checkpoint's content and the split)."""
    cache_key = projection_cache_key(key[0], split)
    return project(_codes, method, **dict(params), cache_dir=_projection_dir(cache_key, key[0]), cache_key=cache_key)


_jobs: dict[tuple, ProjectionJob] = {}  # background projections of large maps, by what they compute
_jobs_lock = threading.Lock()
MAX_JOBS = 8  # finished jobs kept (their projections) before the oldest is dropped


def projection_job(codes: np.ndarray, key: tuple, split: str, method: str, params: tuple = ()) -> ProjectionJob:
    """The background projection (`ProjectionJob`) of a split's codes, started on the first ask and
    shared by every session; one that was cancelled is started again. Its result lands in the same
    disk cache as `projection`'s, so a later visit reads it at once."""
    ident = (key, split, method, params)
    with _jobs_lock:
        job = _jobs.get(ident)
        if job is None or job.status().cancelled:
            cache_key = projection_cache_key(key[0], split)
            job = ProjectionJob(codes, method, cache_dir=_projection_dir(cache_key, key[0]), cache_key=cache_key,
                                **dict(params))
            _jobs.pop(ident, None)
            _jobs[ident] = job.start()
            finished = [k for k, j in _jobs.items() if j.status().done]
            for old in finished[: max(0, len(_jobs) - MAX_JOBS)]:
                del _jobs[old]
        return job


def _projection_dir(cache_key: str, path: str) -> Path:
    """Where the projections of the checkpoint at `path` are kept on disk: a session's own model's in its
    session's scratch folder, removed with it; the library's in checkpoints/projections, or in the public
    demo, which writes nothing outside its scratch folder, in the scratch's shared projections folder
    (holding copies of this checkpoint's shipped projections), whose files `clean_scratch` removes when
    they were written SCRATCH_MAX_AGE_S ago."""
    session = session_of(path)
    if session is not None:
        folder = session / "projections"
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    shared = checkpoint_dir() / "projections"
    if not public_mode():
        return shared
    scratch = scratch_root() / "projections"
    scratch.mkdir(parents=True, exist_ok=True)
    for f in shared.glob(f"{cache_key}-*.npy"):
        if not (scratch / f.name).exists():
            shutil.copyfile(f, scratch / f.name)
    return scratch


@st.cache_data(show_spinner=False, max_entries=64)
def _cached_methods(path: str, mtime: float, split: str) -> set[str]:
    return methods_on_disk(checkpoint_dir() / "projections", projection_cache_key(path, split))


def cached_methods(ckpt: Checkpoint, split: str = "test") -> set[str]:
    """Projection methods with a result on disk for a split of this checkpoint (shipped models have pca
    and umap of their test split)."""
    return _cached_methods(*model_key(ckpt), split)


# --- slower results a page asks for, keyed by the model's file version (`model_key`) and their settings


@st.cache_data(show_spinner="Scoring the images…", max_entries=32)
def _scores(_ckpt: Checkpoint, key: tuple, split: str, score: str, k: int) -> np.ndarray:
    from vae_core.anomaly import checkpoint_scores

    return checkpoint_scores(_ckpt, get_data(_ckpt).split(split).images, score, k=k)


def anomaly_scores(ckpt: Checkpoint, split: str = "test", score: str = "nelbo", k: int = 1) -> np.ndarray:
    """One anomaly score per image of a split (nats, the model's likelihood), computed once."""
    return _scores(ckpt, model_key(ckpt), split, score, k)


@st.cache_data(show_spinner="Computing MIG…", max_entries=32)
def _mig(_ckpt: Checkpoint, key: tuple) -> float:
    from vae_core.metrics import checkpoint_mig

    return checkpoint_mig(_ckpt.model, get_data(_ckpt))["mig"]


def mig(ckpt: Checkpoint) -> float:
    """The mutual information gap of a model on its dataset's ground-truth factors (sprites)."""
    return _mig(ckpt, model_key(ckpt))


@st.cache_data(show_spinner="Training the classifiers…", max_entries=32)
def _probe(_ckpt: Checkpoint, key: tuple, counts: tuple, repeats: int) -> dict:
    from vae_core.metrics import probe as run_probe

    return run_probe(_ckpt.model, get_data(_ckpt), label_counts=counts, repeats=repeats)


def probe(ckpt: Checkpoint, counts: tuple, repeats: int) -> dict:
    """Logistic-regression accuracy from few labels: latent means, pixels and PCA."""
    return _probe(ckpt, model_key(ckpt), tuple(sorted(counts)), repeats)


@st.cache_data(show_spinner="Examining the model…", max_entries=16)
def _checkup(_ckpt: Checkpoint, key: tuple) -> dict:
    from vae_core.checkup import checkup as run_checkup

    return run_checkup(_ckpt.model, get_data(_ckpt))


def checkup(ckpt: Checkpoint) -> dict:
    """The model's check-up (vae_core.checkup): figures, the aggregate posterior, the mistakes looked for."""
    return _checkup(ckpt, model_key(ckpt))


# --- inspecting a split: neighbours, attribute directions, per-pixel anomaly maps


@st.cache_resource(show_spinner=False, max_entries=8)
def _latent_index(_ckpt: Checkpoint, key: tuple, split: str):
    from vae_core.inspection import LatentIndex

    return LatentIndex(*encoded(_ckpt, split))


def latent_index(ckpt: Checkpoint, split: str = "test"):
    """The exact nearest-neighbour index (`vae_core.inspection.LatentIndex`) of a split's codes, built once."""
    return _latent_index(ckpt, model_key(ckpt), split)


@st.cache_data(show_spinner="Finding attribute directions…", max_entries=16)
def _directions(_ckpt: Checkpoint, key: tuple, split: str) -> list:
    from vae_core.inspection import attribute_directions

    bundle = get_data(_ckpt)
    rows = bundle.split(split)
    return attribute_directions(encoded(_ckpt, split)[0], labels=None if rows.labels is None else rows.labels.numpy(),
                                class_names=bundle.class_names,
                                factors=None if rows.factors is None else rows.factors.numpy(),
                                factor_names=bundle.factor_names, factor_values=bundle.factor_values)


def directions(ckpt: Checkpoint, split: str = "train") -> list:
    """Named attribute directions (`vae_core.inspection.Direction`) from a split's labels and factors."""
    return _directions(ckpt, model_key(ckpt), split)


@st.cache_data(show_spinner="Mapping the reconstruction cost…", max_entries=32)
def _pixel_maps(_ckpt: Checkpoint, key: tuple, split: str, indices: tuple) -> np.ndarray:
    import torch

    from vae_core.anomaly import checkpoint_pixel_maps

    images = get_data(_ckpt).split(split).images[torch.as_tensor(indices, dtype=torch.long)]
    return checkpoint_pixel_maps(_ckpt, images).numpy()


def pixel_maps(ckpt: Checkpoint, split: str, indices) -> np.ndarray:
    """−log p(x|z) per pixel (len(indices), C, H, W), nats, of some images of a split (the one objective's map)."""
    return _pixel_maps(ckpt, model_key(ckpt), split, tuple(int(i) for i in indices))


# --- a run's film (vae_core.film), keyed by the checkpoint's file version


@st.cache_data(show_spinner="Preparing the replay…", max_entries=8)
def _replay(path: str, mtime: float):
    from ui.film_figures import replay_figure
    from vae_core.film import film_of, plane_frames

    ckpt = _load_checkpoint(path, mtime)
    film = film_of(ckpt.film)
    if film is None or not film.frames:
        return None
    return replay_figure(film, plane_frames(film.frames), ckpt.history, ckpt.latent_dim)


def film_replay(ckpt: Checkpoint):
    """The replay figure of a checkpoint's film (`ui.film_figures.replay_figure`), made once per file version;
    None when it has no film. A film that cannot be read is a VAEError."""
    if not ckpt.film:
        return None
    return _replay(*model_key(ckpt))


@st.cache_data(show_spinner="Making the GIF…", max_entries=4)
def _film_gif(path: str, mtime: float, size: str) -> bytes:
    from vae_core.film import film_gif, film_of

    return film_gif(film_of(_load_checkpoint(path, mtime).film), size=size)


def film_gif_bytes(ckpt: Checkpoint, size: str = "web") -> bytes:
    """A checkpoint's film as an animated GIF (`vae_core.film.film_gif`'s `size`: "web" or
    "presentation"), made once per file version and size."""
    return _film_gif(*model_key(ckpt), size)


@st.cache_resource(show_spinner="Scoring the folder…", max_entries=4)
def _folder_scores(_ckpt: Checkpoint, key: tuple, folder: str, listing: tuple, score: str, k: int,
                   roots: tuple[str, ...]):
    from vae_core.anomaly import score_folder

    return score_folder(_ckpt, folder, score, k=k, roots=roots)


def folder_scores(ckpt: Checkpoint, folder: Path, score: str, k: int = 1):
    """(the folder's DataBundle, its scores): every image of an allowed folder (its files inside the allowed
    roots too: one that links out of them is skipped, and counted) scored once per model, folder content (its
    files' names, sizes, times and where they lead) and score."""
    from vae_core.hosting import allowed_data_roots

    listing = tuple(sorted((str(p), str(p.resolve()), s.st_size, s.st_mtime) for p in folder.rglob("*")
                           if p.is_file() and (s := p.stat())))
    roots = tuple(str(r) for r in allowed_data_roots())
    return _folder_scores(ckpt, model_key(ckpt), str(folder), listing, score, k, roots)

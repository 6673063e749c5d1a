"""Shared fixtures: small real data and a tiny trained checkpoint, made once per test session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

from vae_core import VAEConfig, load_dataset
from vae_core.film import FilmBudget
from vae_core.train import Trainer


def pytest_xdist_auto_num_workers(config) -> int:
    """`-n auto` (pyproject's addopts): a worker per core, at most 8 (each file's servers and child
    processes stay in its worker). Three workers on 2 cores were no faster and slowed child processes'
    start past the tests' waits."""
    return max(1, min(os.cpu_count() or 1, 8))


# The files that take longest (minutes: browsers, servers, child processes), measured with --durations:
# collected first, so the workers start on them and the short files fill in at the end (the longest
# first is what keeps the last worker from finishing long after the others). Any other file keeps its place.
LONGEST_FIRST = ("test_browser.py", "test_benchmarks.py", "test_browser_run.py", "test_browser_film.py",
                 "test_run_life.py", "test_train.py", "test_cli.py", "test_app.py", "test_hosting.py",
                 "test_shipped.py", "test_browser_hostile.py", "test_public.py", "test_distributed.py")


def pytest_collection_modifyitems(config, items) -> None:
    rank = {name: k for k, name in enumerate(LONGEST_FIRST)}
    order = {id(item): k for k, item in enumerate(items)}
    items.sort(key=lambda item: (rank.get(item.path.name, len(rank)), order[id(item)]))


@pytest.fixture(scope="session")
def mnist5k():
    return load_dataset("mnist5k")


@pytest.fixture(scope="session")
def digits():
    return load_dataset("digits")


def tiny_config(**changes) -> VAEConfig:
    """A small MLP on scikit-learn's 8x8 digits: trains in well under a second on a CPU."""
    base = dict(dataset="digits", model="mlp", latent_dim=4, hidden_sizes=(32,), epochs=2,
                batch_size=64, device="cpu", seed=0)
    return VAEConfig(**{**base, **changes})


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, digits):
    """A 2-epoch digits model saved to disk (shared: tests must not modify the file)."""
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    Trainer(tiny_config(), bundle=digits, out_path=path).fit()
    return path


@pytest.fixture(autouse=True)
def _unexpected_errors_raise(monkeypatch):
    """A page's unexpected exception reaches AppTest as an exception (ui/routing.py's VAE_DEBUG_ERRORS), not
    as the one line a visitor sees, so a test notices a broken page (tests of that line unset it)."""
    monkeypatch.setenv("VAE_DEBUG_ERRORS", "1")


@pytest.fixture
def rng():
    return torch.Generator().manual_seed(0)


# --- the app under AppTest (tests/test_app*.py)


def _train(path: Path, bundle, latent_dim: int) -> Path:
    cfg = VAEConfig(dataset="mnist5k", model="mlp", latent_dim=latent_dim, hidden_sizes=(64,), epochs=1,
                    device="cpu", seed=0)
    trainer = Trainer(cfg, bundle=bundle, out_path=path)
    trainer.film_budget = FilmBudget(None)  # every frame the film plans, whatever the machine's load
    trainer.fit()
    return path


@pytest.fixture(scope="session")
def models(tmp_path_factory, mnist5k) -> dict[str, Path]:
    """Two 1-epoch MLPs on mnist5k: z=4 and z=2 (the map's latent-plane mode)."""
    folder = tmp_path_factory.mktemp("models")
    return {"z4": _train(folder / "mnist5k-mlp-z4.pt", mnist5k, 4),
            "z2": _train(folder / "mnist5k-mlp-z2.pt", mnist5k, 2)}


@pytest.fixture
def checkpoint_dir(tmp_path, monkeypatch) -> Path:
    """An empty checkpoint folder the app reads instead of the repository's checkpoints/."""
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    monkeypatch.setenv("VAE_CHECKPOINT_DIR", str(folder))
    monkeypatch.setenv("VAE_SCRATCH_DIR", str(tmp_path / "scratch"))  # per-session uploads and runs
    return folder


@pytest.fixture
def default_limits(monkeypatch):
    """The local default limits, whatever the environment running the tests says (not public mode)."""
    from vae_core.limits import LIMITS

    for spec in LIMITS.values():
        monkeypatch.delenv(spec.env, raising=False)
    monkeypatch.delenv("VAE_EXPLORER_PUBLIC", raising=False)


DECODERS = Path(__file__).resolve().parents[1] / "ui" / "static" / "decoders"


@pytest.fixture(scope="session", autouse=True)
def _decoders_left_as_found():
    """The app exports each checkpoint's decoder once into ui/static/decoders/ (a cache it serves);
    the tests' throwaway checkpoints would leave one file each there (and the map's sprite sheets, .png with
    their .json): remove what the session added."""
    kinds = ("*.onnx", "*.png", "*.json", "sessions/*")  # (a session's own models export into sessions/<key>/)
    before = {p for kind in kinds for p in DECODERS.glob(kind)} if DECODERS.exists() else set()
    yield
    for path in {p for kind in kinds for p in DECODERS.glob(kind)} - before if DECODERS.exists() else ():
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)

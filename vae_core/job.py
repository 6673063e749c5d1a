"""A training run in a background thread for a UI: `TrainingJob` starts a `Trainer` there (data
loading included, so `start` returns at once), takes pause / resume / stop / set β from any thread,
and follows the run through the trainer's callbacks, keeping its own copy of the curves and making
each epoch's preview (the test reconstructions the trainer's health checks made, and samples from
the prior, decoded here); `snapshot()` hands a UI a consistent `JobSnapshot` to draw. Every failure
ends as status `failed` with a one-line message.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from vae_core.checkpoint import Checkpoint
from vae_core.config import VAEConfig
from vae_core.data import DataBundle
from vae_core.errors import VAEError
from vae_core.hosting import background_thread_setup
from vae_core.latent import decode
from vae_core.train import Trainer


@dataclass
class JobSnapshot:
    """A consistent copy of a job's state for a UI to draw; safe to keep and read anywhere."""

    status: str  # starting, running, paused, stopped, finished, failed
    message: str
    epoch: int
    epochs: int
    step: int
    total_steps: int
    beta: float
    elapsed_s: float
    eta_s: float | None
    images_per_s: float | None
    history: dict = field(default_factory=dict)
    preview: dict = field(default_factory=dict)
    checkpoint_path: str | None = None
    data_line: str = ""  # how the data is loaded: resident, or streamed over the memory budget

    @property
    def fraction(self) -> float:
        return min(1.0, self.step / self.total_steps) if self.total_steps else 0.0

    @property
    def done(self) -> bool:
        return self.status in ("stopped", "finished", "failed")


PRIOR_SAMPLES = 16


def prior_samples(trainer: Trainer) -> torch.Tensor:
    """The epoch's preview of the prior: decoder means of the same seeded z every epoch."""
    z = torch.randn(PRIOR_SAMPLES, trainer.model.latent_dim,
                    generator=torch.Generator().manual_seed(trainer.config.seed))
    return decode(trainer.model, z)


class TrainingJob:
    """One training run in a daemon thread. Data loading happens in the thread too, so `start`
    returns at once; every failure ends as status `failed` with a one-line message."""

    def __init__(self, config: VAEConfig, out_path: str | Path, *, bundle: DataBundle | None = None,
                 resume: Checkpoint | None = None, download: bool = True):
        self.config = config
        self.out_path = Path(out_path)
        self._bundle, self._resume, self._download = bundle, resume, download
        self.trainer: Trainer | None = None
        self._status, self._message = "starting", ""
        self._started = time.perf_counter()
        self._thread = threading.Thread(target=self._run, name="vae-training", daemon=True)
        self._pending_beta: float | None = None
        self._stop_requested = False
        self._lock = threading.Lock()  # guards the copy below, written by the training thread
        self._history: dict = {"steps": [], "epochs": []}
        self._preview: dict = {}
        self._epoch = self._step = self._steps_per_epoch = 0
        self._beta = config.beta
        self._data_line = ""

    def start(self) -> TrainingJob:
        self._started = time.perf_counter()
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            background_thread_setup()
            self.trainer = Trainer(self.config, bundle=self._bundle, out_path=self.out_path,
                                   resume=self._resume, download=self._download)
            self._follow(self.trainer)
            if self._pending_beta is not None:
                self.trainer.set_beta(self._pending_beta)
            if self._stop_requested:
                self.trainer.stop()
            self._bundle = None  # the trainer holds what it needs
            self.trainer.fit()
            self._status, self._message = self.trainer.status, self.trainer.message
        except VAEError as e:
            self._status, self._message = "failed", str(e)
        except Exception as e:  # noqa: BLE001 - a UI must see why its run ended, not a dead thread
            self._status, self._message = "failed", f"{type(e).__name__}: {e}"

    def _follow(self, trainer: Trainer) -> None:
        """Keep this job's own copy of the run through the trainer's callbacks (they run in the
        training thread), so a snapshot never reads the trainer's internals."""
        with self._lock:
            self._history = {k: list(v) for k, v in trainer.history.items()}  # a resumed run's past

        def on_step(_, record: dict) -> None:
            with self._lock:
                self._history["steps"].append(record)
                self._step = record["step"]

        def on_epoch_end(t: Trainer, record: dict) -> None:
            preview = {**t.health_images, "samples": prior_samples(t)}  # in the training thread
            with self._lock:
                self._history["epochs"].append(record)
                self._epoch, self._preview = record["epoch"], preview

        trainer.add_callback("on_step", on_step)
        trainer.add_callback("on_epoch_end", on_epoch_end)
        with self._lock:
            self._epoch, self._step, self._beta = trainer.epoch, trainer.step, trainer.beta
            self._steps_per_epoch = trainer.steps_per_epoch
            self._data_line = trainer.bundle.spec.get("loading_line", "")

    def pause(self) -> None:
        if self.trainer:
            self.trainer.pause()

    def resume(self) -> None:
        if self.trainer:
            self.trainer.resume()

    def stop(self) -> None:
        self._stop_requested = True
        if self.trainer:
            self.trainer.stop()

    def set_beta(self, beta: float) -> None:
        """The schedule's target β from now on (the snapshot shows it at once)."""
        if not beta >= 0:
            raise VAEError(f"beta must be >= 0 (got {beta})")
        with self._lock:
            self._beta = float(beta)
        if self.trainer:
            self.trainer.set_beta(beta)
        else:
            self._pending_beta = float(beta)

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def snapshot(self) -> JobSnapshot:
        t = self.trainer
        elapsed = time.perf_counter() - self._started
        if t is None:
            return JobSnapshot(self._status, self._message, 0, self.config.epochs, 0, 0,
                               self.config.beta, elapsed, None, None)
        with self._lock:
            history = {k: list(v) for k, v in self._history.items()}
            preview, epoch, step, beta = dict(self._preview), self._epoch, self._step, self._beta
            total = self._steps_per_epoch * self.config.epochs
        status = self._status if not self.alive else ("paused" if t.paused else t.status)
        recent = history["steps"][-5:]
        speed = sum(r["images_per_s"] for r in recent) / len(recent) if recent else None
        left = max(0, total - step)
        eta = left * self.config.batch_size / speed if speed else None
        return JobSnapshot(status, self._message or t.message, epoch, self.config.epochs, step,
                           total, beta, elapsed, eta, speed, history, preview,
                           str(self.out_path) if self.out_path.exists() else None, self._data_line)

"""A training run in the background for a UI: `TrainingJob` starts a `Trainer` in a thread (data
loading included, so `start` returns at once), `ProcessTrainingJob` in a child process of its own
(what the app uses: its Python work never holds the server's interpreter lock, and its data and
model live in the child's memory). Both take pause / resume / stop / set β from any thread and
follow the run through the trainer's callbacks, keeping their own copy of the curves, each
epoch's preview (the test reconstructions the trainer's health checks made, and samples from the
prior) and the film's latest frame (`vae_core.film`); `snapshot()` hands a UI a consistent
`JobSnapshot` to draw. While paused, `advance` runs a step (or `advance_epoch` the epoch) and pauses
again; `set_delay` is slow motion. Every failure ends as status
`failed` with a one-line message.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import threading
import time
import weakref
from dataclasses import dataclass, field
from functools import partialmethod
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from vae_core.checkpoint import Checkpoint, load_checkpoint
from vae_core.commands import COMMANDS, checked
from vae_core.device import background_process_setup, background_thread_setup
from vae_core.errors import VAEError
from vae_core.latent import decode
from vae_core.objectives import OBJECTIVE_SPECS
from vae_core.train import Trainer

if TYPE_CHECKING:
    from vae_core.config import VAEConfig
    from vae_core.data import DataBundle


@dataclass
class JobSnapshot:
    """A consistent copy of a job's state for a UI to draw; safe to keep and read anywhere."""

    status: str  # one of STATES
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
    frame: dict | None = None  # the film's latest frame (`vae_core.film`; tensors on the CPU), if any
    frames_recorded: int = 0  # frames the film has recorded so far
    delay_s: float = 0.0  # slow motion: the pause after each step

    @property
    def fraction(self) -> float:
        return min(1.0, self.step / self.total_steps) if self.total_steps else 0.0

    @property
    def done(self) -> bool:
        return self.status in ENDED

    @property
    def moving(self) -> bool:
        """Whether steps are being taken now (a rate and an ETA mean something)."""
        return self.status in ("running", "stepping")


# Every state a run can be in, and the controls that act in it (a UI offers exactly these):
# starting: the process imports and loads its data (a pause, β or slow motion given now applies from
# the first step); stepping: one step or one epoch asked for while paused, then paused again; stopping:
# asked to stop, saving its checkpoint.
RUN_CONTROLS: dict[str, tuple[str, ...]] = {
    "starting": ("pause", "stop", "beta", "delay"),
    "running": ("pause", "stop", "beta", "delay"),
    "paused": ("resume", "step", "epoch", "stop", "beta", "delay"),
    "stepping": ("pause", "stop", "beta", "delay"),
    "stopping": (),
    "stopped": (),
    "finished": (),
    "failed": (),
}
STATES = tuple(RUN_CONTROLS)
ENDED = ("stopped", "finished", "failed")


def live_beta_note(config: VAEConfig) -> str | None:
    """Why β cannot be changed while `config`'s run goes on; None when it can."""
    if not OBJECTIVE_SPECS[config.objective].uses_beta:
        return (f"the {config.objective} objective weighs |KL − C| by γ = {config.gamma:g} and does not use β, so "
                "a live β would change nothing")
    return None


def enabled_controls(status: str, config: VAEConfig) -> frozenset[str]:
    """The controls that act on a run of `config` in state `status` (RUN_CONTROLS, less a β its schedule
    ignores)."""
    names = set(RUN_CONTROLS.get(status, ()))
    if live_beta_note(config):
        names.discard("beta")
    return frozenset(names)


PRIOR_SAMPLES = 16


def prior_samples(trainer: Trainer) -> torch.Tensor:
    """The epoch's preview of the prior: decoder means of the same seeded z every epoch."""
    z = torch.randn(PRIOR_SAMPLES, trainer.model.latent_dim,
                    generator=torch.Generator().manual_seed(trainer.config.seed))
    return decode(trainer.model, z)


def shown_frame(trainer: Trainer, frame: dict) -> dict:
    """A film's frame as a job hands it to a UI: with the film's labels, their names and the reconstructed
    originals."""
    return {**frame, "labels": trainer.film.labels, "class_names": list(trainer.film.class_names),
            "originals": trainer.film.originals}


def _ready_state(trainer: Trainer) -> dict:
    """What a job copies from a trainer before its first step (plain values: it may go to a parent)."""
    return {"history": trainer.history, "epoch": trainer.epoch, "step": trainer.step, "beta": trainer.beta,
            "steps_per_epoch": trainer.steps_per_epoch, "data_line": trainer.bundle.spec.get("loading_line", "")}


def _preview(trainer: Trainer) -> dict:
    """The epoch's preview: the health check's test images and reconstructions, and prior samples."""
    return {**trainer.health_images, "samples": prior_samples(trainer)}


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
        self._pending: list[tuple[str, tuple]] = []  # commands given before the trainer exists, in order
        self._stop_requested = False
        self._paused = False  # as asked: the state a UI shows at once, before the run has acted on it
        self._stepping = False  # one step or one epoch asked for while paused, not yet taken
        self._lock = threading.Lock()  # guards the copy below, written by the training thread
        self._history: dict = {"steps": [], "epochs": []}
        self._preview: dict = {}
        self._frame: dict | None = None
        self._frames_recorded = 0
        self._delay_s = 0.0
        self._epoch = self._step = self._steps_per_epoch = 0
        self._beta = config.beta
        self._beta_given = False
        self._data_line = ""

    def start(self) -> TrainingJob:
        self._started = time.perf_counter()
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            background_thread_setup()
            trainer = Trainer(self.config, bundle=self._bundle, out_path=self.out_path,
                              resume=self._resume, download=self._download)
            self._follow(trainer)
            with self._lock:  # the commands given while it loaded, then the trainer takes them directly
                for name, args in self._pending:
                    getattr(trainer, name)(*args)
                self._pending.clear()
                self.trainer = trainer
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
        self._took_ready(_ready_state(trainer))
        trainer.add_callback("on_step", lambda t, record: self._took_step(record, t.paused))
        trainer.add_callback("on_frame", lambda t, frame: self._took_frame(shown_frame(t, frame)))
        trainer.add_callback("on_epoch_end", lambda t, record: self._took_epoch(record, _preview(t)))

    # the copy a snapshot reads, as the run reports it (from the training thread, or a child's messages)
    def _took_ready(self, state: dict) -> None:
        with self._lock:
            self._history = {k: list(v) for k, v in state["history"].items()}  # a resumed run's past
            self._epoch, self._step = state["epoch"], state["step"]
            if not self._beta_given:  # a β given while it started applies from its first step
                self._beta = state["beta"]
            self._steps_per_epoch, self._data_line = state["steps_per_epoch"], state["data_line"]

    def _took_step(self, record: dict, paused: bool = False) -> None:
        with self._lock:
            self._history["steps"].append(record)
            self._step = record["step"]
            if paused:  # a step budget's last step (or a pause) was taken: paused again
                self._stepping = False

    def _took_frame(self, frame: dict) -> None:
        with self._lock:
            self._frame, self._frames_recorded = frame, frame["index"] + 1

    def _took_epoch(self, record: dict, preview: dict) -> None:
        with self._lock:
            self._history["epochs"].append(record)
            self._epoch, self._preview = record["epoch"], preview

    # --- the run's commands (vae_core.commands: each checked there, once), given to the trainer (or the
    # child) by name, or kept in order until it exists; the state a snapshot shows changes at once
    def _command(self, name: str, *args) -> None:
        """Give the trainer command `name`; before it exists, keep it to give in order when it does."""
        with self._lock:
            if self.trainer is None:
                self._pending.append((name, args))
                return
        getattr(self.trainer, name)(*args)

    def command(self, name: str, *args) -> None:
        """Command `name` of vae_core.commands with its arguments: checked, shown in the next snapshot,
        and given to the run. One that only acts while paused (one step, one epoch) does nothing while
        the run goes on."""
        args = checked(name, *args)
        with self._lock:
            if COMMANDS[name].while_paused and not self._paused:
                return
            if name in ("pause", "resume"):
                self._paused, self._stepping = name == "pause", False
            elif COMMANDS[name].while_paused:
                self._stepping = True
            elif name == "stop":
                self._stop_requested = True
            elif name == "set_delay":
                (self._delay_s,) = args
            elif name == "set_beta":
                self._beta, self._beta_given = args[0], True
        self._command(name, *args)

    pause = partialmethod(command, "pause")
    resume = partialmethod(command, "resume")
    stop = partialmethod(command, "stop")
    advance = partialmethod(command, "advance")  # (steps=1): while paused, that many steps, then paused
    advance_epoch = partialmethod(command, "advance_epoch")  # while paused: to the epoch's end, then paused
    set_delay = partialmethod(command, "set_delay")  # (seconds): slow motion, 0 for full speed
    set_beta = partialmethod(command, "set_beta")  # (beta): the schedule's target from now on

    def _live_status(self, ready: bool) -> str:
        """The state of a run that is still going: what was last asked wins until the run has done it."""
        if self._stop_requested:
            return "stopping"
        if self._paused:
            return "stepping" if self._stepping else "paused"
        return "running" if ready else "starting"

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def snapshot(self) -> JobSnapshot:
        t = self.trainer
        elapsed = time.perf_counter() - self._started
        alive = self.alive
        with self._lock:
            status = self._live_status(t is not None) if alive else self._status
            if t is None:
                return JobSnapshot(status, self._message, 0, self.config.epochs, 0, 0, self._beta, elapsed, None,
                                   None, delay_s=self._delay_s)
            history = {k: list(v) for k, v in self._history.items()}
            preview, epoch, step, beta = dict(self._preview), self._epoch, self._step, self._beta
            total = self._steps_per_epoch * self.config.epochs
        return self._snapshot_of(status, self._message or t.message, elapsed, history, preview, epoch, step, beta,
                                 total)

    def _snapshot_of(self, status: str, message: str, elapsed: float, history: dict, preview: dict, epoch: int,
                     step: int, beta: float, total: int) -> JobSnapshot:
        recent = history["steps"][-5:]
        moving = status in ("running", "stepping")  # paused, starting or ended: no rate, no ETA
        speed = sum(r["images_per_s"] for r in recent) / len(recent) if recent and moving else None
        left = max(0, total - step)
        eta = left * self.config.batch_size / speed if speed and status == "running" else None
        with self._lock:
            frame, recorded = self._frame, self._frames_recorded
        return JobSnapshot(status, message, epoch, self.config.epochs, step, total, beta, elapsed, eta, speed,
                           history, preview, str(self.out_path) if self.out_path.exists() else None,
                           self._data_line, frame, recorded, self._delay_s)


# --- the same run in a child process


def _train_in_child(config: VAEConfig, out_path: str, resume_path: str | None, download: bool, conn) -> None:
    """The child's side: a Trainer whose callbacks go to the parent through `conn` as
    ("ready", state), ("step", record), ("frame", frame), ("epoch", record, preview) and, last,
    ("end", status, message) (tensors as numpy arrays); a thread applies the parent's commands
    (pause, resume, stop, set_beta, advance, advance_epoch, set_delay). When the parent is gone
    (the server was killed) the child ends at once, as the server's thread would have: the run
    shows as interrupted, with its last epoch's checkpoint."""
    lock = threading.Lock()

    def send(*message) -> None:
        try:
            with lock:
                conn.send(message)
        except (OSError, EOFError):
            os._exit(1)  # the parent is gone: end now, as its thread would have

    try:
        background_process_setup()
        resume = load_checkpoint(resume_path) if resume_path else None
        trainer = Trainer(config, out_path=out_path, resume=resume, download=download)
        send("ready", _ready_state(trainer))
        trainer.add_callback("on_step", lambda t, record: send("step", record, t.paused))
        trainer.add_callback("on_frame", lambda t, frame: send("frame", {
            k: v.numpy() if isinstance(v, torch.Tensor) else v for k, v in shown_frame(t, frame).items()}))
        # the preview as numpy arrays: a tensor would go through torch's shared-memory pickling, which
        # needs this process alive until the parent has read it (not so for the last epoch's)
        trainer.add_callback("on_epoch_end", lambda t, record: send(
            "epoch", record, {k: v.detach().cpu().numpy() for k, v in _preview(t).items()}))

        def command() -> bool:
            """Apply the parent's next command; False for its "go" (it has seen "ready")."""
            try:
                name, args = conn.recv()
            except (EOFError, OSError):
                os._exit(1)  # the parent is gone
            if name == GO:
                return False
            try:
                getattr(trainer, name)(*checked(name, *args))  # only the commands' names, checked again
            except VAEError:  # a value out of range (the parent checks first): ignored, the run goes on
                pass
            return True

        # every command given while the run showed "starting" (a pause pressed at once) comes before
        # the parent's "go": applied before the first step, as the thread-run job applies its pending ones
        while command():
            pass

        def listen() -> None:
            while True:
                command()

        threading.Thread(target=listen, name="vae-training-commands", daemon=True).start()
        trainer.fit()
        send("end", trainer.status, trainer.message)
    except VAEError as e:
        send("end", "failed", str(e))
    except Exception as e:  # noqa: BLE001 - the parent must see why the run ended
        send("end", "failed", f"{type(e).__name__}: {e}")
    finally:
        conn.close()


_children: weakref.WeakSet = weakref.WeakSet()  # ProcessTrainingJobs' processes
AUTHKEY_ENV = "VAE_TRAINING_AUTHKEY"  # the child's key to its parent's listener (not on its command line)
GO = "go"  # the parent's word that it has seen the child's "ready": the child's first step may follow


@atexit.register
def _end_children() -> None:
    """A server that exits ends its runs, as it ended their threads."""
    for process in list(_children):
        if process.poll() is None:
            process.terminate()


def child_main() -> None:
    """The child's entry (`python -c "from vae_core.job import child_main; child_main()" ADDRESS`):
    connect to the parent, take the run it sends, train. Started this way, not by multiprocessing's
    spawn, which would run the parent's main module again in the child (a server's, a script's)."""
    from multiprocessing.connection import Client

    conn = Client(sys.argv[1], authkey=bytes.fromhex(os.environ.pop(AUTHKEY_ENV)))
    _train_in_child(*conn.recv(), conn)


class ProcessTrainingJob(TrainingJob):
    """`TrainingJob`'s run in a child process of its own, a fresh interpreter. The parent keeps the
    copy a snapshot reads, filled by a thread reading the child's messages; commands given before
    the child has connected wait for it."""

    def __init__(self, config: VAEConfig, out_path: str | Path, *, resume: Checkpoint | None = None,
                 download: bool = True):
        super().__init__(config, out_path, download=download)
        if resume is not None and resume.path is None:
            raise VAEError("a run in a child process resumes from a checkpoint file")
        self._run_args = (config, str(self.out_path), str(resume.path) if resume is not None else None, download)
        self._conn = None
        self._process: subprocess.Popen | None = None
        self._thread = threading.Thread(target=self._read, name="vae-training-reader", daemon=True)
        self._ready = False

    def start(self) -> ProcessTrainingJob:
        from multiprocessing.connection import Listener

        self._started = time.perf_counter()
        key = os.urandom(32)
        self._listener = Listener(authkey=key)  # a private socket (a file under the temp folder on Linux)
        root = str(Path(__file__).resolve().parents[1])
        env = {**os.environ, AUTHKEY_ENV: key.hex(),
               "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
        self._process = subprocess.Popen(
            [sys.executable, "-c", "from vae_core.job import child_main; child_main()", str(self._listener.address)],
            env=env, stdin=subprocess.DEVNULL)
        _children.add(self._process)
        self._thread.start()
        return self

    def _connect(self) -> bool:
        """Wait for the child to connect (it imports torch first) and send it the run; False when it
        ended before connecting."""
        accepted: list = []
        waiter = threading.Thread(target=lambda: accepted.append(self._listener.accept()), daemon=True)
        waiter.start()
        while waiter.is_alive() and self._process.poll() is None:
            waiter.join(0.1)
        waiter.join(1.0)
        self._listener.close()
        if not accepted:
            return False
        with self._lock:
            self._conn = accepted[0]
            self._conn.send(self._run_args)
            for command in self._pending:
                self._conn.send(command)
            self._pending.clear()
        return True

    def _read(self) -> None:
        connected = self._connect()
        while connected:
            try:
                kind, *rest = self._conn.recv()
            except Exception:  # noqa: BLE001 - closed, or a message it cannot read: the run's end is judged below
                break
            if kind == "ready":
                self._took_ready(rest[0])
                with self._lock:
                    self._ready, self._status = True, "running"
                    self._conn.send((GO, ()))  # after every command given while it showed "starting"
            elif kind == "step":
                self._took_step(*rest)
            elif kind == "frame":
                self._took_frame({k: torch.from_numpy(v) if hasattr(v, "dtype") and hasattr(v, "shape") else v
                                  for k, v in rest[0].items()})
            elif kind == "epoch":
                self._took_epoch(rest[0], {k: torch.from_numpy(v) for k, v in rest[1].items()})
            elif kind == "end":
                with self._lock:
                    self._status, self._message = rest
                break
        code = self._process.wait()
        if self._conn is not None:
            self._conn.close()
        if self._status in ("starting", "running"):
            self._status = "failed"
            self._message = f"the training process ended unexpectedly (exit code {code})"

    def _command(self, name: str, *args) -> None:
        with self._lock:
            if self._conn is None:
                self._pending.append((name, args))
                return
            try:
                self._conn.send((name, args))
            except (OSError, ValueError):  # the run has ended
                pass

    def snapshot(self) -> JobSnapshot:
        elapsed = time.perf_counter() - self._started
        alive = self.alive
        with self._lock:
            going = alive and self._status in ("starting", "running")
            status = self._live_status(self._ready) if going else self._status
            if not self._ready:
                return JobSnapshot(status, self._message, 0, self.config.epochs, 0, 0, self._beta, elapsed, None,
                                   None, delay_s=self._delay_s)
            history = {k: list(v) for k, v in self._history.items()}
            preview, epoch, step, beta = dict(self._preview), self._epoch, self._step, self._beta
            total = self._steps_per_epoch * self.config.epochs
            message = self._message
        return self._snapshot_of(status, message, elapsed, history, preview, epoch, step, beta, total)

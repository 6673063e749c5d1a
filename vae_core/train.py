"""Training: a `Trainer` that reports through callbacks (`on_step`, `on_epoch_end`, `on_end`).
A run in a background thread for a UI is `vae_core.job.TrainingJob`.
"""

from __future__ import annotations

import copy
import io
import math
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import torch

from vae_core import graphs
from vae_core.checkpoint import Checkpoint, save_checkpoint
from vae_core.commands import checked
from vae_core.config import VAEConfig
from vae_core.data import DataBundle, load_for_config
from vae_core.device import flush_subnormals, resolve_device
from vae_core.distributed import SINGLE, Group
from vae_core.errors import VAEError
from vae_core.evaluate import binarize_fixed, evaluate
from vae_core.film import Film, FilmBudget, film_of, frame_points
from vae_core.health import epoch_warnings
from vae_core.latent import reconstruct
from vae_core.losses import training_loss
from vae_core.models import build_model
from vae_core.optim import make_adam
from vae_core.schedules import kl_weight, learning_rate
from vae_core.sizing import check_training
from vae_core.streaming import BUDGET_ENV, LazyImages, as_tensor, streamed

EVENTS = ("on_step", "on_frame", "on_epoch_end", "on_end")
RANK_SEED = 7919  # offsets each rank's noise generator
POINTS_PER_EPOCH = 20  # training-curve points logged per epoch
HEALTH_IMAGES = 8  # test images reconstructed each epoch for the health checks
VAL_SEED = 0  # the validation part of the train split is the same for every run seed


def validation_split(train_idx: torch.Tensor, fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(training, validation) indices, each sorted: a seeded `fraction` of `train_idx` is held out for
    validation (early stopping, choosing settings) so that the test split is never used to choose."""
    n_val = round(len(train_idx) * fraction)
    if n_val == 0:
        return train_idx, train_idx[:0]
    if n_val >= len(train_idx):
        raise VAEError(f"val_fraction {fraction} leaves no training images out of {len(train_idx)}")
    perm = torch.randperm(len(train_idx), generator=torch.Generator().manual_seed(VAL_SEED))
    return train_idx[perm[n_val:]].sort().values, train_idx[perm[:n_val]].sort().values


def shift_images(x: torch.Tensor, max_shift: int, g: torch.Generator) -> torch.Tensor:
    """Augmentation: each image of x (N, C, H, W) moved by its own random whole number of pixels in
    [-max_shift, max_shift] along each axis, drawn from `g`; what moves in is zeros."""
    n, _, h, w = x.shape
    dy, dx = torch.randint(-max_shift, max_shift + 1, (2, n, 1), generator=g, device=x.device)
    padded = torch.nn.functional.pad(x, (max_shift,) * 4)  # (N, C, H + 2s, W + 2s)
    rows = max_shift - dy + torch.arange(h, device=x.device)  # (N, H): out[y] = x[y - dy]
    cols = max_shift - dx + torch.arange(w, device=x.device)  # (N, W)
    picked = padded[torch.arange(n, device=x.device)[:, None, None], :, rows[:, :, None], cols[:, None, :]]
    return picked.permute(0, 3, 1, 2).contiguous()  # (N, H, W, C) -> (N, C, H, W)


class TrainingFailed(VAEError):
    """Training stopped because the loss became NaN or infinite."""


def _noise_seed(seed: int, epoch: int) -> int:
    # one generator per epoch: a run resumed at an epoch boundary draws the same numbers
    return seed * 1_000_003 + epoch


class Trainer:
    """Trains a β-VAE described by a `VAEConfig`.

    Callbacks (`add_callback(event, fn)`, fn(trainer, record)) fire on `on_step` (every few steps,
    with running means), `on_frame` (a frame of the film, `vae_core.film`: the codes of fixed test
    images, samples and reconstructions), `on_epoch_end` (train and test metrics) and `on_end`.
    `pause`, `resume`, `stop`, `set_beta`, `advance` (while paused: run n more steps, then pause
    again), `advance_epoch` and `set_delay` (slow motion) may be called from another thread.

    Under torchrun, `group` (`vae_core.distributed.join()`) makes it one rank of a DDP run: each rank
    trains on its shard of every epoch, logged means are summed over ranks, and only rank 0 evaluates,
    writes the checkpoint and fires callbacks. `batch_size` is per process.
    """

    def __init__(self, config: VAEConfig, *, bundle: DataBundle | None = None,
                 out_path: str | Path | None = None, resume: Checkpoint | None = None, download: bool = True,
                 group: Group = SINGLE):
        config = config.with_absolute_paths()  # the checkpoint finds its folder from any working directory
        self.config = config
        self.group = group
        self.device = (torch.device("cuda", group.local_rank) if group.backend == "nccl"
                       else resolve_device(config.device))
        if self.device.type == "cpu":
            flush_subnormals()  # for a run in a thread of its own (the app's); the CLI does it at start
        check_training(config)  # the limits, before loading data or building the model
        self.bundle = bundle if bundle is not None else load_for_config(config, download=download)
        check_training(config, self.bundle.image_shape, len(self.bundle.images))
        if config.binarize and streamed(self.bundle.images):
            raise VAEError("binarize needs the images in memory, and this dataset is streamed: raise "
                           f"{BUDGET_ENV} (or --memory-budget) or train without binarize")
        self.out_path = Path(out_path) if out_path and group.is_main else None  # rank 0 alone writes
        self.model = build_model(config, self.bundle.image_shape, seed=config.seed).to(self.device)
        self.net = group.wrap(self.model, self.device)  # what the training step calls: DDP under torchrun
        self.optimizer = make_adam(self.model.parameters(), config.lr, self.device)
        self.history: dict = {"steps": [], "epochs": []}
        self.epoch, self.step = 0, 0  # completed epochs, optimizer steps
        self.beta = config.beta  # the schedule's target; settable while running
        self.status, self.message = "ready", ""
        self.step_graph: graphs.CapturedStep | None = None  # the step captured as a CUDA graph (vae_core.graphs)
        self.graph_note: str | None = None  # why the step is not captured, once the first step has asked
        self.health_images: dict[str, torch.Tensor] = {}  # the epoch's originals and reconstructions
        self.metrics: dict = {}
        self._callbacks: dict[str, list[Callable]] = defaultdict(list)
        self._unpaused = threading.Event()
        self._unpaused.set()
        self._stop = threading.Event()
        self._control = threading.Lock()  # guards the step budget
        self._budget: int | None = None  # steps left before pausing again (advance); None: no budget
        self.delay_s = 0.0  # slow motion: a pause after every step, each step logged and filmed
        self.film: Film | None = None  # made when fit starts (it needs the test images), or resumed
        self.film_budget = FilmBudget()  # the film's share of the run's time (vae_core.film); settable before fit
        self._stored_film: dict | None = None
        self._film_pending: dict | None = None  # the logged point of the epoch's last frame, till its test pass
        self._film_from_test = False  # the filmed images are test images in the test pass's order (fit sets it)
        self._film_save_s_per_frame, self._film_save_measured_at = 0.0, 0  # writing the film into a checkpoint
        self._film_dict_s = 0.0  # making the film's checkpoint form, the latest time
        self.lock = threading.Lock()  # guards history/preview/status for readers in other threads
        if resume is not None:
            self._restore(resume)
        self.train_idx, self.val_idx = validation_split(self.bundle.train_idx, config.val_fraction)
        self.steps_per_epoch = math.ceil(math.ceil(len(self.train_idx) / group.world_size) / config.batch_size)

    def _restore(self, ckpt: Checkpoint) -> None:
        if ckpt.image_shape != self.bundle.image_shape:
            raise VAEError(f"the checkpoint's images are {ckpt.image_shape}, the data's are "
                           f"{self.bundle.image_shape}")
        self.model.load_state_dict(ckpt.model.state_dict())
        if ckpt.optimizer_state:
            self.optimizer.load_state_dict(ckpt.optimizer_state)
        self.history = copy.deepcopy(ckpt.history) or {"steps": [], "epochs": []}
        self.epoch = int(ckpt.progress.get("epoch", 0))
        self.step = int(ckpt.progress.get("step", 0))
        self.beta = float(ckpt.progress.get("beta", self.config.beta))
        self.metrics = dict(ckpt.metrics)
        self._stored_film = getattr(ckpt, "film", None)

    # --- control, from any thread: the commands of vae_core.commands (checked there), and callbacks
    def add_callback(self, event: str, fn: Callable) -> None:
        if event not in EVENTS:
            raise VAEError(f"event must be one of {', '.join(EVENTS)} (got {event!r})")
        self._callbacks[event].append(fn)

    def pause(self) -> None:
        with self._control:
            self._budget = None
            self._unpaused.clear()

    def resume(self) -> None:
        with self._control:
            self._budget = None
            self._unpaused.set()

    def advance(self, steps: int = 1) -> None:
        """While paused: run `steps` more optimizer steps, then pause again (each budget's last step is
        logged and filmed, so a UI sees it). Running: nothing changes."""
        (steps,) = checked("advance", steps)
        with self._control:
            if self._unpaused.is_set() and self._budget is None:
                return
            self._budget = (self._budget or 0) + int(steps)
            self._unpaused.set()

    def advance_epoch(self) -> None:
        """While paused: run to the end of the current epoch (its evaluation included), then pause."""
        done = self.step - self.epoch * self.steps_per_epoch
        self.advance(self.steps_per_epoch - done if 0 < done < self.steps_per_epoch else self.steps_per_epoch)

    def set_delay(self, seconds: float) -> None:
        """Slow motion: wait `seconds` after every step (0: full speed); while slowed every step is
        logged and filmed."""
        (self.delay_s,) = checked("set_delay", seconds)

    def stop(self) -> None:
        self._stop.set()
        self._unpaused.set()

    def _take_turn(self) -> bool:
        """Wait while paused; True when this step spends the last of a step budget (pause after it)."""
        self._unpaused.wait()
        with self._control:
            if self._budget is None or self._stop.is_set():
                return False
            self._budget -= 1
            if self._budget > 0:
                return False
            self._budget = None
            self._unpaused.clear()
            return True

    def set_beta(self, beta: float) -> None:
        (self.beta,) = checked("set_beta", beta)

    @property
    def paused(self) -> bool:
        return not self._unpaused.is_set()

    def _fire(self, event: str, record: dict) -> None:
        if not self.group.is_main:  # one rank reports
            return
        for fn in self._callbacks[event]:
            fn(self, record)

    # --- the loop
    def fit(self) -> dict:
        """Train until `config.epochs` epochs are done or `stop()`; returns the test metrics.

        The checkpoint (if `out_path`) is written after every epoch and when stopped.
        """
        cfg = self.config
        # resident data: all images as one tensor on the device (or their bytes, ByteImages), indexed
        # per batch (no copy of the training split); data over the memory budget (`LazyImages`) is
        # decoded per batch by DataLoader workers into pinned memory
        images = self.bundle.images
        if not streamed(images):
            images = images.to(self.device)
        train_idx = self.train_idx.to(self.device if isinstance(images, torch.Tensor) else "cpu")
        test = self.bundle.split("test")
        x_test, x_val = test.images, self.bundle.images[self.val_idx]
        self._health_pick = torch.tensor(test.varied(HEALTH_IMAGES), dtype=torch.long)
        if cfg.binarize:
            x_test, x_val = binarize_fixed(as_tensor(x_test)), binarize_fixed(as_tensor(x_val))
        self.status = "running"
        try:
            self._start_film(x_test, test.labels, self.bundle.class_names)
            while self.epoch < cfg.epochs and not self._stop.is_set():
                self._run_epoch(images, train_idx)
                if self._stop.is_set() and self._epoch_partial:
                    break
                self._end_epoch(x_test, x_val)
            self.status = "stopped" if self._stop.is_set() and self.epoch < cfg.epochs else "finished"
        except TrainingFailed as e:
            self.status, self.message = "failed", str(e)
        if self.out_path and self.status != "failed":  # a failed run keeps its last epoch's file
            self.save()
        self._fire("on_end", {"status": self.status, "message": self.message})
        if self.status == "failed":
            raise TrainingFailed(self.message)
        return self.metrics

    def _run_epoch(self, images: torch.Tensor, train_idx: torch.Tensor) -> None:
        cfg, dev = self.config, self.device
        # every rank draws the same order and takes its shard; each rank draws its own noise
        seed = _noise_seed(cfg.seed, self.epoch) + RANK_SEED * self.group.rank
        # a captured step keeps the generator registered with its graph: reseeded, the same draws as a new one
        g = self.step_graph.generator if self.step_graph is not None else torch.Generator(device=dev)
        g.manual_seed(seed)
        perm_gen = torch.Generator().manual_seed(_noise_seed(cfg.seed, self.epoch))
        perm = self.group.shard(train_idx[torch.randperm(len(train_idx), generator=perm_gen).to(train_idx.device)])
        good = copy.deepcopy((self.model.state_dict(), self.optimizer.state_dict()))
        log_every = max(1, self.steps_per_epoch // POINTS_PER_EPOCH)
        filmed = set(frame_points(self.steps_per_epoch, log_every, cfg.batch_size, len(self._film_images),
                                  first_epoch=self.epoch == 0)) if self.film is not None else set()
        # running sums stay on the device and are read once per logged point: no host-device sync per step
        sums, names, floats, seen, t0 = None, (), defaultdict(float), 0, time.perf_counter()
        self._epoch_started, self._epoch_partial = t0, False
        self.model.train()
        for i, x in enumerate(self._batches(images, perm.split(cfg.batch_size))):
            budget_spent = self._take_turn()
            if self._stop.is_set():
                self._epoch_partial = True
                return
            if cfg.shift_pixels:  # training batches only: evaluation sees the images as they are
                x = shift_images(x, cfg.shift_pixels, g)
            if cfg.binarize:  # dynamic binarization: a fresh draw every time an image is seen
                x = torch.bernoulli(x, generator=g)
            names, parts, scalars = self._train_step(x, g)
            sums = parts * x.shape[0] if sums is None else sums.add_(parts, alpha=x.shape[0])
            for k, v in scalars.items():
                floats[k] += v * x.shape[0]
            seen += x.shape[0]
            if self.delay_s:
                self._stop.wait(self.delay_s)
            shown = budget_spent or self.delay_s > 0  # a step a person asked to see
            if shown or (i + 1) % log_every == 0 or i + 1 == self.steps_per_epoch:
                total = self.group.sum_(torch.cat([sums, sums.new_tensor([seen])])).tolist()  # the one sync
                means = dict(zip(names, (v / total[-1] for v in total[:-1]), strict=True))  # over every rank
                self._check_finite(means, good, log_every)
                record = {**means, "nelbo": means["recon"] + means["kl"], **{k: v / seen for k, v in floats.items()}}
                record.update(step=self.step, epoch=self.epoch + (i + 1) / self.steps_per_epoch,
                              images_per_s=total[-1] / max(time.perf_counter() - t0, 1e-9))
                with self.lock:
                    self.history["steps"].append(record)
                self._fire("on_step", record)
                sums, floats, seen, t0 = None, defaultdict(float), 0, time.perf_counter()
                if self.film is not None and (shown or i in filmed):  # after t0: images/s counts its cost
                    # an epoch's last frame waits for the epoch's test pass and takes its codes from it
                    at_end = i + 1 == self.steps_per_epoch and self._film_from_test
                    last = self.epoch + 1 >= cfg.epochs and i + 1 == self.steps_per_epoch  # the run's end
                    if not (shown or last or self.film_budget.affords("from_test" if at_end else "encoded")):
                        self.film_budget.skipped += 1
                    elif at_end:
                        self._film_pending = record
                    else:
                        self._film_frame(record)
        self._train_seconds = time.perf_counter() - self._epoch_started

    def _batches(self, images, batches):
        """The epoch's batches of images on the device: indexed from the resident tensor, or decoded by
        DataLoader workers (pinned memory, copied without blocking) when the data is streamed."""
        if not isinstance(images, LazyImages):
            return (images.index_select(0, idx) for idx in batches)  # a few times faster than images[idx]
        pin = self.device.type == "cuda" and streamed(images)  # held bytes are on the device already
        return (x.to(self.device, non_blocking=pin) for x in images.batches(batches, pin=pin))

    def _check_finite(self, means: dict, good, log_every: int) -> None:
        """After a logged point: a NaN or infinite mean restores the weights and optimizer state from
        the start of the epoch (`good`) and stops the run."""
        if all(math.isfinite(v) for v in means.values()):
            return
        self.model.load_state_dict(good[0])
        self.optimizer.load_state_dict(good[1])
        bad = means["loss"] if not math.isfinite(means["loss"]) else next(
            v for v in means.values() if not math.isfinite(v))
        raise TrainingFailed(
            f"loss became {bad} within steps {max(0, self.step - log_every)}-{self.step} (epoch "
            f"{self.epoch + 1}); kept the weights from the start of that epoch. Try a lower learning rate "
            f"(now {self.config.lr:g})")

    def _train_step(self, x: torch.Tensor, g: torch.Generator) -> tuple[tuple[str, ...], torch.Tensor, dict]:
        """One optimizer step (on CUDA, a replay of the captured step: `vae_core.graphs`). Returns the names
        and values of the loss parts as one detached tensor on the device (recon, kl, loss[, tc]; nats per
        example) and the schedule's numbers (β, C)."""
        cfg = self.config
        weight = kl_weight(cfg, self.step, self.steps_per_epoch, beta=self.beta)
        lr = learning_rate(cfg, self.step, self.steps_per_epoch)
        if self.step_graph is None and self.graph_note is None:
            self._plan_graph(g)
        if self.step_graph is not None and self.step_graph.takes(x):
            parts = self.step_graph(x, weight, lr)
        else:  # no graph here, or a batch of another shape (an epoch's last)
            parts = graphs.eager_step(lambda batch, w: self._loss(batch, w, g), self.optimizer, x, weight, lr)
        self.step += 1
        scalars = {"beta": weight.beta}
        if weight.capacity is not None:
            scalars["capacity"] = weight.capacity
        return tuple(parts), torch.stack(list(parts.values())), scalars

    def _loss(self, x: torch.Tensor, weight, g: torch.Generator) -> dict[str, torch.Tensor]:
        """The loss's parts for batch x (`vae_core.losses.training_loss`), noise from g."""
        amp = self.config.amp and self.device.type == "cuda"
        # inside a CUDA graph autocast must not cache its casts
        ctx = torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=self.step_graph is None) if amp \
            else nullcontext()
        with ctx:
            outputs = self.net(x, g)
        return training_loss(self.model, x, outputs, weight, dataset_size=len(self.train_idx), generator=g)

    def _plan_graph(self, g: torch.Generator) -> None:
        """At the first step: capture the step as a CUDA graph where it can be (else say why not)."""
        self.graph_note = graphs.capture_unavailable(self.device, enabled=self.config.cuda_graphs,
                                              world_size=self.group.world_size, optimizer=self.optimizer)
        if self.graph_note is None:
            self.step_graph = graphs.CapturedStep(lambda batch, w: self._loss(batch, w, self.step_graph.generator),
                                           self.optimizer, g)

    def _end_epoch(self, x_test: torch.Tensor, x_val: torch.Tensor) -> None:
        if not self.group.is_main:  # rank 0 evaluates and saves; the others wait for it
            self.epoch += 1
            self.group.barrier()
            return
        self.model.eval()
        pending, self._film_pending = self._film_pending, None
        test = evaluate(self.model, x_test, prepared=True, keep_codes=pending is not None)
        if pending is not None:  # the epoch's last frame: the test pass's codes of the filmed images
            self._film_frame(pending, codes=test.pop("mu")[self.film.indices])
        val = evaluate(self.model, x_val, prepared=True) if len(x_val) else None
        steps = [r for r in self.history["steps"] if r["epoch"] > self.epoch]
        self.epoch += 1
        seen = sum(1 for _ in steps)
        train = {k: sum(r[k] for r in steps) / max(seen, 1) for k in ("recon", "kl", "nelbo")}
        record = {
            "epoch": self.epoch, "step": self.step, "beta": self.beta,
            **{f"train_{k}": v for k, v in train.items()},
            "test_recon": test["recon"], "test_kl": test["kl"], "test_nelbo": test["nelbo"],
            "kl_per_dim": test["kl_per_dim"], "active_units": test["active_units"],
            "images_per_s": sum(r["images_per_s"] for r in steps) / max(seen, 1),
            "seconds": time.perf_counter() - self._epoch_started,  # the epoch: training, test pass, preview
            "train_seconds": self._train_seconds,  # the training loop alone
        }
        if self.film is not None:  # the film's measured seconds in this process so far (vae_core.film.FilmBudget)
            record.update(film_seconds=self.film_budget.spent_s, film_frames_skipped=self.film_budget.skipped)
        self.metrics = {f"test_{k}": test[k] for k in ("nelbo", "recon", "kl", "kl_per_dim")}
        self.metrics.update(active_units=test["active_units"], likelihood=test["likelihood"],
                            epoch=self.epoch)
        if val is not None:  # the numbers to choose settings or stop early by
            record.update({f"val_{k}": val[k] for k in ("nelbo", "recon", "kl")})
            self.metrics.update({f"val_{k}": val[k] for k in ("nelbo", "recon", "kl")})
        health = self._health_images(x_test)
        record["warnings"] = self.metrics["warnings"] = list(self.bundle.spec.get("warnings", [])) + epoch_warnings(
            record, self.history["epochs"], self.config.likelihood_name, health)  # the data's, then the run's
        with self.lock:
            self.history["epochs"].append(record)
            self.health_images = health
        if self.out_path:  # the film rides along while its share affords it; the run's last save always has it
            self.save(with_film=self.film is None or self.film_budget.within(self._film_save_expected_s()))
        self._fire("on_epoch_end", record)
        self.group.barrier()

    def _start_film(self, x_test, labels: torch.Tensor | None, class_names: tuple[str, ...] = ()) -> None:
        """The film (`vae_core.film`): a resumed run's goes on (frames past its step dropped), else a new
        one with a first frame of the untrained codes. No film when config.film_frames is 0, or on the
        ranks that do not report. What it costs is charged to `film_budget`."""
        if not self.config.film_frames or not self.group.is_main or len(x_test) == 0:
            return
        started = self.film_budget.clock()
        self.film = film_of(self._stored_film) if self._stored_film else None
        if self.film is not None and self.film.latent_dim != self.model.latent_dim:
            self.film = None
        if self.film is not None:
            self.film.drop_after(self.step)
        else:
            self.film = Film.start(x_test, labels, self._health_pick.tolist(), self.model.latent_dim,
                                   seed=self.config.seed, max_frames=self.config.film_frames,
                                   class_names=class_names)
        self._film_images = self.film.fixed_images(x_test).to(self.device)
        self._film_from_test = len(x_test) > int(self.film.indices.max())  # the film's own test split
        self.film_budget.charge(self.film_budget.clock() - started)
        if not self.film.frames:
            beta = kl_weight(self.config, self.step, self.steps_per_epoch, beta=self.beta).beta
            self._film_frame({"step": self.step, "epoch": float(self.epoch), "beta": beta})

    def _film_frame(self, record: dict, codes: torch.Tensor | None = None) -> None:
        """Record a frame (`codes`: the filmed images' codes from the test pass, else they are encoded)
        and hand it to the `on_frame` callbacks; both are charged to the film's budget."""
        started = self.film_budget.clock()
        frame = self.film.record(self.model, self._film_images, step=record["step"], epoch=record["epoch"],
                                 beta=record["beta"], losses=record, codes=codes)
        self._fire("on_frame", frame)
        self.film_budget.charge(self.film_budget.clock() - started,
                                frame="encoded" if codes is None else "from_test")

    def _health_images(self, x_test: torch.Tensor) -> dict[str, torch.Tensor]:
        """A few test images and their reconstructions: collapsed runs reconstruct them all alike."""
        originals = as_tensor(x_test[self._health_pick])  # of different classes where labelled
        return {"originals": originals.cpu(), "reconstructions": reconstruct(self.model, originals)}

    def save(self, path: str | Path | None = None, *, include_optimizer: bool = True, with_film: bool = True) -> Path:
        """Write the checkpoint (to `out_path` by default); `with_film` False leaves the film out (an epoch's
        checkpoint when writing the film would pass the film's share of the run's time: a run resumed from
        it starts a new film)."""
        path = Path(path) if path else self.out_path
        if path is None:
            raise VAEError("no checkpoint path to save to")
        with self.lock:
            history = copy.deepcopy(self.history)
        film = None if not with_film else self._film_for_checkpoint() if self.film is not None else self._stored_film
        saved = save_checkpoint(
            path, config=self.config, model=self.model, history=history,
            optimizer=self.optimizer if include_optimizer else None,
            data_spec=self.bundle.spec | {"image_shape": list(self.bundle.image_shape),
                                         "n_train": len(self.train_idx), "n_val": len(self.val_idx),
                                         "n_test": len(self.bundle.test_idx)},
            metrics=self.metrics, film=film,
            progress={"epoch": self.epoch, "step": self.epoch * self.steps_per_epoch, "beta": self.beta,
                      "status": self.status, "pid": os.getpid()},
        )
        if self.film is not None and with_film:  # its serialization, as measured for a film of its size (below)
            self.film_budget.charge(self._film_save_s_per_frame * len(self.film.frames))
        return saved

    def _film_save_expected_s(self) -> float:
        """What writing the film into a checkpoint is expected to cost now (`_film_for_checkpoint`)."""
        return self._film_dict_s + self._film_save_s_per_frame * len(self.film.frames)

    def _film_for_checkpoint(self) -> dict:
        """The film's checkpoint form, its making charged to the film. What writing it into the checkpoint
        costs is measured apart, on a film in memory, whenever the film has doubled its frames since (so
        at most about twice the serialization of the run's last film in all): seconds per frame."""
        clock = self.film_budget.clock
        started = clock()
        film = self.film.to_dict()
        self._film_dict_s = clock() - started
        frames = len(self.film.frames)
        if frames >= 2 * self._film_save_measured_at:
            measured = clock()
            torch.save(film, io.BytesIO())
            self._film_save_s_per_frame = (clock() - measured) / max(frames, 1)
            self._film_save_measured_at = frames
        self.film_budget.charge(clock() - started)
        return film

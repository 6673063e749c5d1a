"""The film's cost to training (issue 25): the same seeded run of the shipped `mnist5k-conv-z16` preset's
model with the film (its default) and without it (`film_frames=0`), alternated, in this process.

    python -m benchmarks --json --quick --only film

Figures: images/s of each (the whole `fit`: training, the film's frames, the epoch's test pass, as a
person waits for it; and the training loop alone, whose logged speed includes the frames recorded in
it; and per second of the process's CPU time, which other work on a shared machine sways less), the
film's cost as a fraction of the steady images/s (`film_cost_fraction`: the training loop of the epochs
after the first, which also films its early steps) and of the whole runs', a frame's encode-and-decode
time (median), a frame against optimizer steps timed interleaved, frames per epoch, the frames and
bytes the film keeps, and the frames per second a live map could show (frames recorded per second of
training). Never pass/fail: the issue's target (<= 5%) is printed beside.
"""

from __future__ import annotations

import statistics
import time

import torch

from vae_core import Trainer, VAEConfig, load_dataset
from vae_core.film import frame_points
from vae_core.presets import PRESETS
from vae_core.train import POINTS_PER_EPOCH

PRESET = "mnist5k-conv-z16"


def _run(config: VAEConfig, bundle) -> dict:
    trainer = Trainer(config, bundle=bundle)
    t0, c0 = time.perf_counter(), time.process_time()
    trainer.fit()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    epochs = trainer.history["epochs"]
    images = len(trainer.train_idx) * len(epochs)
    later = epochs[1:] or epochs  # the steady rate: the first epoch also films its early steps
    return {"wall_s": wall, "images_per_s": images / wall, "images_per_cpu_s": images / cpu,
            "loop_images_per_s": len(trainer.train_idx) * len(later) / sum(e["train_seconds"] for e in later),
            "trainer": trainer}


def film_cost(epochs: int = 2, repeats: int = 1, device: str = "cpu", n_train: int | None = None) -> dict:
    """The figures above for `epochs` epochs of the preset, `repeats` runs each way (medians)."""
    bundle = load_dataset("mnist5k")
    if n_train is not None:  # fewer training images: a shorter run
        bundle.train_idx = bundle.train_idx[:n_train]
    base = {**PRESETS[PRESET], "epochs": epochs, "device": device}
    _run(VAEConfig(**{**base, "epochs": 1}), bundle)  # warm-up, with a film: both paths
    runs: dict[str, list[dict]] = {"film": [], "none": []}
    order = [("none", 0), ("film", PRESETS[PRESET].get("film_frames", VAEConfig.film_frames))]  # its own film
    for r in range(repeats):  # alternated, each first in turn: the machine's load drifts
        for name, frames in order if r % 2 == 0 else order[::-1]:
            runs[name].append(_run(VAEConfig(**{**base, "film_frames": frames}), bundle))
    keys = ("wall_s", "images_per_s", "images_per_cpu_s", "loop_images_per_s")
    first_epoch_frames = sum(1 for f in runs["film"][-1]["trainer"].film.frames if f["epoch"] <= 1)
    med = {name: {k: statistics.median(r[k] for r in rs) for k in keys} for name, rs in runs.items()}
    trainer = runs["film"][-1]["trainer"]
    film = trainer.film
    kept, nbytes = len(film.frames), film.nbytes()  # before the timed frames below join it
    # a frame against training steps, interleaved (each a median of 7), so that load that comes and goes
    # sways both alike: the film's share of an epoch's compute
    frame_s, step_s = [], []
    trainer.model.train()
    x = bundle.images[trainer.train_idx[: trainer.config.batch_size]].to(trainer.device)
    g = torch.Generator(device=trainer.device).manual_seed(0)

    def sync() -> None:
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(7):
        t0 = time.perf_counter()
        for _ in range(10):
            trainer._train_step(x, g)
        sync()
        t1 = time.perf_counter()
        film.record(trainer.model, trainer._film_images, step=0, epoch=0.0, beta=1.0)
        sync()
        step_s.append((t1 - t0) / 10)
        frame_s.append(time.perf_counter() - t1)
    log_every = max(1, trainer.steps_per_epoch // POINTS_PER_EPOCH)
    per_epoch = len(frame_points(trainer.steps_per_epoch, log_every, trainer.config.batch_size,
                                 len(trainer._film_images)))
    loop_s = len(trainer.train_idx) / med["film"]["loop_images_per_s"]  # an epoch's training loop
    return {
        "film_preset": PRESET, "film_epochs": epochs, "film_repeats": repeats,
        "film_train_images": len(trainer.train_idx),
        "film_images_per_s": med["film"]["images_per_s"], "no_film_images_per_s": med["none"]["images_per_s"],
        # the steady rate (epochs after the first: training loop and its frames); the whole runs' below
        "film_cost_fraction": 1 - med["film"]["loop_images_per_s"] / med["none"]["loop_images_per_s"],
        "film_run_cost_fraction": 1 - med["film"]["images_per_s"] / med["none"]["images_per_s"],
        "film_first_epoch_frames": first_epoch_frames,
        # per second of this process's CPU time: less swayed by other work on a shared machine
        "film_images_per_cpu_s": med["film"]["images_per_cpu_s"],
        "no_film_images_per_cpu_s": med["none"]["images_per_cpu_s"],
        "film_cpu_cost_fraction": 1 - med["film"]["images_per_cpu_s"] / med["none"]["images_per_cpu_s"],
        "film_loop_images_per_s": med["film"]["loop_images_per_s"],
        "no_film_loop_images_per_s": med["none"]["loop_images_per_s"],
        "film_frame_ms": 1000 * statistics.median(frame_s), "film_codes_per_frame": len(film.indices),
        "film_frames_per_epoch": per_epoch,
        "film_frame_fraction_of_loop": per_epoch * statistics.median(frame_s) / loop_s,
        "film_step_ms": 1000 * statistics.median(step_s),
        # the film's frames per epoch against the epoch's optimizer steps, timed interleaved
        "film_frame_fraction_of_steps": per_epoch * statistics.median(frame_s)
        / (trainer.steps_per_epoch * statistics.median(step_s)),
        "film_frames_kept": kept, "film_bytes": nbytes,
        "film_live_frames_per_s": per_epoch / loop_s,
    }

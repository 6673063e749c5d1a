"""Scaling out (issue 12): training images/s with 1 process and with N processes under torchrun (Gloo on
CPUs, NCCL on GPUs), and the peak memory of training a folder of images larger than the memory budget,
streamed, beside the same folder held in memory.

`python -m benchmarks.scaling [--json] [--images N] [--procs N]`, or as the `scaling` section of
`python -m benchmarks`. Each run is a fresh `python -m vae_core train` process; its images/s is the
in-loop rate it logged (all ranks together), its memory the main process's own peak (VmHWM; DataLoader
workers are separate processes, reported apart).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from benchmarks.machine import load_average, machine_info, run_timed

MLP = ("--model", "mlp", "--hidden-sizes", "400", "--latent-dim", "20", "--batch-size", "128")


def _train(work: Path, name: str, args: tuple[str, ...], procs: int = 1, env: dict | None = None) -> dict:
    """One training process (or a torchrun of `procs`): wall time, peak RSS and the logged images/s."""
    from vae_core.checkpoint import load_checkpoint

    out = work / f"{name}.pt"
    cmd = (["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}", "-m", "vae_core"]
           if procs > 1 else ["-m", "vae_core"])  # under torchrun the peak is the launcher's own
    timed = run_timed([*cmd, "train", *args, "--quiet", "--out", str(out)],
                      env={"VAE_CHECKPOINT_DIR": str(work), **(env or {})})
    epochs = load_checkpoint(out).history["epochs"]
    last = epochs[-1]
    return {"wall_s": round(timed.wall_s, 2), "peak_rss_mb": round(timed.peak_rss_mb),
            "images_per_s": round(last["images_per_s"]), "train_seconds_last_epoch": round(last["train_seconds"], 2),
            "test_nelbo": round(last["test_nelbo"], 2)}


def processes(work: Path, procs: int = 2, epochs: int = 3, device: str = "cpu") -> dict:
    """The 784-400-20 MLP on mnist5k, 1 process against `procs` processes (batch 128 per process)."""
    args = ("--dataset", "mnist5k", *MLP, "--epochs", str(epochs), "--device", device)
    one = _train(work, "one", args)
    many = _train(work, "many", args, procs=procs)
    return {"scaling_one_process": one, f"scaling_{procs}_processes": many,
            "scaling_speedup": round(many["images_per_s"] / one["images_per_s"], 2)}


def write_folder(root: Path, n: int, size: int = 64) -> Path:
    """`n` random RGB PNGs of `size` px in two subfolders (labels), seeded."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(n):
        folder = root / ("a" if i % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        pixels = (rng.random((size, size, 3)) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:06d}.png")
    return root


def streamed_folder(work: Path, n: int = 20000, budget: str = "256MB", device: str = "cpu") -> dict:
    """One epoch of an MLP (12288-256-16) on `n` 64 px RGB images: streamed under `budget`, and held in
    memory. The model is small so that the data, not the model, decides the peak."""
    folder = write_folder(work / "folder", n)
    args = ("--dataset", f"folder:{folder}", "--model", "mlp", "--hidden-sizes", "256", "--latent-dim", "16",
            "--epochs", "1", "--device", device)
    image_mb = n * 3 * 64 * 64 * 4 / 2**20
    streamed = _train(work, "streamed", args, env={"VAE_MEMORY_BUDGET": budget})
    held = _train(work, "held", args, env={"VAE_MEMORY_BUDGET": "1TB"})
    return {"folder_images": n, "folder_float32_mb": round(image_mb), "folder_budget": budget,
            "folder_streamed": streamed, "folder_resident": held}


SPRITES_FULL_STEPS = """
import json, sys, time
from vae_core import VAEConfig
from vae_core.train import POINTS_PER_EPOCH, Trainer
from benchmarks.peak import peak_rss_kib
steps = int(sys.argv[1])
t0 = time.perf_counter()
trainer = Trainer(VAEConfig(dataset="sprites-full", model="conv", latent_dim=10, batch_size=128, epochs=1,
                            device=sys.argv[2]))
ready = time.perf_counter() - t0
trainer.pause()  # then a budget of `steps` steps: its last is logged, and the run stops there
trainer.advance(steps)
trainer.add_callback("on_step", lambda t, rec: t.stop() if t.paused else None)
trainer.fit()
last = trainer.history["steps"][-1]
print(json.dumps({"loading": trainer.bundle.spec["loading_line"], "setup_s": round(ready, 2),
                  "steps": trainer.step, "steps_per_point": max(1, trainer.steps_per_epoch // POINTS_PER_EPOCH),
                  "images_per_s": round(last["images_per_s"]),
                  "nelbo_first": round(trainer.history["steps"][0]["nelbo"], 1), "nelbo_last": round(last["nelbo"], 1),
                  "peak_rss_mb": round(peak_rss_kib() / 1024)}))
"""


def sprites_full(steps: int = 700, budget: str = "2GB", device: str = "cpu") -> dict:
    """The first `steps` steps (logged every 259 steps and at the last) of a conv model on
    the full 737,280-image sprite grid (11.2 GB as float32), streamed under `budget`: setup time,
    images/s, loss at the first and last logged points, and the process's own peak memory."""
    import os
    import subprocess
    import sys

    from benchmarks.machine import ROOT

    proc = subprocess.run([sys.executable, "-c", SPRITES_FULL_STEPS, str(steps), device], cwd=ROOT, text=True,
                          capture_output=True, env={**os.environ, "VAE_MEMORY_BUDGET": budget})
    if proc.returncode != 0:
        raise RuntimeError(f"sprites-full run failed: {proc.stderr.strip()[-600:]}")
    return {"sprites_full": {"budget": budget, **json.loads(proc.stdout.strip().splitlines()[-1])}}


def run(work: Path, *, images: int = 20000, procs: int = 2, device: str = "cpu", epochs: int = 3,
        sprites_steps: int = 700) -> dict:
    out = {"load_average_before": load_average()}
    out.update(processes(work, procs, epochs=epochs, device=device))
    out.update(streamed_folder(work, images, device=device))
    out.update(sprites_full(sprites_steps, device=device))
    out["load_average_after"] = load_average()
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.scaling", description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true")
    p.add_argument("--images", type=int, default=20000, help="images in the streamed folder (default 20000)")
    p.add_argument("--procs", type=int, default=2, help="processes under torchrun (default 2)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        result = {"device": machine_info(args.device)["device"], **run(Path(tmp), images=args.images,
                                                                          procs=args.procs, device=args.device)}
    print(json.dumps(result, indent=1) if args.json else "\n".join(f"{k:<28} {v}" for k, v in result.items()))


if __name__ == "__main__":
    main()

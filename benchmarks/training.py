"""Training throughput: `python -m vae_core train` against the pytorch/examples VAE, on the same files.

Both run as separate processes, timed whole (start-up, data loading, every epoch's test pass and
the end included; median of `repeats`), and each reports the seconds spent in its training loops.
The loop's achieved GFLOP/s is set beside the machine's ceiling: a GEMM of the model's largest
shape (batch × 784 × 400, float32) timed in the same run.

FLOPs are counted the conventional way: 2 per multiply-add of the forward matmuls, times 3 for
forward + backward (so the 784-400-20 MLP costs 3.9 MFLOP an image, 234 GFLOP an epoch of 60,000).
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from pathlib import Path

from benchmarks.machine import load_average, median_run, run_timed

MLP = (784, 400, 20)  # the pytorch/examples model: input, hidden, latent


def mlp_flops_per_image(sizes: tuple[int, int, int] = MLP) -> float:
    """Forward + backward FLOPs of the encoder (d→h→2z) and decoder (z→h→d) of one image."""
    d, h, z = sizes
    forward_macs = d * h + h * 2 * z + z * h + h * d
    return 3 * 2 * forward_macs


def gemm_ceiling_gflops(batch: int = 128, device: str = "cpu", seconds: float = 2.0) -> float:
    """The best GFLOP/s of a (batch × 784) @ (784 × 400) float32 GEMM over short timed blocks."""
    import torch

    a = torch.randn(batch, MLP[0], device=device)
    b = torch.randn(MLP[0], MLP[1], device=device)
    out = torch.empty(batch, MLP[1], device=device)
    flops = 2 * batch * MLP[0] * MLP[1]
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(50):
            torch.mm(a, b, out=out)
        _sync(device)
        best = max(best, 50 * flops / (time.perf_counter() - t0))
    return best / 1e9


def loop_floor(n_images: int, batch: int = 128, device: str = "cpu", repeats: int = 100) -> dict:
    """What an epoch of the 784-400-20 MLP costs in its two unavoidable parts, each timed alone with
    its operands hot in cache (the best of five blocks of `repeats`): the step's GEMMs (4 forward;
    backward, a weight gradient per layer and an input gradient for all but the first) and one fused
    Adam step over the model's parameters. Everything else a loop does (the loss, the sampling, ReLUs,
    autograd's bookkeeping, PyTorch's dispatch of some 60 operations) comes on top: the figures say
    how close to the GEMM ceiling an epoch can come on this machine, whatever the loop."""
    import torch

    d, h, z = MLP
    layers = [(d, h), (h, 2 * z), (z, h), (h, d)]  # (in, out) of each Linear
    weights = [torch.randn(o, i, device=device) / i ** 0.5 for i, o in layers]
    biases = [torch.zeros(o, device=device) for _, o in layers]
    xs = [torch.randn(batch, i, device=device) for i, _ in layers]
    grads = [torch.randn(batch, o, device=device) for _, o in layers]

    def gemms():
        for k, (w, b, x, g) in enumerate(zip(weights, biases, xs, grads, strict=True)):
            torch.addmm(b, x, w.t())  # forward
            torch.mm(g.t(), x)  # the weight's gradient
            if k:  # the input's gradient (none for the images)
                torch.mm(g, w)

    params = [torch.nn.Parameter(t.clone()) for t in weights + biases]
    for q in params:
        q.grad = torch.randn_like(q)
    adam = torch.optim.Adam(params, lr=1e-3, fused=True)  # as the Trainer uses on CPU and CUDA

    def best(fn) -> float:
        fn()
        times = []
        for _ in range(5):
            _sync(device)
            t0 = time.perf_counter()
            for _ in range(repeats):
                fn()
            _sync(device)
            times.append((time.perf_counter() - t0) / repeats)
        return min(times)

    steps = math.ceil(n_images / batch)
    gemm_s, adam_s = best(gemms) * steps, best(adam.step) * steps
    return {"train_loop_floor_gemm_s": gemm_s, "train_loop_floor_adam_s": adam_s,
            "train_loop_floor_s": gemm_s + adam_s,
            "train_loop_floor_gflops": mlp_flops_per_image() * n_images / (gemm_s + adam_s) / 1e9}


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def reference_args(data_root: Path, epochs: int, device: str) -> list[str]:
    return ["-m", "benchmarks.reference_vae", "--data-root", str(data_root), "--epochs", str(epochs),
            "--device", device]


def ours_args(data_root: Path, epochs: int, device: str, out: Path, *, quiet: bool = True) -> list[str]:
    return ["-m", "vae_core", "train", "--dataset", "mnist", "--data-root", str(data_root), "--model", "mlp",
            "--hidden-sizes", "400", "--latent-dim", "20", "--epochs", str(epochs), "--batch-size", "128",
            "--lr", "1e-3", "--device", device, "--out", str(out)] + (["--quiet"] if quiet else [])


def compare(data_root: Path, *, epochs: int, repeats: int, device: str) -> dict:
    """Whole-process and in-loop figures of both programs on the IDX files under `data_root`."""
    from vae_core.checkpoint import load_checkpoint

    load = load_average()
    ref, ref_walls = median_run(reference_args(data_root, epochs, "cuda" if device == "cuda" else "cpu"), repeats)
    ref_out = json.loads(ref.stdout.strip().splitlines()[-1])
    with tempfile.TemporaryDirectory() as tmp:  # one checkpoint per run: the loop figures are the median run's
        runs = sorted(((run_timed(ours_args(data_root, epochs, device, Path(tmp) / f"{i}.pt")), i)
                       for i in range(repeats)), key=lambda r: r[0].wall_s)
        ours, median = runs[len(runs) // 2]
        our_walls = [round(r.wall_s, 3) for r, _ in runs]
        epochs_run = load_checkpoint(Path(tmp) / f"{median}.pt").history["epochs"]
    our_loop_s = sum(e["train_seconds"] for e in epochs_run)
    n_images = ref_out["images"]
    flops = mlp_flops_per_image() * n_images
    return {
        "train_loop_s_per_epoch": our_loop_s / epochs,
        "train_speedup": ref.wall_s / ours.wall_s,
        "train_loop_speedup": ref_out["loop_s"] / our_loop_s,
        "train_images_per_s": n_images / our_loop_s,
        "train_loop_gflops": flops / our_loop_s / 1e9,
        "reference_images_per_s": n_images / ref_out["loop_s"],
        "reference_wall_s": ref.wall_s, "reference_walls_s": ref_walls,
        "train_wall_s": ours.wall_s, "train_walls_s": our_walls,
        "train_overhead_s": ours.wall_s - sum(e["seconds"] for e in epochs_run),
        "reference_peak_rss_mb": ref.peak_rss_mb, "train_peak_rss_mb": ours.peak_rss_mb,
        "train_epochs": epochs, "train_images": n_images // epochs, "train_load_average": load,
    }


def conv_images_per_s(*, epochs: int, n_train: int | None, device: str) -> float:
    """Training images/s of the conv model (mnist5k, latent 16, hidden 256), in the loop."""
    from vae_core import Trainer, VAEConfig, load_dataset

    bundle = load_dataset("mnist5k")
    if n_train is not None:
        bundle.train_idx = bundle.train_idx[:n_train]
    cfg = VAEConfig(dataset="mnist5k", model="conv", latent_dim=16, hidden_sizes=(256,), epochs=epochs,
                    device=device)
    trainer = Trainer(cfg, bundle=bundle)
    trainer.fit()
    done = trainer.history["epochs"]
    return len(bundle.train_idx) * len(done) / sum(e["train_seconds"] for e in done)

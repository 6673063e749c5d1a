"""The captured training step (vae_core.graphs): where it is off and why, the arithmetic it shares with the
eager step, and, on a machine with a CUDA GPU, that a graphed run is the eager run. The GPU tests skip with
their reason where no GPU is visible and run where one is."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vae_core import Trainer, VAEConfig
from vae_core.graphs import capture_unavailable
from vae_core.objectives import weighted_kl
from vae_core.optim import FusedAdam
from vae_core.schedules import KLWeight

from .conftest import tiny_config

ROOT = Path(__file__).resolve().parents[1]

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (runs where one is visible)")


def test_capture_is_off_where_it_cannot_run_and_says_why():
    params = [torch.nn.Parameter(torch.zeros(3))]
    fused, plain = FusedAdam(params, lr=1e-3), torch.optim.Adam(params, lr=1e-3)
    gpu = torch.device("cuda", 0)
    assert "CUDA device" in capture_unavailable(torch.device("cpu"), enabled=True, world_size=1, optimizer=fused)
    assert "--no-cuda-graphs" in capture_unavailable(gpu, enabled=False, world_size=1, optimizer=fused)
    assert "torchrun" in capture_unavailable(gpu, enabled=True, world_size=2, optimizer=fused)
    assert "fused" in capture_unavailable(gpu, enabled=True, world_size=1, optimizer=plain)
    assert capture_unavailable(gpu, enabled=True, world_size=1, optimizer=fused) is None


@pytest.mark.parametrize("beta", [0.0, 0.3, 1.0, 4.0])
@pytest.mark.parametrize("with_tc", [False, True])
def test_the_kl_weight_as_device_tensors_is_the_same_arithmetic(beta, with_tc):
    kl, tc = torch.tensor(12.345), torch.tensor(2.5)
    cfg = VAEConfig(objective="beta-tcvae" if with_tc else "beta-vae")
    as_numbers = weighted_kl(kl, KLWeight(beta), cfg, tc if with_tc else None)
    as_tensors = weighted_kl(kl, KLWeight(torch.tensor(beta)), cfg, tc if with_tc else None)
    assert torch.equal(as_numbers, as_tensors)
    cfg = VAEConfig(objective="capacity", gamma=beta + 1.0)
    capacity = weighted_kl(kl, KLWeight(beta, 5.0), cfg)
    assert torch.equal(capacity, weighted_kl(kl, KLWeight(torch.tensor(beta), torch.tensor(5.0)), cfg))


def test_the_flag_turns_it_off_and_cpu_training_never_captures(digits):
    assert VAEConfig().cuda_graphs is True and VAEConfig(cuda_graphs=False).cuda_graphs is False
    from vae_core.cli import build_parser

    args = build_parser().parse_args(["train", "--no-cuda-graphs"])
    assert args.cuda_graphs is False and build_parser().parse_args(["train"]).cuda_graphs is None
    trainer = Trainer(tiny_config(epochs=1), bundle=digits)
    trainer.fit()
    assert trainer.step_graph is None and "CUDA device" in trainer.graph_note


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the report of a machine without a GPU")
def test_the_gpu_benchmark_reports_each_sections_error_without_a_gpu(capsys):
    from benchmarks.gpu import main

    assert main(["--only", "mlp,nonsense"]) == 1
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["cuda"] is False and set(last["errors"]) == {"mlp", "nonsense"}
    assert "no CUDA GPU" in last["errors"]["mlp"] and "unknown section" in last["errors"]["nonsense"]


# --- on a CUDA GPU


def _fit(digits, **changes) -> Trainer:
    trainer = Trainer(tiny_config(device="cuda", **changes), bundle=digits)
    trainer.fit()
    return trainer


@cuda
@pytest.mark.parametrize("changes", [{}, dict(objective="beta-tcvae", beta=4.0),
                                     dict(objective="capacity", capacity_max=5.0, capacity_epochs=2.0),
                                     dict(shift_pixels=1, binarize=True), dict(lr_schedule="cosine")])
def test_a_graphed_run_is_the_eager_run(digits, changes):
    graphed = _fit(digits, epochs=3, **changes)
    eager = _fit(digits, epochs=3, cuda_graphs=False, **changes)
    assert graphed.step_graph is not None and graphed.step_graph.captured and graphed.step_graph.failed is None
    assert eager.step_graph is None and "--no-cuda-graphs" in eager.graph_note
    a, b = graphed.history["steps"], eager.history["steps"]
    assert len(a) == len(b) >= 20
    for x, y in zip(a, b, strict=True):
        assert x["step"] == y["step"] and math.isclose(x["loss"], y["loss"], rel_tol=1e-5, abs_tol=1e-5)
    for p, q in zip(graphed.model.parameters(), eager.model.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-5)
    assert math.isclose(graphed.metrics["test_nelbo"], eager.metrics["test_nelbo"], rel_tol=1e-5)


@cuda
def test_beta_changed_live_acts_at_the_next_graphed_step(digits):
    trainer = Trainer(tiny_config(device="cuda", epochs=2), bundle=digits)
    trainer.add_callback("on_epoch_end", lambda t, r: t.set_beta(8.0) if r["epoch"] == 1 else None)
    trainer.fit()
    steps = trainer.history["steps"]
    assert trainer.step_graph.captured and steps[0]["beta"] == 1.0 and steps[-1]["beta"] == 8.0
    twin = _fit(digits, epochs=2, cuda_graphs=False)
    twin_steps = twin.history["steps"]
    # the same run until the change, a different one after it
    first = [r for r in steps if r["epoch"] <= 1]
    assert [r["loss"] for r in first] == pytest.approx([r["loss"] for r in twin_steps[:len(first)]], rel=1e-5)
    assert steps[-1]["loss"] != pytest.approx(twin_steps[-1]["loss"], rel=1e-3)


@cuda
def test_a_resumed_graphed_run_continues_as_the_uninterrupted_one(digits, tmp_path):
    whole = _fit(digits, epochs=3)
    first = Trainer(tiny_config(device="cuda", epochs=2), bundle=digits, out_path=tmp_path / "r.pt")
    first.fit()
    from vae_core import load_checkpoint

    resumed = Trainer(tiny_config(device="cuda", epochs=3), bundle=digits, resume=load_checkpoint(tmp_path / "r.pt"))
    resumed.fit()
    assert resumed.history["steps"][-1]["loss"] == pytest.approx(whole.history["steps"][-1]["loss"], rel=1e-5)


@cuda
def test_the_apps_process_job_trains_on_cuda(tmp_path):
    from vae_core.job import ProcessTrainingJob

    job = ProcessTrainingJob(tiny_config(device="cuda", epochs=2), tmp_path / "gpu.pt").start()
    assert job.join(timeout=300)
    snap = job.snapshot()
    assert snap.status == "finished" and [e["epoch"] for e in snap.history["epochs"]] == [1, 2]


@cuda
def test_more_torchrun_ranks_than_gpus_is_one_clear_line(tmp_path):
    ranks = torch.cuda.device_count() + 1
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VAE_CHECKPOINT_DIR": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}",
                           "-m", "vae_core", "train", "--dataset", "digits", "--epochs", "1", "--device", "cuda",
                           "--quiet", "--out", str(tmp_path / "x.pt")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode != 0 and any("has no GPU" in line for line in lines), proc.stderr[-2000:]

"""Training under torchrun: two CPU processes joined with Gloo (vae_core.distributed)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import torch

from benchmarks.startup import child_pids
from tests.test_cli import REPO, ok, run_cli
from vae_core.checkpoint import load_checkpoint
from vae_core.distributed import Group

TORCHRUN = ("-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2")
# Gloo on the CPU, pinned: on a machine with one GPU `auto` would pick CUDA, and two ranks would ask for two GPUs
SMALL = ("--dataset", "mnist5k", "--model", "mlp", "--hidden-sizes", "64", "--latent-dim", "4",
         "--batch-size", "64", "--seed", "0", "--device", "cpu")


@pytest.mark.parametrize("n, world", [(10, 2), (11, 2), (7, 3), (2, 4)])
def test_each_rank_gets_an_equal_shard_and_together_they_cover_the_epoch(n, world):
    order = torch.randperm(n, generator=torch.Generator().manual_seed(1))
    shards = [Group(rank=r, world_size=world, backend="gloo").shard(order) for r in range(world)]
    assert len({len(s) for s in shards}) == 1  # the same number of steps on every rank
    assert set(torch.cat(shards).tolist()) == set(order.tolist())
    assert sum(len(s) for s in shards) == n + (-n % world)  # padded as DistributedSampler pads


def test_one_process_is_left_alone():
    order = torch.arange(5)
    model = torch.nn.Linear(2, 2)
    single = Group()
    assert single.shard(order) is order and single.wrap(model, torch.device("cpu")) is model
    assert single.sum_(torch.ones(2)).tolist() == [1.0, 1.0] and not single.active


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    """One epoch of mnist5k trained by two processes under torchrun (Gloo)."""
    cwd = tmp_path_factory.mktemp("ddp")
    proc = ok(run_cli(["train", *SMALL, "--epochs", "1", "--out", "run.pt"], cwd, launcher=TORCHRUN))
    return cwd, proc


def test_two_gloo_processes_train_and_the_loss_goes_down(ddp_run):
    cwd, proc = ddp_run
    assert "distributed: 2 processes (gloo)" in proc.stderr
    assert proc.stdout.count("saved run.pt") == 1  # rank 0 alone reports and writes
    ckpt = load_checkpoint(cwd / "run.pt")
    steps = ckpt.history["steps"]
    assert steps[-1]["nelbo"] < 0.8 * steps[0]["nelbo"]
    # each rank took half the epoch: 4,000 training images / 2 ranks / batch 64 = 32 steps
    assert ckpt.progress["step"] == 32 and ckpt.progress["epoch"] == 1
    assert not any(k.startswith("module.") for k in ckpt.model.state_dict())  # the single-process format
    # rank 0 films the run: the untrained codes first, then frames up to the last step
    frames = ckpt.film["frames"]
    assert frames[0]["step"] == 0 and frames[-1]["step"] == 32 and len(frames) >= 3
    assert frames[-1]["codes"].shape == (len(ckpt.film["indices"]), 4)


def test_the_distributed_checkpoint_evaluates_like_any_other(ddp_run):
    cwd, _ = ddp_run
    out = ok(run_cli(["eval", "run.pt"], cwd)).stdout
    assert "test nELBO" in out and "1000 test images" in out


def test_resume_under_torchrun_continues_the_history(ddp_run):
    cwd, _ = ddp_run
    ok(run_cli(["train", "--resume", "run.pt", "--epochs", "2", "--device", "cpu", "--quiet"], cwd, launcher=TORCHRUN))
    ckpt = load_checkpoint(cwd / "run.pt")
    assert [e["epoch"] for e in ckpt.history["epochs"]] == [1, 2]
    assert ckpt.progress["step"] == 64
    assert ckpt.history["epochs"][1]["test_nelbo"] < ckpt.history["epochs"][0]["test_nelbo"]
    steps = [f["step"] for f in ckpt.film["frames"]]  # the film goes on from the first run's
    assert steps[0] == 0 and steps == sorted(set(steps)) and steps[-2:] == [32, 64]


def test_a_rank_that_dies_ends_the_run_with_one_clear_line(tmp_path):
    env_cmd = [sys.executable, *TORCHRUN, "-m", "vae_core", "train", *SMALL, "--epochs", "200", "--quiet",
               "--out", "long.pt"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "VAE_CHECKPOINT_DIR": str(tmp_path / "checkpoints")}
    proc = subprocess.Popen(env_cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 240
        while not (tmp_path / "long.pt").exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        workers = child_pids(proc.pid)
        assert len(workers) == 2, workers
        os.kill(max(workers), 9)  # the second worker dies
        _, err = proc.communicate(timeout=240)
    finally:
        proc.kill()
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "distributed run stopped" in lines[0] and "--resume" in lines[0], err[-2000:]
    assert load_checkpoint(tmp_path / "long.pt").progress["epoch"] >= 1  # the last finished epoch is kept



import math
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import torch

from vae_core import Trainer, TrainingJob, VAEError, load_checkpoint
from vae_core.job import ProcessTrainingJob
from vae_core.train import TrainingFailed

from .browser import ROOT
from .conftest import tiny_config


def test_short_real_training_on_mnist5k_lowers_test_loss(mnist5k, tmp_path):
    cfg = tiny_config(dataset="mnist5k", latent_dim=8, hidden_sizes=(256,), epochs=3, batch_size=128)
    trainer = Trainer(cfg, bundle=mnist5k, out_path=tmp_path / "m.pt")
    before = trainer  # evaluate the untrained model through a 0-epoch reference
    from vae_core.evaluate import evaluate

    untrained = evaluate(before.model.eval(), mnist5k.split("test").images)["nelbo"]
    metrics = trainer.fit()
    epochs = trainer.history["epochs"]
    assert len(epochs) == 3
    assert metrics["test_nelbo"] < untrained - 200  # ~543 nats untrained, ~200 after 3 epochs
    assert epochs[-1]["test_nelbo"] < epochs[0]["test_nelbo"]
    assert math.isclose(metrics["test_nelbo"], metrics["test_recon"] + metrics["test_kl"], rel_tol=1e-6)


def test_seeded_cpu_runs_reproduce_the_same_history(digits):
    a = Trainer(tiny_config(), bundle=digits)
    b = Trainer(tiny_config(), bundle=digits)
    a.fit()
    b.fit()
    ha = [(r["recon"], r["kl"]) for r in a.history["steps"]]
    hb = [(r["recon"], r["kl"]) for r in b.history["steps"]]
    assert ha == hb and len(ha) > 5
    c = Trainer(tiny_config(seed=1), bundle=digits)
    c.fit()
    assert [(r["recon"], r["kl"]) for r in c.history["steps"]] != ha


def test_resume_continues_the_same_run(digits, tmp_path):
    full = Trainer(tiny_config(epochs=4), bundle=digits)
    full.fit()
    path = tmp_path / "half.pt"
    Trainer(tiny_config(epochs=2), bundle=digits, out_path=path).fit()
    ckpt = load_checkpoint(path)
    assert ckpt.progress["epoch"] == 2
    resumed = Trainer(ckpt.config.replace(epochs=4), bundle=digits, out_path=path, resume=ckpt)
    resumed.fit()
    assert [e["epoch"] for e in resumed.history["epochs"]] == [1, 2, 3, 4]
    for got, want in zip(resumed.history["epochs"], full.history["epochs"], strict=True):
        assert got["test_nelbo"] == pytest.approx(want["test_nelbo"], rel=1e-5)
    assert load_checkpoint(path).progress["epoch"] == 4


def test_checkpoint_written_every_epoch(digits, tmp_path):
    path = tmp_path / "e.pt"
    seen = []
    trainer = Trainer(tiny_config(epochs=3), bundle=digits, out_path=path)
    trainer.add_callback("on_epoch_end", lambda t, rec: seen.append(load_checkpoint(path).progress["epoch"]))
    trainer.fit()
    assert seen == [1, 2, 3]


def test_callbacks_report_units_and_speed(digits):
    steps, epochs = [], []
    trainer = Trainer(tiny_config(), bundle=digits)
    trainer.add_callback("on_step", lambda t, r: steps.append(r))
    trainer.add_callback("on_epoch_end", lambda t, r: epochs.append(r))
    trainer.fit()
    assert steps and {"recon", "kl", "nelbo", "beta", "images_per_s", "step", "epoch"} <= steps[0].keys()
    assert all(r["images_per_s"] > 0 for r in steps)
    assert len(epochs[-1]["kl_per_dim"]) == 4 and epochs[-1]["seconds"] > 0
    with pytest.raises(VAEError, match="event must be one of"):
        trainer.add_callback("on_banana", print)


def test_set_beta_while_running_changes_the_weight(digits):
    trainer = Trainer(tiny_config(epochs=2, beta=1.0), bundle=digits)
    trainer.add_callback("on_epoch_end", lambda t, r: t.set_beta(5.0) if r["epoch"] == 1 else None)
    trainer.fit()
    betas = [r["beta"] for r in trainer.history["steps"]]
    assert betas[0] == 1.0 and betas[-1] == 5.0


@pytest.mark.parametrize("bad", [-0.5, float("nan"), "2"])
def test_a_live_beta_is_checked_as_the_config_checks_it(digits, tmp_path, bad):
    with pytest.raises(VAEError) as from_config:
        tiny_config(beta=bad)
    trainer = Trainer(tiny_config(epochs=1), bundle=digits)
    job = TrainingJob(tiny_config(epochs=1), tmp_path / "run.pt", bundle=digits)
    for owner in (trainer, job, ProcessTrainingJob.__new__(ProcessTrainingJob)):  # checked before any command
        with pytest.raises(VAEError) as live:
            owner.set_beta(bad)
        assert str(live.value) == str(from_config.value)
    assert trainer.beta == 1.0


def test_nan_guard_stops_and_keeps_last_good_weights(digits, tmp_path):
    path = tmp_path / "nan.pt"
    trainer = Trainer(tiny_config(epochs=3), bundle=digits, out_path=path)

    def poison(t, rec):
        if rec["epoch"] == 1:
            with torch.no_grad():
                next(t.model.decoder.parameters()).fill_(float("nan"))

    trainer.add_callback("on_epoch_end", poison)
    with pytest.raises(TrainingFailed, match="loss became nan"):
        trainer.fit()
    assert trainer.status == "failed"
    saved = load_checkpoint(path)
    assert saved.progress["epoch"] == 1
    assert all(torch.isfinite(p).all() for p in saved.model.parameters())


@pytest.mark.parametrize("kind", ["thread", "process"])
def test_job_runs_in_background_and_stops_with_a_checkpoint(digits, tmp_path, kind):
    path = tmp_path / "job.pt"
    if kind == "thread":
        job = TrainingJob(tiny_config(epochs=500), path, bundle=digits).start()
    else:  # the app's: the run in a child process, its messages read by a thread here
        job = ProcessTrainingJob(tiny_config(epochs=500), path).start()
        assert job._process.pid != os.getpid() and job._process.poll() is None
    deadline = time.time() + (300 if kind == "process" else 60)  # a child first imports torch (seconds; more
    while time.time() < deadline:                                # while the suite's other workers run)
        snap = job.snapshot()
        if snap.epoch >= 1:
            break
        threading.Event().wait(0.05)
    assert snap.status == "running" and snap.step > 0 and snap.eta_s is not None
    job.pause()
    threading.Event().wait(0.2)
    paused_step = job.snapshot().step
    assert job.snapshot().status == "paused"
    threading.Event().wait(0.3)
    assert job.snapshot().step == paused_step
    job.resume()
    job.set_beta(2.5)
    job.stop()
    assert job.join(timeout=120)
    snap = job.snapshot()
    assert snap.status == "stopped" and snap.done and snap.beta == 2.5
    assert load_checkpoint(path).progress["status"] == "stopped"
    assert snap.checkpoint_path == str(path) and snap.preview["samples"].shape[1:] == (1, 8, 8)
    saved = load_checkpoint(path).history  # the job's copy, made through callbacks, is the run's history
    assert [e["epoch"] for e in snap.history["epochs"]] == [e["epoch"] for e in saved["epochs"]]
    assert len(snap.history["steps"]) == len(saved["steps"]) > 0


@pytest.mark.parametrize("job_class", [TrainingJob, ProcessTrainingJob])
def test_job_reports_failures_as_messages(tmp_path, job_class):
    job = job_class(tiny_config(dataset="folder:/nonexistent/images"), tmp_path / "x.pt").start()
    assert job.join(timeout=120)
    snap = job.snapshot()
    assert snap.status == "failed" and "image folder not found" in snap.message
    assert not (tmp_path / "x.pt").exists()


def test_a_process_job_resumes_from_a_file_and_ends_when_its_server_dies(tmp_path, tiny_checkpoint):
    resumed = ProcessTrainingJob(tiny_config(epochs=3), tmp_path / "r.pt", resume=load_checkpoint(tiny_checkpoint))
    assert resumed.start().join(timeout=120)
    snap = resumed.snapshot()
    assert snap.status == "finished" and [e["epoch"] for e in snap.history["epochs"]] == [1, 2, 3]

    # the server is killed (SIGKILL, no clean-up): its run's process ends too, within a few seconds
    script = f"""
import sys, time
sys.path.insert(0, {str(ROOT)!r})
from tests.conftest import tiny_config
from vae_core.job import ProcessTrainingJob
job = ProcessTrainingJob(tiny_config(epochs=10_000), {str(tmp_path / "k.pt")!r}).start()
while job.snapshot().step == 0:
    time.sleep(0.1)
print(job._process.pid, flush=True)
time.sleep(600)
"""
    server = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        child = int(server.stdout.readline())
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _running(child):
            time.sleep(0.2)
        assert not _running(child), "the run's process outlived its killed server"
    finally:
        server.kill()


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


def test_a_cpu_trainer_flushes_subnormal_floats_to_zero(digits):
    can_flush = torch.set_flush_denormal(False)  # False where the CPU cannot (it is x86 SSE3 only)
    tiny = torch.tensor([1e-39])  # a float32 subnormal
    assert (tiny * 1.0).item() > 0
    Trainer(tiny_config(device="cpu"), bundle=digits)
    # flushed where the CPU can (computed at full speed, not in microcode); left as it is elsewhere
    assert ((tiny * 1.0).item() == 0.0) == can_flush

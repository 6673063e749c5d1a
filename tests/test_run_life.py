"""A training run's whole life as a page sees it (issue 32, points 1-4 and 9): every state shows exactly
the controls that act in it whatever moment a button is pressed; a paused run shows no rate or ETA; a
reload (a new browser session with the run's address) finds the run again; a run nobody watches is saved
and stopped, and the count of runs at once is right; the capacity objective's live β is disabled with its
reason; the β study's default compares finished runs and says why a chosen model is not shown."""

from __future__ import annotations

import time

import pytest
import torch

from tests.conftest import tiny_config
from tests.test_app import by_label, open_app
from vae_core import VAEError
from vae_core.checkpoint import load_checkpoint
from vae_core.hosting import find_run, start_run, stop_unwatched_runs, stopped_unwatched, watch_run
from vae_core.job import RUN_CONTROLS, STATES, ProcessTrainingJob, TrainingJob, enabled_controls, live_beta_note


def wait_for(predicate, timeout: float = 180.0, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("timed out")


# --- the states and their controls


def test_every_state_has_its_controls_and_an_ended_run_has_none():
    config = tiny_config()
    assert set(STATES) >= {"starting", "running", "paused", "stepping", "stopping", "stopped", "finished", "failed"}
    assert enabled_controls("paused", config) >= {"resume", "step", "epoch", "stop"}
    assert "pause" not in enabled_controls("paused", config)
    assert {"resume", "step", "epoch"}.isdisjoint(enabled_controls("running", config))
    assert {"resume", "step", "epoch"}.isdisjoint(enabled_controls("starting", config))
    for ended in ("stopping", "stopped", "finished", "failed"):
        assert enabled_controls(ended, config) == frozenset()
    assert all(set(names) <= {"pause", "resume", "stop", "step", "epoch", "beta", "delay"}
               for names in RUN_CONTROLS.values())


@pytest.mark.parametrize("job_class", [TrainingJob, ProcessTrainingJob])
def test_pause_right_after_start_shows_paused_with_the_paused_controls_and_one_step_works(tmp_path, job_class, digits):
    extra = {"bundle": digits} if job_class is TrainingJob else {}
    job = job_class(tiny_config(epochs=500), tmp_path / "run.pt", **extra).start()
    try:
        job.pause()  # at once, while it still reads "step 0/0"
        snap = job.snapshot()
        assert snap.status == "paused"
        can = enabled_controls(snap.status, job.config)
        assert {"resume", "step", "epoch", "stop"} <= can and "pause" not in can
        assert snap.images_per_s is None and snap.eta_s is None  # nothing moves while paused

        job.advance(1)  # asked for before the run is ready: taken when it is, then paused again
        assert job.snapshot().status == "stepping"
        assert "step" not in enabled_controls("stepping", job.config)
        wait_for(lambda: job.snapshot().status == "paused" and job.snapshot().step == 1)
        time.sleep(0.5)
        snap = job.snapshot()
        assert snap.step == 1 and snap.status == "paused" and snap.eta_s is None

        job.resume()
        wait_for(lambda: job.snapshot().step > 3)
        snap = job.snapshot()
        assert snap.status == "running" and snap.images_per_s and snap.eta_s is not None
        job.stop()
        assert job.snapshot().status in ("stopping", "stopped")
        assert enabled_controls(job.snapshot().status, job.config) == frozenset() or job.snapshot().done
    finally:
        job.stop()
        assert job.join(timeout=120)
    assert job.snapshot().status == "stopped"


def test_a_pause_given_while_the_child_loads_its_data_holds_from_the_first_step(tmp_path):
    """Pause pressed when the child has connected but not yet said "ready" (the page reads "step 0/0"):
    the run takes no step before it, and One step then takes exactly one (the child once started its
    command thread beside its first step, and took that step before the pause: CI saw step 2)."""
    job = ProcessTrainingJob(tiny_config(epochs=500), tmp_path / "p.pt").start()
    try:
        wait_for(lambda: job._conn is not None)  # connected: the child reads its data now
        assert job.snapshot().step == 0
        job.pause()
        wait_for(lambda: job._ready)
        time.sleep(1.0)
        assert job.snapshot().step == 0 and job.snapshot().status == "paused"
        job.advance(1)
        wait_for(lambda: job.snapshot().status == "paused" and job.snapshot().step >= 1)
        time.sleep(0.5)
        assert job.snapshot().step == 1
    finally:
        job.stop()
        assert job.join(timeout=120)


def test_a_beta_given_while_starting_is_the_one_shown_after_it_starts(tmp_path):
    job = ProcessTrainingJob(tiny_config(epochs=500), tmp_path / "b.pt").start()
    try:
        job.set_beta(3.5)
        wait_for(lambda: job.snapshot().step > 0)
        assert job.snapshot().beta == 3.5
    finally:
        job.stop()
        job.join(timeout=120)
    assert load_checkpoint(tmp_path / "b.pt").progress["beta"] == 3.5


def test_the_capacity_objective_has_no_live_beta_and_says_why():
    config = tiny_config(objective="capacity", gamma=50.0)
    assert "beta" not in enabled_controls("running", config)
    assert "γ = 50" in live_beta_note(config)
    assert live_beta_note(tiny_config()) is None and "beta" in enabled_controls("running", tiny_config())


# --- runs a server holds: found again, watched, counted


def test_a_run_is_found_again_by_its_id_and_an_unwatched_one_is_saved_and_stopped(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_UNWATCHED_RUN_MINUTES", "1")
    job = start_run(tiny_config(epochs=10_000), tmp_path / "u.pt", watcher="tab-1")
    try:
        assert find_run(job.run_id) is job and len(job.run_id) >= 16
        assert find_run("not-a-run-id-at-all") is None and find_run("../../x") is None
        wait_for(lambda: job.snapshot().epoch >= 1)
        job.pause()  # a paused run of a closed tab held a server's memory for 25+ minutes
        now = time.monotonic()
        assert stop_unwatched_runs(lambda s: s == "tab-1", now=now) == []  # its tab is open: watched now
        assert stop_unwatched_runs(lambda s: False, now=now + 30) == []  # closed, but not for a minute yet
        assert stop_unwatched_runs(lambda s: False, now=now + 61) == [job]
        assert job.join(timeout=120) and stopped_unwatched(job)
    finally:
        job.stop()
        job.join(timeout=60)
    assert job.snapshot().status == "stopped"
    assert load_checkpoint(tmp_path / "u.pt").progress["status"] == "stopped"  # saved, nothing lost
    assert find_run(job.run_id) is job  # an ended run is found again (its result, its replay) for a while

    watched = start_run(tiny_config(epochs=10_000), tmp_path / "w.pt")
    try:
        watch_run(watched, "tab-2")  # a reload's session counts as watching from then on
        assert stop_unwatched_runs(lambda s: s == "tab-2", now=time.monotonic() + 3600) == []
        assert not stopped_unwatched(watched)
    finally:
        watched.stop()
        watched.join(timeout=120)


def test_the_refusal_counts_the_runs_that_go_on(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_MAX_CONCURRENT_RUNS", "2")
    jobs = [start_run(tiny_config(epochs=10_000), tmp_path / f"{i}.pt") for i in range(2)]
    try:
        with pytest.raises(VAEError) as refused:
            start_run(tiny_config(epochs=5), tmp_path / "third.pt")
        assert "2 going on this server, the limit is 2" in str(refused.value)
        jobs[0].stop()
        assert jobs[0].join(timeout=120)
        third = start_run(tiny_config(epochs=10_000), tmp_path / "third.pt")  # one ended: room again
        jobs.append(third)
    finally:
        for job in jobs:
            job.stop()
        for job in jobs:
            job.join(timeout=120)


# --- the Train page


def start_small_run(at, **choices) -> None:
    """The Train form set to a small digits run, then Start."""
    by_label(at.main.selectbox, "Dataset").set_value("digits")
    by_label(at.main.selectbox, "Model").set_value("mlp")
    by_label(at.main.selectbox, "Device").set_value("cpu")
    by_label(at.number_input, "Epochs").set_value(1000)
    by_label(at.text_input, "Hidden sizes").set_value("32")
    for label, value in choices.items():
        by_label(at.main.selectbox, label).set_value(value)
    by_label(at.button, "Start training").click().run()


def test_a_reload_finds_the_run_with_its_controls(checkpoint_dir):
    at = open_app(checkpoint_dir, page="train")
    start_small_run(at)
    assert not at.exception, [e.value for e in at.exception]
    job = at.session_state["train_job"]
    try:
        assert at.query_params["run"] in (job.run_id, [job.run_id])
        job.pause()
        # the reload: a new browser session opening the same address
        again = open_app(checkpoint_dir)
        again.query_params["run"] = job.run_id
        again.switch_page("pages/train.py").run()
        assert not again.exception, [e.value for e in again.exception]
        assert again.session_state["train_job"] is job
        buttons = {b.label: b for b in again.button}
        assert not buttons["Stop"].disabled and not buttons["Resume"].disabled and buttons["Pause"].disabled
        assert any("status: `paused`" in m.value for m in again.markdown)
        # how unwatched runs end, said on the page
        assert any("VAE_UNWATCHED_RUN_MINUTES" in c.value.replace("\\", "") for c in again.caption)
        progress = again.get("progress")[0].proto.text
        assert "images/s" not in progress and "ETA" not in progress  # paused: no rate, no ETA
    finally:
        job.stop()
        job.join(timeout=120)

    gone = open_app(checkpoint_dir)
    gone.query_params["run"] = "x" * 20
    gone.switch_page("pages/train.py").run()
    assert not gone.exception and any("No run" in i.value for i in gone.info)


def test_a_capacity_run_disables_the_live_beta_with_the_reason(checkpoint_dir):
    at = open_app(checkpoint_dir, page="train")
    start_small_run(at, **{"Objective": "capacity"})
    assert not at.exception, [e.value for e in at.exception]
    job = at.session_state["train_job"]
    try:
        beta = next(s for s in at.slider if s.label == "β, live")
        assert beta.disabled
        assert any("capacity objective" in c.value for c in at.caption)
    finally:
        job.stop()
        job.join(timeout=120)


# --- the β study


def test_the_beta_study_compares_finished_runs_and_says_why_one_is_left_out(checkpoint_dir, tiny_checkpoint):
    import shutil

    for beta in (1, 4):
        raw = torch.load(tiny_checkpoint, weights_only=True)
        raw["config"]["beta"] = float(beta)
        torch.save(raw, checkpoint_dir / f"done-beta{beta}.pt")
    abandoned = torch.load(tiny_checkpoint, weights_only=True)
    abandoned["config"]["beta"] = 8.0
    abandoned["progress"] = {**abandoned["progress"], "status": "running", "pid": 2**22 + 12345}  # a dead process
    torch.save(abandoned, checkpoint_dir / "abandoned-beta8.pt")
    empty = torch.load(tiny_checkpoint, weights_only=True)
    empty["config"]["beta"] = 2.0
    empty["metrics"] = {}
    empty["progress"] = {**empty["progress"], "status": "stopped", "epoch": 0}
    torch.save(empty, checkpoint_dir / "no-epoch-beta2.pt")
    shutil.copyfile(checkpoint_dir / "done-beta1.pt", checkpoint_dir / "zz-selected.pt")

    at = open_app(checkpoint_dir, page="beta_study")
    chosen = at.multiselect(key="beta_chosen")
    assert not any("abandoned" in p or "no-epoch" in p for p in chosen.value)
    assert any("done-beta4" in p for p in chosen.value)

    chosen.set_value([str(checkpoint_dir / n) for n in ("done-beta1.pt", "abandoned-beta8.pt", "no-epoch-beta2.pt")])
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    said = " ".join(w.value for w in at.warning).replace("\\", "")
    assert "no-epoch-beta2" in said  # a chosen model is never left out silently
    notes = " ".join(c.value for c in at.caption).replace("\\", "")
    assert "abandoned-beta8: its run was interrupted" in notes

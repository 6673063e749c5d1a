"""The command line contract, run as real subprocesses: `python -m vae_core train | eval | info`."""

from __future__ import annotations

import json
import math
import os
import pickle
import shlex
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
TINY = ["--dataset", "digits", "--model", "mlp", "--latent-dim", "4", "--hidden-sizes", "32",
        "--epochs", "2", "--batch-size", "64", "--device", "cpu", "--quiet"]


def run_cli(args, cwd: Path, timeout: float = 300, launcher: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """`python -m vae_core ARGS` in `cwd`; `launcher` goes between python and `-m vae_core` (e.g. torchrun's
    `-m torch.distributed.run --nproc_per_node=2`)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env["VAE_DATA_ROOT"] = str(cwd / "no-data-here")  # never the user's cache
    env["VAE_CHECKPOINT_DIR"] = str(cwd / "checkpoints")  # never the project's library
    env.setdefault("OMP_NUM_THREADS", "1")  # several runs share the cores; no thread oversubscription
    return subprocess.run([sys.executable, *launcher, "-m", "vae_core", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "Traceback" not in proc.stdout + proc.stderr
    return proc


def one_json(proc: subprocess.CompletedProcess) -> dict:
    lines = [line for line in ok(proc).stdout.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stdout
    return json.loads(lines[0])


def run_chain(cwd: Path, *commands) -> list[subprocess.CompletedProcess]:
    """Run commands one after another in `cwd`, stopping at the first failure."""
    procs = []
    for args in commands:
        procs.append(run_cli(args, cwd))
        if procs[-1].returncode != 0:
            break
    return procs


class Payload:
    """Unpickling this runs a shell command that creates a marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


BAD_INPUTS = {
    "unknown dataset": ["train", "--dataset", "imagenet", "--epochs", "1", "--quiet", "--out", "x.pt"],
    "negative beta": ["train", *TINY, "--beta", "-1", "--out", "x.pt"],
    "bad model choice": ["train", *TINY, "--model", "transformer", "--out", "x.pt"],
    "missing checkpoint": ["eval", "does-not-exist.pt", "--json"],
    "text file as checkpoint": ["info", "notes.txt"],
    "pickle payload": ["info", "payload.pkl"],
    "torch.save payload": ["eval", "payload.pt"],
    "resume with changed latent dim": ["train", "--resume", "resume-me.pt", "--latent-dim", "8",
                                       "--epochs", "3", "--quiet"],
}


def prepare_bad_files(d: Path, tiny: Path) -> None:
    (d / "notes.txt").write_text("these are my notes, not a model\n")
    with open(d / "payload.pkl", "wb") as f:
        pickle.dump(Payload(d / "PWNED-pickle"), f)
    torch.save({"format": "vae-latent-explorer", "x": Payload(d / "PWNED-torch")}, d / "payload.pt")
    shutil.copy(tiny, d / "resume-me.pt")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every CLI run of this module, started as early as its inputs allow and run a few at a time
    (each is a fresh Python that imports torch: run one by one they would take minutes).

    Yields (folders, {name: Future of a CompletedProcess or a list of them}).
    """
    base = tmp_path_factory.mktemp("cli")
    dirs = {k: base / k for k in ("tiny", "default", "mnist5k", "resume", "bad")}
    for d in dirs.values():
        d.mkdir()
    pool = ThreadPoolExecutor(max_workers=4)
    jobs: dict = {}
    try:
        jobs["tiny"] = pool.submit(run_cli, ["train", *TINY, "--out", "tiny.pt"], dirs["tiny"])
        jobs["mnist5k"] = pool.submit(  # the "done when" command, with its progress bar
            run_chain, dirs["mnist5k"], ["train", "--dataset", "mnist5k", "--epochs", "1", "--out", "m.pt"],
            ["eval", "m.pt", "--json"])
        jobs["default"] = pool.submit(run_chain, dirs["default"], ["train", *TINY], ["train", *TINY])
        tiny = dirs["tiny"] / "tiny.pt"
        if jobs["tiny"].result().returncode == 0 and tiny.is_file():
            jobs["eval"] = pool.submit(run_cli, ["eval", tiny, "--json"], dirs["tiny"])
            jobs["info"] = pool.submit(run_cli, ["info", tiny, "--json"], dirs["tiny"])
            shutil.copy(tiny, dirs["resume"] / "resumed.pt")
            jobs["resume"] = pool.submit(
                run_chain, dirs["resume"], ["train", "--resume", "resumed.pt", "--epochs", "3", "--quiet"],
                ["info", "resumed.pt", "--json"])
            prepare_bad_files(dirs["bad"], tiny)
            jobs["resume-me"] = (dirs["bad"] / "resume-me.pt").read_bytes()
            for case, args in BAD_INPUTS.items():
                jobs[case] = pool.submit(run_cli, args, dirs["bad"])
        yield dirs, jobs
    finally:
        pool.shutdown(wait=True)


def result(runs, name: str):
    _, jobs = runs
    if name not in jobs:
        tiny = jobs["tiny"].result()
        pytest.fail(f"not run: training the shared tiny model failed (exit {tiny.returncode})\n"
                    f"{tiny.stderr}")
    return jobs[name].result()


def test_train_saves_a_checkpoint(runs):
    dirs, _ = runs
    proc = ok(result(runs, "tiny"))
    path = dirs["tiny"] / "tiny.pt"
    assert "saved" in proc.stdout and "tiny.pt" in proc.stdout
    assert "nats" in proc.stdout
    assert path.is_file() and path.stat().st_size > 0
    assert sorted(p.name for p in dirs["tiny"].iterdir()) == ["tiny.pt"]  # no temp file left over


def test_eval_json(runs):
    m = one_json(result(runs, "eval"))
    for key in ("test_nelbo", "test_recon", "test_kl"):
        assert isinstance(m[key], float) and math.isfinite(m[key]), key
    assert isinstance(m["active_units"], int) and 0 <= m["active_units"] <= 4
    assert m["test_kl"] >= 0 and m["test_recon"] > 0
    assert m["test_nelbo"] == pytest.approx(m["test_recon"] + m["test_kl"], rel=1e-5, abs=1e-4)
    assert m["dataset"] == "digits" and m["latent_dim"] == 4 and m["n_test"] == 360
    assert m["likelihood"] == "Bernoulli on grey levels" and m["units"] == "nats per example"
    assert len(m["kl_per_dim"]) == 4


def test_info_json(runs):
    info = one_json(result(runs, "info"))
    c = info["config"]
    assert c["dataset"] == "digits" and c["model"] == "mlp" and c["latent_dim"] == 4
    assert c["hidden_sizes"] == [32] and c["epochs"] == 2 and c["batch_size"] == 64
    assert isinstance(c["beta"], (int, float)) and c["beta"] == 1.0
    assert info["image_shape"] == [1, 8, 8]
    assert info["history"]["epochs"] == 2
    assert info["progress"]["epoch"] == 2
    assert math.isfinite(info["history"]["last_test_nelbo"])


def test_default_out_path_does_not_overwrite(runs):
    dirs, _ = runs
    procs = result(runs, "default")
    assert len(procs) == 2
    first, second = (ok(p) for p in procs)
    files = sorted(p.name for p in (dirs["default"] / "checkpoints").iterdir())
    assert files == ["digits-mlp-z4-beta1-2.pt", "digits-mlp-z4-beta1.pt"]
    assert "saved checkpoints/digits-mlp-z4-beta1.pt" in first.stdout
    assert "saved checkpoints/digits-mlp-z4-beta1-2.pt" in second.stdout


def test_resume_continues_training(runs):
    procs = result(runs, "resume")
    assert len(procs) == 2
    assert "saved resumed.pt" in ok(procs[0]).stdout
    info = one_json(procs[1])
    assert info["history"]["epochs"] == 3
    assert info["progress"]["epoch"] == 3
    assert info["config"]["epochs"] == 3 and info["config"]["latent_dim"] == 4


# --- bad input: one line on stderr, exit status 2, never a traceback


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_and_status_2(runs, case):
    proc = result(runs, case)
    assert proc.returncode == 2, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].strip(), f"stderr:\n{proc.stderr}"
    assert lines[0].startswith("error: ")


def test_bad_input_messages_say_what_is_wrong(runs):
    msg = {case: result(runs, case).stderr for case in BAD_INPUTS}
    assert "imagenet" in msg["unknown dataset"] and "mnist5k" in msg["unknown dataset"]
    assert "beta" in msg["negative beta"]
    assert "transformer" in msg["bad model choice"] and "conv" in msg["bad model choice"]
    assert "does-not-exist.pt" in msg["missing checkpoint"]
    assert "notes.txt" in msg["text file as checkpoint"]
    assert "payload.pkl" in msg["pickle payload"] and "payload.pt" in msg["torch.save payload"]
    assert "latent_dim" in msg["resume with changed latent dim"]


def test_payloads_execute_nothing(runs):
    dirs, _ = runs
    for case in ("pickle payload", "torch.save payload"):
        assert result(runs, case).returncode == 2
    assert not (dirs["bad"] / "PWNED-pickle").exists()
    assert not (dirs["bad"] / "PWNED-torch").exists()


def test_bad_input_leaves_files_alone(runs):
    dirs, jobs = runs
    for case in BAD_INPUTS:
        result(runs, case)  # all finished
    assert (dirs["bad"] / "resume-me.pt").read_bytes() == jobs["resume-me"]  # a refused resume saves nothing
    assert not (dirs["bad"] / "x.pt").exists()
    assert not (dirs["bad"] / "checkpoints").exists()


# --- the "done when": the default dataset, one epoch


def test_mnist5k_smoke(runs):
    dirs, _ = runs
    procs = result(runs, "mnist5k")
    assert len(procs) == 2, procs[-1].stderr
    assert "saved m.pt" in ok(procs[0]).stdout and (dirs["mnist5k"] / "m.pt").is_file()
    m = one_json(procs[1])
    assert m["dataset"] == "mnist5k" and m["n_test"] == 1000 and m["latent_dim"] == 16
    assert math.isfinite(m["test_nelbo"]) and 0 < m["test_nelbo"] < 300
    assert m["likelihood"] == "Bernoulli on grey levels"


def test_a_run_cleans_what_killed_saves_left_in_its_folders(tmp_path):
    """The library and the folder of --out: a dead writer's temp file goes, a live one's stays."""
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    folders = [tmp_path / "checkpoints", tmp_path / "elsewhere"]
    for folder in folders:
        folder.mkdir()
        (folder / f".x.pt.{ended.pid}-5802fa49.tmp").write_bytes(b"partial")
        (folder / f".y.pt.{os.getpid()}-5802fa49.tmp").write_bytes(b"partial")  # pytest may be mid-save
    ok(run_cli(["train", *TINY, "--epochs", "1", "--out", "elsewhere/run.pt"], tmp_path))
    assert [sorted(p.name for p in f.iterdir()) for f in folders] == [
        [f".y.pt.{os.getpid()}-5802fa49.tmp"], [f".y.pt.{os.getpid()}-5802fa49.tmp", "run.pt"]]

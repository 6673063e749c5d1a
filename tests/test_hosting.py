"""Hosting a shared server: safe upload names, data paths confined to allowed roots, images scaled
not clipped, honest warnings for degenerate runs, accurate messages for unreadable files, stale
temp files cleaned after a kill, interrupted runs recognised (and resumed from the Train page), and
page-started runs limited in number, time and threads."""

from __future__ import annotations

import io
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import tiny_config
from tests.test_app import open_app
from vae_core import Trainer, VAEError, load_checkpoint
from vae_core.checkpoint import clean_stale_temp_files, run_interrupted
from vae_core.cli import main as cli_main
from vae_core.data import read_image
from vae_core.device import background_thread_setup
from vae_core.health import epoch_warnings
from vae_core.hosting import (
    allowed_data_roots,
    clean_scratch,
    confine_path,
    page_thread_setup,
    safe_upload_stem,
    session_folder,
    start_run,
    stopped_at_time_limit,
)

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("default_limits")  # each test starts from the local defaults


# --- names


@pytest.mark.parametrize("upload,stem", [
    ("mnist5k-conv-z16.pt", "mnist5k-conv-z16"),
    ("model.pt.pt", "model"),
    (".pt", "checkpoint"),
    (".hidden.PT", "hidden"),
    ("../../etc/passwd.pt", "passwd"),
    ("C:\\Users\\me\\net.pth", "net"),
    ("**bold** [x](http://evil) <img src=x>.pt", "evil-img-src-x"),  # '/' splits folder parts
    ("ｍｎｉｓｔ５ｋ.ckpt", "mnist5k"),  # full-width look-alikes become plain ASCII
    ("x" * 300 + ".pt", "x" * 64),
])
def test_upload_names_become_safe_marked_stems(upload, stem):
    safe = safe_upload_stem(upload)
    assert safe.startswith(f"{stem}-upload-") and len(safe) == len(stem) + len("-upload-") + 4
    assert not safe.startswith(".") and all(c.isascii() and (c.isalnum() or c in "._-") for c in safe)


# --- data paths


def test_paths_are_confined_to_the_allowed_roots(tmp_path):
    data, outside = tmp_path / "data", tmp_path / "outside"
    (data / "faces").mkdir(parents=True)
    outside.mkdir()
    (data / "link").symlink_to(outside)
    assert confine_path("faces", [data]) == data / "faces"
    assert confine_path(str(data / "faces"), [data]) == data / "faces"
    refusals = {}
    for text in ("/etc", "/no/such/folder", "../outside", "link", "faces/../../outside", "/"):
        with pytest.raises(VAEError) as err:
            confine_path(text, [data])
        refusals[text] = str(err.value).replace(repr(text), "PATH")
    assert len(set(refusals.values())) == 1  # the same words whether or not the path exists
    assert "VAE_ALLOWED_DATA_ROOTS" in refusals["/etc"]


def test_allowed_roots_default_to_the_project_data_and_the_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("VAE_ALLOWED_DATA_ROOTS", raising=False)
    monkeypatch.setenv("VAE_DATA_ROOT", str(tmp_path / "cache"))
    assert allowed_data_roots() == [(ROOT / "data").resolve(), (tmp_path / "cache").resolve()]
    monkeypatch.setenv("VAE_ALLOWED_DATA_ROOTS", f"{tmp_path / 'a'}{os.pathsep}{tmp_path / 'b'}")
    assert allowed_data_roots() == [(tmp_path / "a").resolve(), (tmp_path / "b").resolve()]


def test_a_folder_that_cannot_be_listed_is_a_message(tmp_path, monkeypatch):
    from vae_core.data import load_dataset

    def denied(self, pattern):
        raise PermissionError(13, "Permission denied", str(self / "proc" / "1" / "cwd"))

    monkeypatch.setattr(Path, "rglob", denied)
    with pytest.raises(VAEError, match=r"cannot be read whole \(Permission denied\)"):
        load_dataset(f"folder:{tmp_path}")


# --- scratch


def test_session_folders_are_created_touched_and_cleaned_when_old(monkeypatch, tmp_path):
    monkeypatch.setenv("VAE_SCRATCH_DIR", str(tmp_path))
    old, fresh = session_folder("a" * 16), session_folder("b" * 16)
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    assert clean_scratch(max_age_s=3600) == [old]
    assert not old.exists() and fresh.exists()
    with pytest.raises(VAEError, match="hex"):
        session_folder("../../etc")


# --- images


def _png(array: np.ndarray, fmt: str = "PNG", mode: str | None = None) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array, mode=mode).save(out, format=fmt)
    return out.getvalue()


def test_a_16_bit_png_is_scaled_not_clipped():
    ramp = np.linspace(0, 65535, 28 * 28).reshape(28, 28).astype(np.uint16)
    image = read_image(_png(ramp), (1, 28, 28))
    assert image.shape == (1, 1, 28, 28)
    assert float(image.min()) == pytest.approx(0, abs=0.01) and float(image.max()) == pytest.approx(1, abs=0.01)
    assert float(image.mean()) == pytest.approx(0.5, abs=0.02)  # clipped to 8 bits it would be almost all white
    assert read_image(_png(ramp), (3, 32, 32)).shape == (1, 3, 32, 32)


def test_a_float_hdr_image_is_scaled_into_unit_range():
    hdr = np.linspace(0, 8, 28 * 28).reshape(28, 28).astype(np.float32)
    image = read_image(_png(hdr, "TIFF", "F"), (1, 28, 28))
    assert float(image.max()) == pytest.approx(1, abs=0.01) and float(image.mean()) == pytest.approx(0.5, abs=0.02)


# --- honest runs


def _record(nelbo: float, active: int = 3) -> dict:
    return {"test_nelbo": nelbo, "active_units": active}


def test_health_warnings_name_each_degenerate_case():
    varied = torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    same = varied.mean(0, keepdim=True).expand(8, -1, -1, -1)
    healthy = {"originals": varied, "reconstructions": varied * 0.9}
    assert epoch_warnings(_record(40.0), [_record(45.0)], "Bernoulli on grey levels", healthy) == []
    negative = epoch_warnings(_record(-677.0), [], "Gaussian, learned pixel sigma", healthy)
    assert len(negative) == 1 and "-677.0 nats" in negative[0] and "σ" in negative[0]
    assert "exploding" in epoch_warnings(_record(900.0), [_record(50.0)], "x", healthy)[0]
    assert "do not read it as a likelihood" in epoch_warnings(_record(99_876_379.0), [], "x", healthy)[0]
    identical = epoch_warnings(_record(40.0), [], "x", {"originals": varied, "reconstructions": same})
    assert len(identical) == 1 and "nearly identical" in identical[0]
    assert "collapsed to the prior" in epoch_warnings(_record(40.0, active=0), [], "x", healthy)[0]


def test_a_collapsed_sigma_run_warns_in_history_checkpoint_and_cli(tmp_path, capsys):
    out = tmp_path / "sigma.pt"
    code = cli_main(["train", "--dataset", "digits", "--model", "mlp", "--latent-dim", "4", "--hidden-sizes", "64",
                     "--likelihood", "gaussian", "--sigma-mode", "pixel", "--lr", "0.1", "--epochs", "3",
                     "--device", "cpu", "--quiet", "--out", str(out)])
    assert code == 0
    ckpt = load_checkpoint(out)
    assert ckpt.metrics["test_nelbo"] < 0
    assert any("negative" in w for w in ckpt.metrics["warnings"])
    assert ckpt.history["epochs"][-1]["warnings"] == ckpt.metrics["warnings"]
    assert "warning: test nELBO is" in capsys.readouterr().err


def test_a_healthy_run_has_no_warnings(tiny_checkpoint):
    assert load_checkpoint(tiny_checkpoint).metrics["warnings"] == []


# --- unreadable files


class _Payload:
    def __reduce__(self):
        return (os.system, ("true",))


@pytest.mark.parametrize("content,message", [
    (os.urandom(4096), "is not a readable checkpoint: its bytes are neither a PyTorch archive nor a pickle"),
    (pickle.dumps(_Payload()), "holds Python objects a checkpoint may not contain; refused (nothing in it was run)"),
    (None, "is truncated or corrupt: it starts as a PyTorch archive but cannot be read whole"),
])
def test_unreadable_files_get_accurate_whole_messages(content, message, tmp_path, tiny_checkpoint):
    path = tmp_path / "bad.pt"
    path.write_bytes(content if content is not None else tiny_checkpoint.read_bytes()[:3000])
    with pytest.raises(VAEError) as err:
        load_checkpoint(path)
    assert str(err.value) == f"{path} {message}"


# --- killed runs


KILLED_MID_SAVE = """
import os, signal, sys
import torch
import vae_core.checkpoint as ck
from tests.conftest import tiny_config
from tests.test_app import open_app
from vae_core import build_model

def dying_save(obj, f):  # half a file written, then the process is killed
    with open(f, "wb") as fh:
        fh.write(b"PK\\x03\\x04" + b"0" * 100_000)
        fh.flush()
    os.kill(os.getpid(), signal.SIGKILL)

config = tiny_config()
ck.torch.save = dying_save
ck.save_checkpoint(sys.argv[1], config=config, model=build_model(config, (1, 8, 8)))
"""


def kill_mid_save(target: Path) -> list[Path]:
    """Run a save in a subprocess that is killed half-way; the temp files it left."""
    proc = subprocess.run([sys.executable, "-c", KILLED_MID_SAVE, str(target)], cwd=ROOT, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    return list(target.parent.glob(".*.tmp"))


def test_a_save_killed_midway_leaves_a_temp_file_that_the_next_start_removes(tmp_path):
    left = kill_mid_save(tmp_path / "run.pt")
    assert len(left) == 1 and not (tmp_path / "run.pt").exists()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:  # a save in progress in a live process is left alone
        in_progress = tmp_path / f".other.pt.{sleeper.pid}-abcdef12.tmp"
        in_progress.write_bytes(b"partial")
        assert clean_stale_temp_files(tmp_path) == left
        assert in_progress.exists() and not left[0].exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_run_saved_as_running_by_a_dead_process_is_interrupted():
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    assert run_interrupted({"status": "running", "pid": int(dead.stdout)})
    assert run_interrupted({"status": "running"})  # saved before runs recorded their process
    assert run_interrupted({"status": "running", "pid": os.getpid()})  # ours, but no run of it goes on
    assert not run_interrupted({"status": "running", "pid": os.getpid()}, running_here=True)
    assert not run_interrupted({"status": "finished", "pid": int(dead.stdout)})


# --- runs started from pages


def test_page_runs_are_limited_in_number_and_time(monkeypatch, tmp_path, digits):
    monkeypatch.setenv("VAE_MAX_CONCURRENT_RUNS", "1")
    first = start_run(tiny_config(epochs=10_000), tmp_path / "a.pt")
    try:
        with pytest.raises(VAEError, match="too many training runs at once.*VAE_MAX_CONCURRENT_RUNS"):
            start_run(tiny_config(epochs=5), tmp_path / "b.pt")
    finally:
        first.stop()
        assert first.join(timeout=300)  # a child process: slow to start and stop while other tests run
    monkeypatch.setenv("VAE_MAX_TRAIN_MINUTES", "0.002")  # 0.12 s
    timed = start_run(tiny_config(epochs=10_000), tmp_path / "c.pt")
    assert timed.join(timeout=300)
    assert timed.snapshot().status == "stopped" and stopped_at_time_limit(timed)
    assert not stopped_at_time_limit(first)


def test_a_training_thread_uses_fewer_threads_and_a_lower_priority():
    seen = {}

    def worker():
        before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) if sys.platform == "linux" else 0
        background_thread_setup()
        seen["threads"] = torch.get_num_threads()
        after = os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) if sys.platform == "linux" else 1
        seen["nicer"] = after > before

    main_threads, interval = torch.get_num_threads(), sys.getswitchinterval()
    sys.setswitchinterval(0.005)  # Python's default
    try:
        t = threading.Thread(target=worker)
        t.start()
        t.join()
        # the interpreter lock changes hands more often, so page threads do not wait 5 ms at each torch call
        assert sys.getswitchinterval() == pytest.approx(0.001)
    finally:
        sys.setswitchinterval(interval)
    assert seen["threads"] == max(1, (os.cpu_count() or 1) - 1) and seen["nicer"]
    assert torch.get_num_threads() == main_threads  # the server's own threads keep theirs


def _threads_after(setup) -> int:
    """torch's intra-op threads in a new thread after `setup()` ran there."""
    seen = []
    t = threading.Thread(target=lambda: (setup(), seen.append(torch.get_num_threads())))
    t.start()
    t.join()
    return seen[0]


def test_a_page_thread_computes_on_one_intra_op_thread_unless_told(monkeypatch):
    monkeypatch.delenv("VAE_PAGE_THREADS", raising=False)
    main_threads = torch.get_num_threads()
    assert _threads_after(page_thread_setup) == 1
    monkeypatch.setenv("VAE_PAGE_THREADS", "3")
    assert _threads_after(page_thread_setup) == 3
    assert torch.get_num_threads() == main_threads
    monkeypatch.setenv("VAE_PAGE_THREADS", "0")
    with pytest.raises(VAEError, match="VAE_PAGE_THREADS must be a whole number >= 1"):
        page_thread_setup()


def test_trainer_refuses_to_download_when_told_not_to(tmp_path):
    with pytest.raises(VAEError, match="downloads are off"):
        Trainer(tiny_config(dataset="mnist", data_root=str(tmp_path)), download=False)
    assert list(tmp_path.iterdir()) == []



KILLED_AFTER_EPOCH_1 = """
import os, signal, sys
from tests.conftest import tiny_config
from tests.test_app import open_app
from vae_core import Trainer

def die(trainer, record):  # the epoch's checkpoint is written; then the server is killed
    os.kill(os.getpid(), signal.SIGKILL)

trainer = Trainer(tiny_config(epochs=3, latent_dim=2), out_path=sys.argv[1])
trainer.add_callback("on_epoch_end", die)
trainer.fit()
"""


def test_the_app_shows_a_killed_run_as_interrupted_and_resumes_it(checkpoint_dir):
    path = checkpoint_dir / "digits-mlp-z2.pt"
    proc = subprocess.run([sys.executable, "-c", KILLED_AFTER_EPOCH_1, str(path)], cwd=ROOT, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    killed = load_checkpoint(path)
    assert killed.progress["status"] == "running" and killed.progress["epoch"] == 1

    at = open_app(checkpoint_dir, page="train")
    assert "Interrupted: the server stopped during epoch 2 of 3" in at.sidebar.warning[0].value
    assert "interrupted after epoch 1 of 3" in at.main.warning[0].value.replace("\\", "")
    at.button(key="resume_interrupted").click().run()
    assert not at.exception and not at.error
    job = at.session_state["train_job"]
    assert job.join(timeout=300) and job.snapshot().status == "finished"

    resumed = load_checkpoint(path)  # the same file, continued from its saved epoch
    assert resumed.progress["status"] == "finished"
    assert [e["epoch"] for e in resumed.history["epochs"]] == [1, 2, 3]
    assert resumed.history["epochs"][0] == killed.history["epochs"][0]
    at.run()
    assert not at.exception and not at.warning  # no longer interrupted

import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from vae_core import VAEConfig, VAEError, build_model, load_checkpoint, save_checkpoint
from vae_core.checkpoint import clean_stale_temp_files, read_payload, temp_name


def test_round_trip_gives_identical_outputs(tiny_checkpoint, digits):
    ckpt = load_checkpoint(tiny_checkpoint)
    again = load_checkpoint(tiny_checkpoint)
    x = digits.images[:16]
    with torch.no_grad():
        mu_a, lv_a = ckpt.model.encode(x)
        mu_b, lv_b = again.model.encode(x)
        assert torch.equal(mu_a, mu_b) and torch.equal(lv_a, lv_b)
        assert torch.equal(ckpt.model.decode(mu_a), again.model.decode(mu_b))
    assert ckpt.config.dataset == "digits" and ckpt.image_shape == (1, 8, 8)
    assert ckpt.metrics["test_nelbo"] > 0 and ckpt.optimizer_state is not None
    assert {"torch", "python", "vae_core"} <= ckpt.versions.keys()


def test_saved_weights_equal_model_weights(tmp_path):
    cfg = VAEConfig(latent_dim=3, hidden_sizes=(16,))
    model = build_model(cfg, (1, 8, 8), seed=3)
    path = save_checkpoint(tmp_path / "w.pt", config=cfg, model=model)
    loaded = load_checkpoint(path).model
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=False):
        assert torch.equal(a, b), k
    assert not loaded.training


def test_save_is_atomic_and_keeps_old_file_on_failure(tmp_path, monkeypatch):
    cfg = VAEConfig(latent_dim=2, hidden_sizes=(8,))
    model = build_model(cfg, (1, 8, 8), seed=0)
    path = save_checkpoint(tmp_path / "a.pt", config=cfg, model=model, metrics={"x": 1.0})
    before = path.read_bytes()

    def broken_save(obj, f, *a, **k):
        with open(f, "wb") as fh:
            fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        save_checkpoint(path, config=cfg, model=model)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pt"]


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _bad_files(tmp_path, good_path):
    files = {}
    files["empty"] = tmp_path / "empty.pt"
    files["empty"].write_bytes(b"")
    files["text"] = tmp_path / "notes.pt"
    files["text"].write_text("hello, not a checkpoint\n")
    files["truncated"] = tmp_path / "truncated.pt"
    files["truncated"].write_bytes(good_path.read_bytes()[:2000])
    files["pickle"] = tmp_path / "evil.pt"
    with open(files["pickle"], "wb") as fh:
        pickle.dump({"format": "vae-latent-explorer", "x": _Exploit(tmp_path / "pwned")}, fh)
    files["torch_pickle"] = tmp_path / "evil2.pt"
    torch.save({"payload": _Exploit(tmp_path / "pwned2")}, files["torch_pickle"])
    files["foreign"] = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, files["foreign"])
    payload = read_payload(good_path)
    payload["config"] = {**payload["config"], "latent_dim": payload["config"]["latent_dim"] + 3}
    files["architecture"] = tmp_path / "mismatch.pt"
    torch.save(payload, files["architecture"])
    return files


@pytest.mark.parametrize("kind,message", [
    ("empty", "empty"),
    ("text", "not a readable checkpoint"),
    ("truncated", "truncated or corrupt"),
    ("pickle", "not a readable checkpoint|refused"),
    ("torch_pickle", "refused"),
    ("foreign", "not a VAE Latent Explorer checkpoint"),
    ("architecture", "does not match the model its config describes"),
])
def test_bad_checkpoints_are_one_line_errors_and_run_nothing(kind, message, tmp_path, tiny_checkpoint):
    path = _bad_files(tmp_path, tiny_checkpoint)[kind]
    with pytest.raises(VAEError, match=message) as err:
        load_checkpoint(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "pwned2").exists()


def test_missing_and_folder_paths(tmp_path):
    with pytest.raises(VAEError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "nope.pt")
    with pytest.raises(VAEError, match="is a folder"):
        load_checkpoint(tmp_path)


# --- temp files left by a killed save


def dead_pid() -> int:
    """The id of a process that has ended (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_only_temp_files_of_dead_writers_are_removed(tmp_path, tiny_checkpoint):
    dead, now = dead_pid(), time.time()
    real = tmp_path / "digits-mlp-z16-beta1.pt"
    real.write_bytes(tiny_checkpoint.read_bytes())
    gone = [tmp_path / f".digits-mlp-z16-beta1.pt.{dead}-5802fa49.tmp",  # a killed save
            tmp_path / f".map.npy.{dead}-0123abcd.tmp",  # any atomic write named by checkpoint.temp_name
            tmp_path / f".mine.pt.{os.getpid()}-00000000.tmp",  # our pid, but older than this process
            tmp_path / ".old.pt.89abcdef.tmp"]  # no pid (saves before names had one), over an hour old
    kept = [tmp_path / f".mine.pt.{os.getpid()}-5802fa49.tmp",  # this live process may be mid-save
            tmp_path / f".parent.pt.{os.getppid()}-5802fa49.tmp",  # so may another live one
            tmp_path / ".fresh.pt.89abcdef.tmp",  # no pid, recent: may be mid-save
            tmp_path / "notes.tmp", tmp_path / ".hidden", tmp_path / ".a.pt.tmp",
            tmp_path / f".a.pt.{dead}-5802FA49.tmp", tmp_path / f".a.pt.{dead}-5802fa4.tmp",
            tmp_path / f".a.pt.{dead}-5802fa49.tmp.bak", tmp_path / f"a.pt.{dead}-5802fa49.tmp",
            tmp_path / f"..{dead}-5802fa49.tmp"]
    for path in gone + kept:
        path.write_bytes(b"partial")
    for path in gone[2:]:
        os.utime(path, (now - 7200, now - 7200))
    folder = tmp_path / f".dir.pt.{dead}-5802fa49.tmp"  # named like one, but a folder
    folder.mkdir()
    link = tmp_path / f".link.pt.{dead}-5802fa49.tmp"
    link.symlink_to(real)
    assert sorted(clean_stale_temp_files(tmp_path)) == sorted(gone)
    assert all(p.exists() for p in kept) and folder.is_dir() and link.is_symlink()
    assert load_checkpoint(real).config.latent_dim == 4
    assert clean_stale_temp_files(tmp_path) == []  # nothing left to remove


def test_cleaning_a_missing_folder_or_a_file_does_nothing(tmp_path):
    assert clean_stale_temp_files(tmp_path / "missing") == []
    (tmp_path / "file").write_text("x")
    assert clean_stale_temp_files(tmp_path / "file") == []
    assert (tmp_path / "file").read_text() == "x"


def test_saves_name_their_temp_files_after_the_writing_process(tmp_path):
    name = temp_name(tmp_path / "a.pt").name
    assert name.startswith(f".a.pt.{os.getpid()}-") and name.endswith(".tmp")
    assert clean_stale_temp_files(tmp_path) == []


SAVING_IN_A_LOOP = """
import os, sys, time
from pathlib import Path
import vae_core.checkpoint as ck
from tests.conftest import tiny_config
from vae_core import build_model

folder, prefix = Path(sys.argv[1]), sys.argv[2]
replace = os.replace

def replace_then_hang(src, dst):  # from the fourth save on, the temp file is written and then the save waits
    if len(list(folder.glob(prefix + "-*.pt"))) >= 3:
        time.sleep(600)
    replace(src, dst)

os.replace = replace_then_hang
config = tiny_config()
model = build_model(config, (1, 8, 8))
for i in range(1000):
    ck.save_checkpoint(folder / f"{prefix}-{i % 3}.pt", config=config, model=model, progress={"step": i})
"""


def test_a_save_loop_killed_with_sigkill_leaves_a_temp_file_that_cleaning_removes(tmp_path):
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    savers = {prefix: subprocess.Popen([sys.executable, "-c", SAVING_IN_A_LOOP, str(tmp_path), prefix], cwd=root,
                                       env=env) for prefix in ("killed", "alive")}
    try:
        deadline = time.monotonic() + 120
        def hanging():  # each wrote its three files and hangs in its fourth save (its first file again)
            finals = {p.name for p in tmp_path.glob("*.pt")}
            temps = {p.name.split(".")[1] for p in tmp_path.glob(".*.tmp")}
            return len(finals) == 6 and temps == {"killed-0", "alive-0"}

        while not hanging():
            assert time.monotonic() < deadline and all(p.poll() is None for p in savers.values())
            time.sleep(0.05)
        savers["killed"].send_signal(signal.SIGKILL)
        assert savers["killed"].wait(timeout=30) == -signal.SIGKILL
        left = {p.name.split(".")[1]: p for p in tmp_path.glob(".*.tmp")}
        assert set(left) == {"killed-0", "alive-0"}  # each was saving its first file again
        assert clean_stale_temp_files(tmp_path) == [left["killed-0"]]
        assert left["alive-0"].exists()  # a live process's save in progress
        savers["alive"].send_signal(signal.SIGKILL)
        savers["alive"].wait(timeout=30)
        assert clean_stale_temp_files(tmp_path) == [left["alive-0"]]
    finally:
        for proc in savers.values():
            proc.kill()
            proc.wait()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [f"{prefix}-{i}.pt" for prefix in ("alive", "killed") for i in range(3)]
    assert all(load_checkpoint(tmp_path / name).progress["step"] < 3 for name in names)


def test_projection_caches_and_exports_write_through_named_temp_files_and_the_app_cleans_both(tmp_path, monkeypatch):
    import numpy as np

    import ui.session
    from vae_core import projection

    seen = []
    real_replace = os.replace

    def spy(src, dst):
        seen.append(Path(src).name)
        return real_replace(src, dst)

    monkeypatch.setattr(projection.os, "replace", spy)
    target = tmp_path / "checkpoints" / "projections" / "k.test-pca-0.npy"
    projection._save_coords(target, np.zeros((3, 2), np.float32))
    assert target.exists() and seen and seen[0].startswith(f".{target.name}.{os.getpid()}-")
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # no temp file left

    dead = dead_pid()
    leftovers = [target.parent / f".{target.name}.{dead}-0123abcd.tmp",
                 tmp_path / "checkpoints" / f".m.pt.{dead}-0123abcd.tmp"]
    for path in leftovers:
        path.write_bytes(b"partial")
    monkeypatch.setenv("VAE_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    ui.session.startup_cleanup()
    assert not any(p.exists() for p in leftovers) and target.exists()

import pickle

import pytest
import torch

from vae_core import VAEConfig, VAEError, build_model, load_checkpoint, save_checkpoint
from vae_core.checkpoint import read_payload


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

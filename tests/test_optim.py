"""FusedAdam: torch.optim.Adam(fused=True)'s steps and state, without importing torch's compiler."""

import subprocess
import sys

import pytest
import torch

from vae_core.errors import VAEError
from vae_core.optim import FusedAdam, make_adam


def _model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(12, 9), torch.nn.ReLU(), torch.nn.Linear(9, 5))


def _train(model, opt, steps: int, start: int = 0) -> list[float]:
    losses = []
    for i in range(start, start + steps):
        g = torch.Generator().manual_seed(i)
        x, y = torch.randn(16, 12, generator=g), torch.randn(16, 5, generator=g)
        loss = ((model(x) - y) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.param_groups[0]["lr"] = 1e-2 / (1 + i)  # a schedule, as the Trainer sets it
        opt.step()
        losses.append(loss.item())
    return losses


def _assert_same_state(a: dict, b: dict) -> None:
    assert a["param_groups"] == b["param_groups"]
    assert a["state"].keys() == b["state"].keys()
    for i in a["state"]:
        assert a["state"][i].keys() == b["state"][i].keys()
        for key, value in a["state"][i].items():
            other = b["state"][i][key]
            assert value.dtype == other.dtype and value.device == other.device
            assert torch.equal(value, other), (i, key)


def test_steps_are_torch_fused_adams_bit_for_bit():
    ours, theirs = _model(), _model()
    a = FusedAdam(ours.parameters(), lr=1e-2)
    b = torch.optim.Adam(theirs.parameters(), lr=1e-2, fused=True)
    assert _train(ours, a, 25) == _train(theirs, b, 25)
    for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
        assert torch.equal(p, q)
    _assert_same_state(a.state_dict(), b.state_dict())
    assert a.state_dict()["state"][0]["step"].item() == 25


@pytest.mark.parametrize("fused", [True, False])
def test_loads_torch_adams_state_and_torch_loads_ours(fused):
    # a checkpoint written before FusedAdam (torch.optim.Adam, fused or not) resumes exactly: FusedAdam
    # then steps as torch's Adam does after loading the same state (the saved group's `fused` flag
    # included), and the resumed run is the uninterrupted one
    ref, ref_opt = _model(), None
    ref_opt = torch.optim.Adam(ref.parameters(), lr=1e-2, fused=fused)
    _train(ref, ref_opt, 10)
    saved_weights, saved_opt = {k: v.clone() for k, v in ref.state_dict().items()}, ref_opt.state_dict()
    saved_opt = {"state": {i: {k: v.clone() for k, v in s.items()} for i, s in saved_opt["state"].items()},
                 "param_groups": [dict(g) for g in saved_opt["param_groups"]]}
    uninterrupted = _train(ref, ref_opt, 10, start=10)
    ours = _model(1)
    ours.load_state_dict(saved_weights)
    a = FusedAdam(ours.parameters(), lr=1e-3)
    a.load_state_dict(saved_opt)
    assert a.param_groups[0]["lr"] == saved_opt["param_groups"][0]["lr"]  # the saved hyperparameters, as torch does
    theirs = _model(2)
    theirs.load_state_dict(saved_weights)
    b = torch.optim.Adam(theirs.parameters(), lr=1e-3, fused=True)
    b.load_state_dict(saved_opt)
    assert a.param_groups[0]["fused"] is fused
    assert _train(ours, a, 10, start=10) == _train(theirs, b, 10, start=10) == uninterrupted
    for p, q, r in zip(ours.parameters(), theirs.parameters(), ref.parameters(), strict=True):
        assert torch.equal(p, q) and torch.equal(p, r)
    c = torch.optim.Adam(_model(3).parameters(), lr=1e-3, fused=True)  # and torch reads ours
    c.load_state_dict(a.state_dict())
    _assert_same_state(c.state_dict(), a.state_dict())


def test_loaded_state_is_a_copy():
    # the Trainer's NaN guard keeps a state_dict() and loads it back: later steps must not change it
    m = _model()
    a = FusedAdam(m.parameters(), lr=1e-2)
    _train(m, a, 3)
    kept = {i: {k: v.clone() for k, v in s.items()} for i, s in a.state_dict()["state"].items()}
    snapshot = a.state_dict()
    a.load_state_dict(snapshot)
    _train(m, a, 3, start=3)
    for i, s in snapshot["state"].items():
        for k, v in s.items():
            assert torch.equal(v, kept[i][k])


def test_mismatched_state_is_a_clear_error():
    a = FusedAdam(_model().parameters(), lr=1e-2)
    small = torch.nn.Linear(12, 5)
    b = FusedAdam(small.parameters(), lr=1e-2)
    _train(torch.nn.Sequential(small), b, 1)
    with pytest.raises(VAEError, match="groups of sizes \\[2\\]; this model's optimizer has one group of 4") as e:
        a.load_state_dict(b.state_dict())
    assert "\n" not in str(e.value)
    m = _model()
    c = FusedAdam(m.parameters(), lr=1e-2)
    _train(m, c, 1)
    sd = c.state_dict()
    sd["state"][0]["exp_avg"] = torch.zeros(3, 3)
    with pytest.raises(VAEError, match="exp_avg of parameter 0 is \\(3, 3\\); the parameter is \\(9, 12\\)"):
        a.load_state_dict(sd)
    with pytest.raises(TypeError, match="nesterov"):
        FusedAdam(m.parameters(), lr=1e-2, nesterov=True)


def _trained_state() -> tuple[torch.nn.Module, FusedAdam, dict]:
    m = _model()
    a = FusedAdam(m.parameters(), lr=1e-2)
    _train(m, a, 2)
    return m, a, a.state_dict()


@pytest.mark.parametrize("damage, says", [
    (lambda sd: sd.pop("param_groups"), "not Adam's (KeyError"),
    (lambda sd: sd["param_groups"][0].update(lr="fast"), "hyperparameters are not Adam's"),
    (lambda sd: sd["param_groups"][0].update(betas=(0.9,)), "hyperparameters are not Adam's"),
    (lambda sd: sd["param_groups"][0].update(eps=float("nan")), "hyperparameters are not Adam's"),
    (lambda sd: sd["param_groups"][0].update(amsgrad="yes"), "hyperparameters are not Adam's"),
    (lambda sd: sd["param_groups"][0].update(fused="yes"), "implementation flags are not Adam's"),
    (lambda sd: sd["state"].update({7: sd["state"][0]}), "not Adam's (ValueError"),
    (lambda sd: sd["state"][1].pop("exp_avg_sq"), "parameter 1's optimizer state lacks exp_avg_sq"),
    (lambda sd: sd["state"][2].update(exp_avg=[0.0] * 5), "has 'exp_avg', not one of Adam's tensors"),
    (lambda sd: sd["state"][2].update(payload=torch.zeros(5)), "has 'payload', not one of Adam's tensors"),
    (lambda sd: sd["state"][0].update(step=torch.zeros(3)), "not Adam's (RuntimeError"),
])
def test_a_damaged_state_is_one_line_and_keeps_what_was_held(damage, says):
    m, a, _ = _trained_state()
    held = {i: {k: v.clone() for k, v in s.items()} for i, s in a.state_dict()["state"].items()}
    lr = a.param_groups[0]["lr"]
    _, _, foreign = _trained_state()
    damage(foreign)
    with pytest.raises(VAEError) as e:
        a.load_state_dict(foreign)
    assert says in str(e.value) and "\n" not in str(e.value)
    assert a.param_groups[0]["lr"] == lr
    for i, s in a.state_dict()["state"].items():
        assert all(torch.equal(v, held[i][k]) for k, v in s.items())


def test_only_parameters_with_gradients_step():
    m = _model()
    a = FusedAdam(m.parameters(), lr=1e-2)
    before = [p.detach().clone() for p in m.parameters()]
    a.step()  # no gradients yet: nothing moves, no state
    assert all(torch.equal(p, q) for p, q in zip(m.parameters(), before, strict=True)) and not a.state
    m[2](torch.randn(4, 9)).sum().backward()  # only the last layer gets gradients
    a.step()
    moved = [not torch.equal(p, q) for p, q in zip(m.parameters(), before, strict=True)]
    assert moved == [False, False, True, True] and len(a.state) == 2
    a.zero_grad(set_to_none=False)
    assert m[2].weight.grad is not None and not m[2].weight.grad.any()
    a.zero_grad()
    assert m[2].weight.grad is None


def test_make_adam_falls_back_to_torch_where_no_fused_kernel(monkeypatch):
    import vae_core.optim as optim

    params = list(_model().parameters())
    assert isinstance(make_adam(params, 1e-3, torch.device("cpu")), FusedAdam)
    monkeypatch.setattr(optim, "fused_devices", lambda: ["cuda"])
    fallback = make_adam(params, 1e-3, torch.device("cpu"))
    assert type(fallback) is torch.optim.Adam and fallback.param_groups[0]["lr"] == 1e-3


def test_training_imports_neither_torchvision_nor_the_compiler(tmp_path):
    # what FusedAdam and the IDX reader are for: `train` on MNIST files loads neither (~1 s of its 7 s)
    from tests.test_data import make_idx_set

    make_idx_set(tmp_path / "MNIST" / "raw", n_train=64, n_test=16)
    code = (
        "import sys\n"
        "from vae_core.cli import main\n"
        f"main(['train', '--dataset', 'mnist', '--data-root', {str(tmp_path)!r}, '--model', 'mlp', "
        f"'--hidden-sizes', '16', '--latent-dim', '2', '--epochs', '1', '--batch-size', '32', '--quiet', "
        f"'--out', {str(tmp_path / 'run.pt')!r}])\n"
        "print(sorted(m for m in ('torchvision', 'torch._dynamo') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "run.pt").exists()
    assert out.stdout.strip().splitlines()[-1] == "[]"

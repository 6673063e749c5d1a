"""Adam for the training loop: torch's own Adam arithmetic, without `torch.optim.Optimizer`'s import of
torch's compiler.

Why not `torch.optim.Adam` itself: every entry point of `torch.optim.Optimizer` (the constructor's
`add_param_group`, `zero_grad`, `step`, `state_dict`) imports `torch._dynamo` on its first call, so that a
compiled model can wrap it. On this project's 2-core machine that import is ~0.9 s of a 7 s `train` (and
~100 MB), paid by a command that never compiles anything. `FusedAdam` keeps exactly the state
`torch.optim.Adam(fused=True)` keeps, in the same `state_dict()` layout (each loads the other's), and calls
the public functional `torch.optim.adam.adam` with the fused kernel, so every step gives the same bits
(tests/test_optim.py). Where this torch has no fused kernel for the device, `make_adam` returns
`torch.optim.Adam`.

What is guaranteed on resume: after `load_state_dict(S)`, FusedAdam steps exactly as `torch.optim.Adam`
does after loading S. Like torch, it takes the saved group's implementation flags (`fused`, `foreach`,
`capturable`) with its hyperparameters, so a state written by a non-fused Adam goes on with torch's
non-fused arithmetic and the resumed run is the uninterrupted one. The fused kernel and the per-tensor loop
round differently (they differ by an ulp here and there on torch 2.14's CPU), so which one a run uses is
part of its state.
"""

from __future__ import annotations

import math
from collections import defaultdict

import torch

from vae_core.errors import VAEError, first_line

# the hyperparameters of torch.optim.Adam's parameter group, as its state_dict() writes them
_DEFAULTS = {"betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0, "amsgrad": False, "maximize": False,
             "foreach": None, "capturable": False, "differentiable": False, "fused": True,
             "decoupled_weight_decay": False}
_HYPER = ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize", "decoupled_weight_decay")
_IMPLEMENTATION = ("fused", "foreach", "capturable")  # how the step is computed: a saved group's are kept


def fused_devices() -> list[str]:
    """The device types this torch has a fused Adam kernel for (CPU since torch 2.4)."""
    try:
        from torch.utils._foreach_utils import _get_fused_kernels_supported_devices as supported
    except ImportError:  # an older torch: fused Adam on CUDA only
        return ["cuda"]
    return supported()


def make_adam(params, lr: float, device: torch.device):
    """Adam with the fused kernel (one kernel updates every parameter; on the 2-core CPU machine it made
    the 784-400-20 MLP's loop ~20% faster) where this torch has one for the device, else torch's
    default implementation."""
    params = list(params)
    if device.type in fused_devices() and all(p.is_floating_point() for p in params):
        return FusedAdam(params, lr=lr)
    return torch.optim.Adam(params, lr=lr)


class FusedAdam:
    """One parameter group, `torch.optim.Adam(fused=True)`'s state and steps. Used by the Trainer through
    `param_groups[0]["lr"]`, `zero_grad`, `step`, `state_dict` and `load_state_dict`."""

    def __init__(self, params, lr: float, **hyper):
        unknown = set(hyper) - set(_HYPER)
        if unknown:
            raise TypeError(f"FusedAdam got unknown hyperparameters {sorted(unknown)}")
        self.param_groups = [{"lr": lr, **_DEFAULTS, **hyper, "params": list(params)}]
        self.state: defaultdict[torch.Tensor, dict] = defaultdict(dict)

    @property
    def _params(self) -> list[torch.Tensor]:
        return self.param_groups[0]["params"]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self._params:
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad.detach_().requires_grad_(False).zero_()

    @torch.no_grad()
    def step(self) -> None:
        from torch.optim.adam import adam  # the module is torch.optim's own: imported with torch

        group = self.param_groups[0]
        params = [p for p in self._params if p.grad is not None]
        if not params:
            return
        states = [self._state(p, group["amsgrad"]) for p in params]
        adam(params, [p.grad for p in params], [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states],
             [s["max_exp_avg_sq"] for s in states] if group["amsgrad"] else [], [s["step"] for s in states],
             fused=group["fused"], foreach=group["foreach"], capturable=group["capturable"], differentiable=False,
             has_complex=False,
             decoupled_weight_decay=group["decoupled_weight_decay"], amsgrad=group["amsgrad"],
             beta1=group["betas"][0], beta2=group["betas"][1], lr=group["lr"],
             weight_decay=group["weight_decay"], eps=group["eps"], maximize=group["maximize"])

    def _state(self, p: torch.Tensor, amsgrad: bool) -> dict:
        state = self.state[p]
        if not state:  # as torch.optim.Adam starts it: a float32 step, on the parameter's device when fused
            state["step"] = torch.zeros((), dtype=torch.float32, device=self._step_device(p))
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            if amsgrad:
                state["max_exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return state

    def _step_device(self, p: torch.Tensor) -> torch.device:
        """Where torch.optim.Adam keeps a parameter's step: beside it for the fused or capturable step,
        else on the CPU."""
        group = self.param_groups[0]
        return p.device if group["fused"] or group["capturable"] else torch.device("cpu")

    def state_dict(self) -> dict:
        """torch.optim.Optimizer's layout: states by the parameter's index, the group with indices."""
        index = {p: i for i, p in enumerate(self._params)}
        group = {k: v for k, v in self.param_groups[0].items() if k != "params"}
        return {"state": {index[p]: s for p, s in self.state.items()},
                "param_groups": [{**group, "params": list(range(len(self._params)))}]}

    def load_state_dict(self, state_dict: dict) -> None:
        """Load a state this class or `torch.optim.Adam` wrote; its tensors are copied, moved to each
        parameter's device and dtype (the step to float32, as the fused kernel needs). Anything else (a
        damaged or foreign checkpoint) is a one-line VAEError, and the state already held is kept."""
        try:
            state, hyper = self._parsed(state_dict)
        except (TypeError, KeyError, ValueError, AttributeError, IndexError, RuntimeError) as e:
            raise VAEError(f"the optimizer state is not Adam's ({type(e).__name__}: {first_line(e)})") from None
        self.param_groups[0].update(hyper)
        self.state = state

    def _parsed(self, state_dict: dict) -> tuple[defaultdict, dict]:
        groups = state_dict["param_groups"]
        if len(groups) != 1 or len(groups[0]["params"]) != len(self._params):
            sizes = [len(g.get("params", ())) for g in groups]
            raise VAEError(f"the optimizer state holds parameter groups of sizes {sizes}; this model's "
                           f"optimizer has one group of {len(self._params)} parameters")
        hyper = {k: groups[0][k] for k in _HYPER if k in groups[0]}
        # torch's Adam takes the saved group's flags too; a state from before a flag existed means its default
        flags = {k: groups[0].get(k, None if k != "capturable" else False) for k in _IMPLEMENTATION}
        if not all(v is None or isinstance(v, bool) for v in flags.values()) or flags["capturable"] is None:
            raise VAEError(f"the optimizer state's implementation flags are not Adam's: {flags}")
        numbers = [hyper.get("lr", 1.0), hyper.get("eps", 1.0), hyper.get("weight_decay", 0.0),
                   *hyper.get("betas", ())]
        if (len(hyper.get("betas", (0, 0))) != 2 or not all(isinstance(v, (int, float)) and math.isfinite(v)
                                                             and v >= 0 for v in numbers)
                or not all(isinstance(hyper.get(k, False), bool)
                           for k in ("amsgrad", "maximize", "decoupled_weight_decay"))):
            raise VAEError(first_line(VAEError(f"the optimizer state's hyperparameters are not Adam's: {hyper}")))
        state: defaultdict[torch.Tensor, dict] = defaultdict(dict)
        needed = {"step", "exp_avg", "exp_avg_sq"} | ({"max_exp_avg_sq"} if hyper.get("amsgrad") else set())
        for i, saved in state_dict["state"].items():
            p = self._params[groups[0]["params"].index(i)]
            if not needed <= set(saved):
                raise VAEError(f"parameter {i}'s optimizer state lacks {', '.join(sorted(needed - set(saved)))}")
            for key, value in saved.items():
                if key not in ("step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq") or not torch.is_tensor(value):
                    raise VAEError(f"parameter {i}'s optimizer state has {key!r}, not one of Adam's tensors")
                if key == "step":  # where torch keeps it (`_step_device`); float32, as the fused kernel needs
                    device = p.device if flags["fused"] or flags["capturable"] else value.device
                    state[p][key] = value.to(device=device, dtype=torch.float32, copy=True).reshape(())
                elif value.shape != p.shape:
                    raise VAEError(f"the optimizer state's {key} of parameter {i} is {tuple(value.shape)}; "
                                   f"the parameter is {tuple(p.shape)}")
                else:
                    state[p][key] = value.to(device=p.device, dtype=p.dtype, copy=True)
        return state, {**hyper, **flags}

"""One dataclass describes a model and its training; checkpoints store it as a plain dict.

Each field carries an `Option` in its metadata: a label, help text, and its range or choices (the
valid names come from the registries: datasets in data.py, model kinds in models.py, likelihoods in
losses.py, objectives in objectives.py, schedules in schedules.py). `config_fields()` reads them;
`validate` checks ranges and choices from them, and the CLI's `train` flags and the Train page's
widgets are built from them, so a new config option is one field here.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import os
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from vae_core.data import BACKGROUNDS, DATASETS
from vae_core.errors import VAEError
from vae_core.losses import LIKELIHOOD_SPECS
from vae_core.models import CONV_SIZES, MODEL_SPECS
from vae_core.objectives import OBJECTIVE_SPECS
from vae_core.schedules import BETA_SCHEDULE_FUNCTIONS, LR_SCHEDULE_FUNCTIONS

MODELS = tuple(MODEL_SPECS)  # one entry per kind, in vae_core/models.py
LIKELIHOODS = tuple(LIKELIHOOD_SPECS)  # one entry per likelihood, in vae_core/losses.py
SIGMA_MODES = ("fixed", "global", "pixel")
BETA_SCHEDULES = tuple(BETA_SCHEDULE_FUNCTIONS)  # one entry per schedule, in vae_core/schedules.py
OBJECTIVES = tuple(OBJECTIVE_SPECS)  # one entry per objective, in vae_core/objectives.py
LR_SCHEDULES = tuple(LR_SCHEDULE_FUNCTIONS)
DEVICES = ("auto", "cpu", "cuda", "mps")
# β schedules that were objectives in disguise: a config (an old command, an old checkpoint) naming one
# gets that objective under a constant β schedule
LEGACY_SCHEDULES = {"capacity": "capacity"}
__all__ = ["CONV_SIZES", "ConfigField", "Option", "VAEConfig", "config_fields", "parse_int_list"]

DATA_MODEL, OBJECTIVE, OPTIMISATION = "data and model", "likelihood and objective", "optimisation"


@dataclass(frozen=True)
class Option:
    """How a config field is offered to people (CLI flag, Train page widget) and what it accepts."""

    label: str  # the Train page's widget label
    help: str
    group: str  # DATA_MODEL, OBJECTIVE or OPTIMISATION
    choices: tuple = ()
    open_choices: bool = False  # choices are listed but not enforced here (datasets: also folder:PATH)
    low: float | None = None
    high: float | None = None
    open_low: bool = False  # `low` itself is out of range
    open_high: bool = False
    advanced: bool = False  # the Train page puts it under "Advanced"
    limit: str | None = None  # the server limit (vae_core.limits.LIMITS) that caps it
    legacy: tuple = ()  # old names the command line still takes (the config turns them into today's)


def _opt(default: Any, label: str, help: str, group: str, **kw) -> Any:
    return field(default=default, metadata={"option": Option(label, help, group, **kw)})


def _listed(table: dict, describe) -> str:
    return "; ".join(f"{name}: {describe(entry)}" for name, entry in table.items())


def _doc(function) -> str:
    return " ".join((inspect.getdoc(function) or "").split()).rstrip(".")


@dataclass
class VAEConfig:
    """Everything needed to rebuild a model and reproduce its training run."""

    # data
    dataset: str = _opt("mnist5k", "Dataset", "the images: " + _listed(DATASETS, lambda d: d.description),
                        DATA_MODEL, choices=tuple(DATASETS), open_choices=True)
    data_root: str | None = _opt(None, "Data root", "folder for torchvision datasets", DATA_MODEL)
    image_size: int | None = _opt(None, "Image size", "resize images to this many pixels a side (none: the "
                                  "dataset's own size; folders: 64)", DATA_MODEL, low=4, high=256, advanced=True,
                                  limit="image_side")
    channels: int | None = _opt(None, "Channels", "convert images to 1 (grey) or 3 (RGB) channels", DATA_MODEL,
                                choices=(1, 3), advanced=True)
    background: str = _opt("white", "Background", "what transparent pixels become: images with transparency (PNG, "
                           "GIF, WebP icons) are composited onto white, grey or black; none drops the alpha "
                           "channel (transparent pixels keep their stored colour, often black)", DATA_MODEL,
                           choices=tuple(BACKGROUNDS), advanced=True)
    # model
    model: str = _opt("mlp", "Model", _listed(MODEL_SPECS, lambda m: m.description) + ". The command line's "
                      "default is mlp, which takes any image size and trains fastest; the Train page starts from "
                      "conv, which draws sharper images at the sizes it takes", DATA_MODEL, choices=MODELS)
    latent_dim: int = _opt(16, "Latent size", "dimensions of z", DATA_MODEL, low=1, high=512)
    hidden_sizes: tuple[int, ...] = _opt((512, 256), "Hidden sizes", "MLP layer widths, e.g. 512,256; conv: the "
                                         "width of its dense layer", DATA_MODEL, low=1)
    conv_channels: tuple[int, ...] | None = _opt(None, "Conv channels", "conv: channels per stride-2 layer, e.g. "
                                                 "32,64 (none: a default that suits the image size)", DATA_MODEL,
                                                 low=1, advanced=True)
    residual_blocks: int = _opt(0, "Residual blocks", "conv: residual blocks after each down- and before each "
                                "up-sampling", DATA_MODEL, low=0, high=8, advanced=True)
    dropout: float = _opt(0.0, "Dropout", "conv: dropout after the dense hidden layer of the encoder and the "
                          "decoder", DATA_MODEL, low=0, high=1, open_high=True, advanced=True)
    # likelihood p(x|z)
    likelihood: str = _opt("bernoulli", "Likelihood", _listed(LIKELIHOOD_SPECS, lambda s: s.description),
                           OBJECTIVE, choices=LIKELIHOODS)
    binarize: bool = _opt(False, "Binarize", "Bernoulli on dynamically binarized data instead of grey levels",
                          OBJECTIVE)
    sigma_mode: str = _opt("fixed", "Gaussian σ", "Gaussian: a fixed σ, or learned: one σ (global) or one per "
                           "pixel", OBJECTIVE, choices=SIGMA_MODES)
    sigma: float = _opt(0.1, "σ", "Gaussian: the fixed σ, or the initial value of a learned one", OBJECTIVE,
                        low=0, open_low=True, advanced=True)
    # objective
    objective: str = _opt("beta-vae", "Objective", _listed(OBJECTIVE_SPECS, lambda o: o.description), OBJECTIVE,
                          choices=OBJECTIVES, advanced=True)
    beta: float = _opt(1.0, "β", "weight of the KL term (the schedule's target)", OBJECTIVE, low=0)
    beta_schedule: str = _opt("constant", "β schedule", _listed(BETA_SCHEDULE_FUNCTIONS, _doc) + "; capacity: "
                              "the capacity objective, as commands written before it was one say it",
                              OBJECTIVE, choices=BETA_SCHEDULES, legacy=tuple(LEGACY_SCHEDULES))
    warmup_epochs: float = _opt(10.0, "Warm-up epochs", "warmup: epochs over which β rises linearly from 0",
                                OBJECTIVE, low=0, open_low=True)
    cycles: int = _opt(4, "Cycles", "cyclical: number of cycles over the run (Fu et al. 2019)", OBJECTIVE,
                       low=0, open_low=True, advanced=True)
    cycle_ramp: float = _opt(0.5, "Cycle ramp", "cyclical: fraction of each cycle spent ramping β up", OBJECTIVE,
                             low=0, high=1, open_low=True, advanced=True)
    capacity_max: float = _opt(25.0, "Capacity C max (nats)", "capacity objective: the final KL target C in nats "
                               "(Burgess et al. 2018)", OBJECTIVE, low=0)
    capacity_epochs: float | None = _opt(None, "Capacity epochs", "capacity objective: epochs to ramp C (none: "
                                         "the whole run)", OBJECTIVE, low=0, open_low=True, advanced=True)
    gamma: float = _opt(100.0, "γ", "capacity objective: weight of |KL - C|", OBJECTIVE, low=0, open_low=True,
                        advanced=True)
    # training
    epochs: int = _opt(20, "Epochs", "total epochs (also when resuming)", OPTIMISATION, low=0, open_low=True,
                       limit="epochs")
    batch_size: int = _opt(128, "Batch size", "images per step", OPTIMISATION, low=0, open_low=True,
                           limit="batch_size")
    lr: float = _opt(1e-3, "Learning rate", "Adam's step size", OPTIMISATION, low=0, open_low=True)
    lr_schedule: str = _opt("constant", "Learning-rate schedule", "constant; cosine: " + _doc(
        LR_SCHEDULE_FUNCTIONS["cosine"]), OPTIMISATION, choices=LR_SCHEDULES, advanced=True)
    shift_pixels: int = _opt(0, "Random shifts (pixels)", "augmentation: each training image is moved by a "
                             "random whole number of pixels, up to this many, along each axis (zero fill); "
                             "seeded, training batches only, never evaluation", OPTIMISATION, low=0, high=8,
                             advanced=True)
    val_fraction: float = _opt(0.0, "Validation fraction", "held out of the train split (seeded) for "
                               "validation, never trained on; reported as val_nelbo", OPTIMISATION, low=0,
                               high=0.5, advanced=True)
    seed: int = _opt(0, "Seed", "seeds the initial weights, the batch order and the sampling noise", OPTIMISATION)
    device: str = _opt("auto", "Device", "auto: CUDA, then Apple MPS, then CPU", OPTIMISATION, choices=DEVICES)
    cuda_graphs: bool = _opt(True, "CUDA graphs", "on CUDA, capture the training step once as a CUDA graph and "
                             "replay it for every full batch (one launch instead of hundreds); "
                             "--no-cuda-graphs trains eagerly", OPTIMISATION, advanced=True)
    amp: bool = _opt(False, "Mixed precision", "bfloat16 autocast on CUDA", OPTIMISATION, advanced=True)
    film_frames: int = _opt(240, "Film frames", "the most frames of the run's film kept in its checkpoint (the "
                            "codes of fixed test images, samples and reconstructions as it trains, for the live "
                            "map and the replay; fewer when they would pass 2 MB); 0: no film", OPTIMISATION,
                            low=0, high=10_000, advanced=True)
    extra: dict = field(default_factory=dict)  # free-form notes (e.g. the preset it came from); no Option

    def __post_init__(self) -> None:
        if self.beta_schedule in LEGACY_SCHEDULES:  # an old command's or checkpoint's name for an objective
            if self.objective != "beta-vae":
                raise VAEError(f"the {self.objective} objective takes the {', '.join(BETA_SCHEDULES)} beta schedule "
                               f"({self.beta_schedule} is an objective of its own)")
            self.objective, self.beta_schedule = LEGACY_SCHEDULES[self.beta_schedule], "constant"
        self.hidden_sizes = tuple(int(h) for h in self.hidden_sizes)
        if self.conv_channels is not None:
            self.conv_channels = tuple(int(c) for c in self.conv_channels)
        self.validate()

    def validate(self) -> None:
        for f in config_fields():
            f.check(getattr(self, f.name))
        if self.binarize and self.likelihood != "bernoulli":
            raise VAEError("binarize only applies to the bernoulli likelihood")

    def to_dict(self) -> dict:
        """A plain dict (lists, not tuples) that `from_dict` turns back into this config."""
        d = dataclasses.asdict(self)
        d["hidden_sizes"] = list(self.hidden_sizes)
        if self.conv_channels is not None:
            d["conv_channels"] = list(self.conv_channels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> VAEConfig:
        """The config `to_dict` gave; one saved before a field existed gets what its run did without it."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise VAEError(f"unknown config fields: {', '.join(unknown)}")
        return cls(**{**BEFORE_FIELDS, **d})

    def with_absolute_paths(self) -> VAEConfig:
        """This config with a folder dataset's path and the data root made absolute (against the working
        directory), so a checkpoint that stores it finds its data from any working directory."""
        changes = {}
        if self.dataset.startswith("folder:"):
            changes["dataset"] = "folder:" + _absolute(self.dataset[len("folder:"):])
        if self.data_root:
            changes["data_root"] = _absolute(self.data_root)
        return self.replace(**changes) if changes else self

    def replace(self, **changes) -> VAEConfig:
        return dataclasses.replace(self, **changes)

    @property
    def likelihood_name(self) -> str:
        """How the reconstruction term is measured, in words (every reported number names it)."""
        return LIKELIHOOD_SPECS[self.likelihood].name(self)


# Fields added after checkpoints were first saved, with the value their runs had in effect
BEFORE_FIELDS = {"background": "none"}  # the alpha channel was dropped


def _absolute(path: str) -> str:
    return os.path.abspath(os.path.expanduser(path))


@dataclass(frozen=True)
class ConfigField:
    """One `VAEConfig` field as front ends see it: `type` is int, float, str, bool or tuple (of ints);
    `optional` when None is allowed (it means "a default that suits the data")."""

    name: str
    type: type
    optional: bool
    default: Any
    option: Option

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def accepts(self) -> str:
        """What a valid value is, in words: "an integer from 1 to 512", "> 0", "one of a, b"."""
        o = self.option
        if o.choices:
            return "one of " + ", ".join(map(str, o.choices))
        if o.low is None and o.high is None:
            return {int: "an integer", float: "a number", tuple: "comma-separated integers", bool: "True or False",
                    str: "a text"}[self.type]
        if o.low is not None and o.high is not None:
            if self.type is int:
                return f"an integer from {o.low:g} to {o.high:g}"
            if o.open_low or o.open_high:
                return f"in {'(' if o.open_low else '['}{o.low:g}, {o.high:g}{')' if o.open_high else ']'}"
            return f"from {o.low:g} to {o.high:g}"
        bound = f"{'>' if o.open_low else '>='} {o.low:g}"
        return f"integers {bound}, comma-separated" if self.type is tuple else bound

    def describe(self, default: Any = ...) -> str:
        """Help text with what it accepts and its default (this field's, unless another is given: a
        command whose defaults differ from a training run's)."""
        default = self.default if default is ... else default
        default = "none" if default is None else ",".join(map(str, default)) \
            if isinstance(default, tuple) else default
        accepts = "" if self.option.choices or self.type in (str, bool) else f"{self.accepts()}; "
        return f"{self.option.help} ({accepts}default {default})"

    def check(self, value: Any) -> None:
        """A one-line VAEError when `value` is not what this field accepts."""
        if value is None and self.optional:
            return
        if not self._valid(value):
            raise VAEError(f"{self.name} must be {self.accepts()} (got {value!r})")

    def _valid(self, value: Any) -> bool:
        o = self.option
        if self.type is tuple:
            return isinstance(value, tuple) and bool(value) and all(self._in_range(v, int) for v in value)
        if o.choices and not o.open_choices:
            return value in o.choices and isinstance(value, type(o.choices[0]))
        if self.type in (int, float):
            return self._in_range(value, self.type)
        return isinstance(value, self.type)

    def _in_range(self, value: Any, kind: type) -> bool:
        o = self.option
        kinds = (int,) if kind is int else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds):
            return False
        above = o.low is None or (value > o.low if o.open_low else value >= o.low)
        below = o.high is None or (value < o.high if o.open_high else value <= o.high)
        return above and below


def _field_type(hint: Any) -> tuple[type, bool]:
    """(int, True) for `int | None`; tuple for `tuple[int, ...]`."""
    args = typing.get_args(hint)
    optional = typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args
    if optional:
        hint = next(a for a in args if a is not type(None))
    return typing.get_origin(hint) or hint, optional


@functools.cache
def check_option(name: str, value: Any) -> None:
    """A one-line VAEError when `value` is not what the `VAEConfig` field `name` accepts: the one check
    for a value changed outside a config (β changed during a run)."""
    next(f for f in config_fields() if f.name == name).check(value)


def config_fields() -> tuple[ConfigField, ...]:
    """Every `VAEConfig` field that people set (all but `extra`), in declaration order."""
    hints = typing.get_type_hints(VAEConfig)
    out = []
    for f in dataclasses.fields(VAEConfig):
        if "option" in f.metadata:
            kind, optional = _field_type(hints[f.name])
            out.append(ConfigField(f.name, kind, optional, f.default, f.metadata["option"]))
    return tuple(out)


def parse_int_list(text: str) -> tuple[int, ...]:
    """ "512, 256" -> (512, 256); an empty text -> (); anything else is a VAEError."""
    try:
        return tuple(int(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        raise VAEError(f"expected comma-separated integers, got {text!r}") from None

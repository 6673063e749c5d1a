"""One dataclass describes a model and its training; checkpoints store it as a plain dict."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from vae_core.errors import VAEError
from vae_core.schedules import BETA_SCHEDULE_FUNCTIONS, LR_SCHEDULE_FUNCTIONS

MODELS = ("mlp", "conv")
LIKELIHOODS = ("bernoulli", "gaussian")
SIGMA_MODES = ("fixed", "global", "pixel")
BETA_SCHEDULES = tuple(BETA_SCHEDULE_FUNCTIONS)  # one entry per schedule, in vae_core/schedules.py
OBJECTIVES = ("beta-vae", "beta-tcvae")
LR_SCHEDULES = tuple(LR_SCHEDULE_FUNCTIONS)
DEVICES = ("auto", "cpu", "cuda", "mps")
CONV_SIZES = (28, 32, 64)


def _choice(name: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise VAEError(f"{name} must be one of {', '.join(valid)} (got {value!r})")


def _positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    ok = value >= 0 if allow_zero else value > 0
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise VAEError(f"{name} must be {bound} (got {value})")


@dataclass
class VAEConfig:
    """Everything needed to rebuild a model and reproduce its training run."""

    # data
    dataset: str = "mnist5k"
    data_root: str | None = None
    image_size: int | None = None  # folder datasets are resized to this; None keeps the native size
    channels: int | None = None  # folder datasets: 1 (grey) or 3 (RGB)
    # model
    model: str = "mlp"
    latent_dim: int = 16
    hidden_sizes: tuple[int, ...] = (512, 256)
    conv_channels: tuple[int, ...] | None = None  # None: a default that suits the image size
    residual_blocks: int = 0  # conv: residual blocks after each down- and before each up-sampling
    dropout: float = 0.0  # conv: dropout after the dense hidden layer of the encoder and the decoder
    # likelihood p(x|z)
    likelihood: str = "bernoulli"
    binarize: bool = False  # Bernoulli on dynamically binarized data instead of grey levels
    sigma_mode: str = "fixed"  # Gaussian: fixed σ, or learned global / per-pixel σ
    sigma: float = 0.1  # Gaussian: the fixed σ, or the initial value of a learned one
    # objective
    objective: str = "beta-vae"  # beta-vae: β·KL; beta-tcvae: KL + (β − 1)·total correlation
    beta: float = 1.0
    beta_schedule: str = "constant"
    warmup_epochs: float = 10.0  # warmup: epochs over which β rises linearly from 0
    cycles: int = 4  # cyclical: number of cycles over the run (Fu et al. 2019)
    cycle_ramp: float = 0.5  # cyclical: fraction of each cycle spent ramping β up
    capacity_max: float = 25.0  # capacity: final KL target C in nats (Burgess et al. 2018)
    capacity_epochs: float | None = None  # capacity: epochs to ramp C; None means the whole run
    gamma: float = 100.0  # capacity: weight of |KL - C|
    # training
    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    lr_schedule: str = "constant"  # cosine: from lr down to 0 over the run
    val_fraction: float = 0.0  # held out of the train split (seeded) for validation: never trained on
    seed: int = 0
    device: str = "auto"
    amp: bool = False  # bfloat16 autocast on CUDA
    extra: dict = field(default_factory=dict)  # free-form notes (e.g. the preset it came from)

    def __post_init__(self) -> None:
        self.hidden_sizes = tuple(int(h) for h in self.hidden_sizes)
        if self.conv_channels is not None:
            self.conv_channels = tuple(int(c) for c in self.conv_channels)
        self.validate()

    def validate(self) -> None:
        _choice("model", self.model, MODELS)
        _choice("likelihood", self.likelihood, LIKELIHOODS)
        _choice("sigma_mode", self.sigma_mode, SIGMA_MODES)
        _choice("beta_schedule", self.beta_schedule, BETA_SCHEDULES)
        _choice("objective", self.objective, OBJECTIVES)
        _choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        if self.objective == "beta-tcvae" and self.beta_schedule == "capacity":
            raise VAEError("the beta-tcvae objective takes the constant, warmup or cyclical beta schedule")
        _choice("device", self.device, DEVICES)
        if not isinstance(self.latent_dim, int) or not 1 <= self.latent_dim <= 512:
            raise VAEError(f"latent_dim must be an integer from 1 to 512 (got {self.latent_dim})")
        if not self.hidden_sizes or any(h < 1 for h in self.hidden_sizes):
            raise VAEError(f"hidden_sizes must be positive integers (got {self.hidden_sizes})")
        if self.conv_channels is not None and (
            not self.conv_channels or any(c < 1 for c in self.conv_channels)
        ):
            raise VAEError(f"conv_channels must be positive integers (got {self.conv_channels})")
        if not isinstance(self.residual_blocks, int) or not 0 <= self.residual_blocks <= 8:
            raise VAEError(f"residual_blocks must be an integer from 0 to 8 (got {self.residual_blocks})")
        if not 0 <= self.dropout < 1:
            raise VAEError(f"dropout must be in [0, 1) (got {self.dropout})")
        if self.image_size is not None and not 4 <= self.image_size <= 256:
            raise VAEError(f"image_size must be from 4 to 256 pixels (got {self.image_size})")
        if self.channels is not None and self.channels not in (1, 3):
            raise VAEError(f"channels must be 1 (grey) or 3 (RGB) (got {self.channels})")
        if self.binarize and self.likelihood != "bernoulli":
            raise VAEError("binarize only applies to the bernoulli likelihood")
        _positive("sigma", self.sigma)
        _positive("beta", self.beta, allow_zero=True)
        _positive("warmup_epochs", self.warmup_epochs)
        _positive("cycles", self.cycles)
        if not 0 < self.cycle_ramp <= 1:
            raise VAEError(f"cycle_ramp must be in (0, 1] (got {self.cycle_ramp})")
        _positive("capacity_max", self.capacity_max, allow_zero=True)
        if self.capacity_epochs is not None:
            _positive("capacity_epochs", self.capacity_epochs)
        _positive("gamma", self.gamma)
        _positive("epochs", self.epochs)
        _positive("batch_size", self.batch_size)
        _positive("lr", self.lr)
        if not 0 <= self.val_fraction <= 0.5:
            raise VAEError(f"val_fraction must be from 0 to 0.5 (got {self.val_fraction})")

    def to_dict(self) -> dict:
        """A plain dict (lists, not tuples) that `from_dict` turns back into this config."""
        d = dataclasses.asdict(self)
        d["hidden_sizes"] = list(self.hidden_sizes)
        if self.conv_channels is not None:
            d["conv_channels"] = list(self.conv_channels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> VAEConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise VAEError(f"unknown config fields: {', '.join(unknown)}")
        return cls(**d)

    def replace(self, **changes) -> VAEConfig:
        return dataclasses.replace(self, **changes)

    @property
    def likelihood_name(self) -> str:
        """How the reconstruction term is measured, in words (every reported number names it)."""
        if self.likelihood == "bernoulli":
            return "Bernoulli on binarized data" if self.binarize else "Bernoulli on grey levels"
        if self.sigma_mode == "fixed":
            return f"Gaussian, fixed sigma={self.sigma:g}"
        return f"Gaussian, learned {self.sigma_mode} sigma"

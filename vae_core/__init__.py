"""vae_core: the engine of VAE Latent Explorer. Trains, saves and explores β-VAEs.

Importing it does no work: no data is loaded and no model is built until asked for.
"""

__version__ = "0.1.0"

from vae_core.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from vae_core.config import VAEConfig
from vae_core.data import DATASETS, DataBundle, load_dataset, load_for_config
from vae_core.device import describe_device, resolve_device
from vae_core.errors import VAEError
from vae_core.evaluate import evaluate
from vae_core.job import JobSnapshot, TrainingJob
from vae_core.models import VAE, build_model
from vae_core.train import Trainer

__all__ = [
    "DATASETS", "Checkpoint", "DataBundle", "JobSnapshot", "Trainer", "TrainingJob", "VAE",
    "VAEConfig", "VAEError", "build_model", "describe_device", "evaluate", "load_checkpoint",
    "load_dataset", "load_for_config", "resolve_device", "save_checkpoint",
]

"""Training speed and quality on the offline datasets: prints one JSON object per run.

    python -m benchmarks.train_speed [--epochs 20] [--device auto] [--runs mnist5k-mlp,mnist5k-conv,...]

Figures: seconds per epoch (mean over epochs after the first), images/s, test negative ELBO in nats
per example (likelihood named), KL and active units. Never pass/fail.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from vae_core import Trainer, VAEConfig, describe_device, load_dataset, resolve_device

RUNS = {
    "mnist5k-mlp": dict(dataset="mnist5k", model="mlp", latent_dim=16),
    "mnist5k-conv": dict(dataset="mnist5k", model="conv", latent_dim=16, hidden_sizes=(256,)),
    "mnist5k-examples-mlp": dict(dataset="mnist5k", model="mlp", latent_dim=20, hidden_sizes=(400,)),
    "sprites-conv": dict(dataset="sprites", model="conv", latent_dim=10, hidden_sizes=(256,)),
}


def run(name: str, epochs: int, device: str, amp: bool) -> dict:
    cfg = VAEConfig(**RUNS[name], epochs=epochs, device=device, amp=amp)
    t0 = time.perf_counter()
    bundle = load_dataset(cfg.dataset)
    load_s = time.perf_counter() - t0
    trainer = Trainer(cfg, bundle=bundle)
    t0 = time.perf_counter()
    m = trainer.fit()
    total = time.perf_counter() - t0
    ep = trainer.history["epochs"]
    later = ep[1:] or ep
    return {
        "run": name, "device": describe_device(resolve_device(device)), "amp": amp, "epochs": epochs,
        "data_load_s": round(load_s, 2), "train_s": round(total, 2),
        "s_per_epoch": round(sum(e["seconds"] for e in later) / len(later), 3),
        "images_per_s": round(sum(e["images_per_s"] for e in later) / len(later)),
        "test_nelbo": round(m["test_nelbo"], 2), "test_recon": round(m["test_recon"], 2),
        "test_kl": round(m["test_kl"], 2), "active_units": m["active_units"],
        "likelihood": m["likelihood"], "units": "nats per example", "torch_threads": torch.get_num_threads(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--device", default="auto")
    p.add_argument("--amp", action="store_true")
    p.add_argument("--runs", default=",".join(RUNS))
    args = p.parse_args()
    for name in args.runs.split(","):
        print(json.dumps(run(name, args.epochs, args.device, args.amp)), flush=True)


if __name__ == "__main__":
    main()

"""The shipped models: each is one seeded, offline command, `python -m vae_core train --preset NAME`.

Shipped files leave out the optimizer state to stay small (a resumed preset restarts Adam's moments);
everything else (config, weights, history, metrics) is as for any run.
"""

from __future__ import annotations

PRESETS: dict[str, dict] = {
    "mnist5k-z2": dict(dataset="mnist5k", model="mlp", latent_dim=2, hidden_sizes=(512, 256), epochs=50),
    "mnist5k-conv-z16": dict(dataset="mnist5k", model="conv", latent_dim=16, hidden_sizes=(256,), epochs=50),
    "sprites-conv-z10-beta1": dict(dataset="sprites", model="conv", latent_dim=10, hidden_sizes=(256,),
                                   beta=1.0, epochs=10),
    "sprites-conv-z10-beta4": dict(dataset="sprites", model="conv", latent_dim=10, hidden_sizes=(256,),
                                   beta=4.0, epochs=10),
    "digits-mlp": dict(dataset="digits", model="mlp", latent_dim=8, hidden_sizes=(128,), epochs=150,
                       batch_size=64),
}

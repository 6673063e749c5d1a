"""The How it works page's component: the seed's five steps (input, q(z|x), z = μ + σ·ε, x̂, the loss)
drawn by `ui/explainer.js` inside the live decoder's component. In the browser it runs the checkpoint's
encoder and decoder (onnxruntime-web), so every step follows the pen; where it cannot (no WebAssembly,
a public-demo session's own model) the server encodes and decodes once per change and the same drawing
code paints what it computed (`computed`), the pen then reporting each finished stroke.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import numpy as np
import streamlit as st
import torch

import ui.live_decoder as live
from ui.loaders import model_key
from vae_core import Checkpoint
from vae_core.export import kl_order
from vae_core.latent import decode

STRIP = 8  # decodings of other draws from q(z|x) in step 3
REPORTS = ("x", "eps", "beta", "use_mu", "step")  # what the component tells Python, each when a gesture ends
NORMALIZE = {"mnist5k": "mnist", "mnist": "mnist", "fashion-mnist": "mnist", "kmnist": "mnist"}
# how each dataset's images were made, for a drawing: MNIST's own centring by the ink's box and mass


def where_it_runs(ckpt: Checkpoint) -> str | None:
    """Why the steps cannot run in this browser (then the server computes them), or None."""
    return live.unavailable(ckpt) or live.encoder_unavailable(ckpt)


def likelihood(ckpt: Checkpoint) -> dict:
    """What the browser needs to compute −log p(x|z) per pixel from the decoder's mean image."""
    config, model = ckpt.config, ckpt.model
    if config.likelihood == "gaussian":
        sigma = model.log_sigma.detach().cpu().reshape(-1) if model.log_sigma is not None else None
        log_sigma = math.log(config.sigma) if sigma is None else (
            float(sigma[0]) if sigma.numel() == 1 else [round(float(v), 5) for v in sigma])
        return {"kind": "gaussian", "name": config.likelihood_name, "log_sigma": log_sigma, "binarize": False}
    return {"kind": "bernoulli", "name": config.likelihood_name, "log_sigma": 0.0, "binarize": bool(config.binarize)}


@torch.no_grad()
def computed(ckpt: Checkpoint, x: torch.Tensor, eps: np.ndarray, strip: np.ndarray, use_mu: bool) -> dict:
    """What the browser would compute, computed here: the posterior of x (1, C, H, W), the decoding
    of z = μ + σ·ε (σ = 0 with use_mu), and the decodings of the strip's draws."""
    from vae_core.latent import encode

    mu, logvar = (t[0] for t in encode(ckpt.model, x))
    sigma = torch.exp(0.5 * logvar)
    z = mu + (0 if use_mu else sigma) * torch.as_tensor(eps, dtype=torch.float32)
    draws = mu + sigma * torch.as_tensor(strip, dtype=torch.float32)
    images = decode(ckpt.model, torch.vstack([z[None], draws]))
    return {"mu": _floats(mu), "logvar": _floats(logvar), "image": _floats(images[0]), "strip": _floats(images[1:])}


def _floats(t: torch.Tensor) -> list[float]:
    return [round(float(v), 6) for v in t.reshape(-1)]


def explainer(ckpt: Checkpoint, x: torch.Tensor, *, eps: np.ndarray, strip: np.ndarray, beta: float, use_mu: bool,
              texts: list[str], train_url: str, key: str, version: int, step: int = 0,
              on_change: Callable[[str, object], None] | None = None, in_browser: bool = True):
    """Mount the five steps for input x (1, C, H, W) in [0, 1], with ε (D,) and the strip's draws (STRIP, D).
    `on_change(name, value)` hears each of REPORTS when a gesture ends. in_browser False: the server
    computes each view (`computed`) and the drawing reports finished strokes. `step` > 0: presenter
    mode, that step alone, the arrow keys moving between them."""
    C, H, W = ckpt.image_shape
    data = {
        "mode": "explain", "key": key, "base": live.static_base(), "shape": [C, H, W], "display": live.display_size(H),
        "x": _floats(x), "eps": [float(v) for v in eps], "strip": np.asarray(strip, dtype=float).tolist(),
        "beta": float(beta), "use_mu": bool(use_mu), "kl_order": kl_order(ckpt), "likelihood": likelihood(ckpt),
        "texts": texts, "train_url": train_url, "step": int(step), "version": version,
        "draw": {"side": H * math.ceil(280 / H), "pen": 2.2 * math.ceil(280 / H),
                 "normalize": NORMALIZE.get(ckpt.config.dataset)} if C == 1 else None,
    }
    if in_browser:
        decoder = live.static_base() + "decoders/" + live._exported(ckpt, *model_key(ckpt))
        data |= {"model": decoder, "encoder": live.encoder_url(ckpt)}
    else:
        data |= {"model": "server", "encoder": None, "computed": computed(ckpt, x, eps, strip, use_mu)}
    data = json.loads(json.dumps(data, default=float))

    def heard(name: str) -> Callable[[], None]:
        return lambda: on_change(name, st.session_state[key].get(name)) if on_change else None

    callbacks = {f"on_{name}_change": heard(name) for name in REPORTS}
    return live._component(key=key, data=data, on_failed_change=lambda: live._remember_failure(key), **callbacks)

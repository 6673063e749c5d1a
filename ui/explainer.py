"""The How it works page's component: the seed's five steps (input, q(z|x), z = μ + σ·ε, x̂, the loss)
drawn by `ui/explainer.js` inside the live decoder's component. In the browser it runs the checkpoint's
encoder and decoder (onnxruntime-web), so every step follows the pen; where it cannot (no WebAssembly,
a public-demo session's own model) the server encodes and decodes once per change and the same drawing
code paints what it computed (`computed`), the pen then reporting each finished stroke.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import streamlit as st
import torch

import ui.live_decoder as live
from ui.display import show_grid
from ui.loaders import get_checkpoint, get_data
from vae_core import Checkpoint
from vae_core.export import kl_order
from vae_core.latent import decode, encode, lerp, prior_noise
from vae_core.library import checkpoint_dir

STRIP = 8  # decodings of other draws from q(z|x) in step 3
REPORTS = ("x", "seed", "beta", "use_mu", "step")  # what the component tells Python, each when a gesture ends
AUTOENCODER = "mnist5k-ae-z16"  # the β = 0 preset: a plain autoencoder, for "why the KL term matters"
VAE_TWIN = "mnist5k-conv-z16"  # what it is compared with when the chosen model is not an MNIST VAE
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
            float(sigma[0]) if sigma.numel() == 1 else [float(v) for v in sigma])  # exact: the engine's loss
        return {"kind": "gaussian", "name": config.likelihood_name, "log_sigma": log_sigma, "binarize": False}
    return {"kind": "bernoulli", "name": config.likelihood_name, "log_sigma": 0.0, "binarize": bool(config.binarize)}


@torch.no_grad()
def computed(ckpt: Checkpoint, x: torch.Tensor, eps: np.ndarray, strip: np.ndarray, use_mu: bool) -> dict:
    """What the browser would compute, computed here: the posterior of x (1, C, H, W), the decoding
    of z = μ + σ·ε (σ = 0 with use_mu), and the decodings of the strip's draws."""
    mu, logvar = (t[0] for t in encode(ckpt.model, x))
    sigma = torch.exp(0.5 * logvar)
    z = mu + (0 if use_mu else sigma) * torch.as_tensor(eps, dtype=torch.float32)
    draws = mu + sigma * torch.as_tensor(strip, dtype=torch.float32)
    images = decode(ckpt.model, torch.vstack([z[None], draws]))
    return {"mu": _floats(mu), "logvar": _floats(logvar), "image": _floats(images[0]), "strip": _floats(images[1:])}


def _floats(t: torch.Tensor) -> list[float]:
    return [round(float(v), 6) for v in t.reshape(-1)]


def plane_data(codes: np.ndarray, labels: np.ndarray | None, most: int = 1000) -> dict:
    """A 2-D model's test codes for step 2's latent plane: at most `most` (a seeded sample), each with its
    label's colour, and the half-width of the square drawn (the prior's 2σ circle and the codes inside it)."""
    from vae_core.images import label_hexes

    n = len(codes)
    rows = np.sort(np.random.default_rng(0).choice(n, most, replace=False)) if n > most else np.arange(n)
    picked = np.asarray(codes, dtype=np.float64)[rows]
    palette = label_hexes(int(np.max(labels)) + 1) if labels is not None and len(labels) else []
    colors = [palette[int(labels[r])] if labels is not None else "#4c6ef5" for r in rows]
    span = float(np.clip(np.quantile(np.abs(picked), 0.99) * 1.1 if len(picked) else 3.0, 3.0, 8.0))
    return {"codes": np.round(picked, 3).tolist(), "colors": colors, "span": round(span, 3)}


def explainer(ckpt: Checkpoint, x: torch.Tensor, *, eps: np.ndarray, strip: np.ndarray, beta: float, use_mu: bool,
              texts: list[str], train_url: str, key: str, version: int, step: int = 0,
              on_change: Callable[[str, object], None] | None = None, in_browser: bool = True,
              plane: dict | None = None, after: list[str] | None = None):
    """Mount the five steps for input x (1, C, H, W) in [0, 1], with ε (D,) and the strip's draws (STRIP, D).
    `on_change(name, value)` hears each of REPORTS when a gesture ends. in_browser False: the server
    computes each view (`computed`) and the drawing reports finished strokes. `step` > 0: presenter
    mode, that step alone, the arrow keys moving between them; `after` titles the steps the page draws
    below the component (their texts follow the five in `texts`), which presenter mode steps through too.
    `plane` (`plane_data`, 2-D models): step 2 also draws q(z|x) on the latent plane."""
    C, H, W = ckpt.image_shape
    data = {
        "mode": "explain", "key": key, "base": live.static_base(), "shape": [C, H, W], "display": live.display_size(H),
        "x": _floats(x), "eps": [float(v) for v in eps], "strip": np.asarray(strip, dtype=float).tolist(),
        "beta": float(beta), "use_mu": bool(use_mu), "kl_order": kl_order(ckpt), "likelihood": likelihood(ckpt),
        "texts": texts, "train_url": train_url, "step": int(step), "version": version, "plane": plane,
        "after": list(after or []),
        "draw": {"side": H * math.ceil(280 / H), "pen": 2.2 * math.ceil(280 / H),
                 "normalize": NORMALIZE.get(ckpt.config.dataset)} if C == 1 else None,
    }
    if in_browser:
        decoder = live.decoder_url(ckpt)
        data |= {"model": decoder, "encoder": live.encoder_url(ckpt)}
    else:
        data |= {"model": "server", "encoder": None, "computed": computed(ckpt, x, eps, strip, use_mu)}

    def heard(name: str) -> Callable[[], None]:
        return lambda: on_change(name, st.session_state[key].get(name)) if on_change else None

    return live.mount(key, data, {name: heard(name) for name in REPORTS})


def why_kl(ckpt: Checkpoint, *, samples: int = 8, steps: int = 8, large: bool = False) -> None:
    """A sixth panel: the chosen model (an MNIST VAE; else the shipped one) beside the shipped plain
    autoencoder (β = 0): samples from the prior and a straight line between two test images' codes, each
    decoded by both. Without the KL term nothing keeps the codes near N(0, I), so the prior's samples and
    the line's middle fall where the decoder never learned anything. `large`: for a projector, four
    images a row at 200 px."""
    per_row, width = (4, 200) if large else (samples, None)
    folder = checkpoint_dir()
    paths = {name: folder / f"{name}.pt" for name in (AUTOENCODER, VAE_TWIN)}
    vae = ckpt if ckpt.config.dataset == "mnist5k" and ckpt.config.beta > 0 else (
        get_checkpoint(paths[VAE_TWIN]) if paths[VAE_TWIN].exists() else None)
    if vae is None or not paths[AUTOENCODER].exists():
        st.caption(f"(This panel compares an MNIST VAE with the shipped plain autoencoder {AUTOENCODER}; "
                   "one of them is not in the library.)")
        return
    ae = get_checkpoint(paths[AUTOENCODER])
    test = get_data(ae).split("test")
    first = 0
    other = next((i for i in range(len(test)) if test.labels is None or int(test.labels[i]) != int(test.labels[first])),
                 len(test) - 1)
    ends = test.images[[first, other]]
    columns = st.columns(2, gap="large")
    for column, model in zip(columns, (vae, ae), strict=True):
        with column:
            name = model.path.stem
            beta = model.config.beta
            kind = "a plain autoencoder: β = 0, the KL not paid" if beta == 0 else f"a VAE, β = {beta:g}"
            kl = model.metrics.get("test_kl")
            kl_text = f" · its codes' KL to the prior: {kl:.0f} nats a test image" if kl is not None else ""
            st.markdown(f"**{name}**: {kind}{kl_text}")
            st.caption("samples: z ~ N(0, I), decoded")
            show_grid(decode(model.model, prior_noise(samples, model.latent_dim, seed=0)), per_row=per_row, width=width)
            mu, _ = encode(model.model, ends)
            st.caption("a straight line from one test image's code to another's, decoded")
            show_grid(decode(model.model, lerp(mu[0], mu[1], steps)), per_row=per_row if large else steps, width=width)

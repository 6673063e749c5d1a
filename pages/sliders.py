"""Sliders: one per latent dimension, most informative first; the decoder answers as they move."""

import numpy as np
import streamlit as st
import torch

from pages.common import encoded, require_checkpoint, require_data, show_grid
from vae_core.images import grid_png, png_bytes, to_display
from vae_core.latent import decode, kl_ranking, traversal_grid

LIMIT = 4.0  # slider range ±LIMIT, in prior standard deviations
VISIBLE = 8  # dimensions shown before the fold

st.header("Sliders")
st.caption("Each slider is one coordinate of z. Dimensions are ordered by how much information they "
           "carry (mean KL to the prior on the test split, nats); collapsed ones barely change the image.")
ckpt = require_checkpoint()
bundle = require_data(ckpt)
D = ckpt.config.latent_dim
mu, logvar = encoded(ckpt, "test")
kl, order = kl_ranking(torch.from_numpy(mu), torch.from_numpy(logvar))
model_key = f"{ckpt.path}:{ckpt.path.stat().st_mtime}"


def set_z(z: np.ndarray) -> None:
    for d in range(D):
        st.session_state[f"z_{d}"] = float(np.clip(z[d], -LIMIT, LIMIT))


if st.session_state.get("sliders_model") != model_key:  # a new model: start from its zero code
    st.session_state["sliders_model"] = model_key
    set_z(np.zeros(D))

with st.container(border=True):
    c1, c2, c3, c4 = st.columns([1, 1, 2, 1])
    if c1.button("Zero", help="z = 0, the prior's mean"):
        set_z(np.zeros(D))
    if c2.button("Prior sample", help="z ~ N(0, I)"):
        rng = np.random.default_rng(st.session_state.get("prior_draws", 0))
        st.session_state["prior_draws"] = st.session_state.get("prior_draws", 0) + 1
        set_z(rng.standard_normal(D))
    test = bundle.split("test")
    index = c3.number_input(f"Test image (0–{len(test) - 1})", 0, len(test) - 1, 0, key="slider_index")
    if c4.button("Encode it", help="z = the posterior mean of that image"):
        set_z(mu[int(index)])


def current_z() -> torch.Tensor:
    return torch.tensor([st.session_state[f"z_{d}"] for d in range(D)], dtype=torch.float32)


def dim_slider(d: int) -> None:
    st.slider(f"z[{d}] · KL {kl[d]:.2f} nats", -LIMIT, LIMIT, step=0.05, key=f"z_{d}")


@st.fragment
def live_decoder() -> None:
    left, right = st.columns([3, 2])
    with left:
        ranked = [int(d) for d in order]
        for d in ranked[:VISIBLE]:
            dim_slider(d)
        if D > VISIBLE:
            with st.expander(f"{D - VISIBLE} more dimensions (less KL)"):
                for d in ranked[VISIBLE:]:
                    dim_slider(d)
    z = current_z()
    image = decode(ckpt.model, z)
    st.session_state["slider_image"] = image[0].numpy()
    with right:
        st.image(to_display(image[0], scale=None), caption="decoder(z)", width=280)
        st.download_button("Download PNG", png_bytes(image[0], scale=8), file_name="decoded.png",
                           mime="image/png")
        st.caption("z = [" + ", ".join(f"{v:.2f}" for v in z.tolist()) + "]")


live_decoder()

st.subheader("Traversals")
st.caption("Each row sweeps one dimension from −3 to +3 around the current z, the others held fixed.")
rows = st.slider("Dimensions to traverse (by KL)", 1, D, min(D, 6), key="trav_rows")
steps = 9
codes = traversal_grid(current_z(), [int(d) for d in order[:rows]], steps=steps)
images = decode(ckpt.model, codes)
show_grid(images, per_row=steps, width=84)
st.download_button("Download traversal PNG", grid_png(images, steps),
                   file_name="traversal.png", mime="image/png")

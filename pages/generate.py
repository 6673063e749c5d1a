"""Generate: samples from the prior p(z) = N(0, I), decoded."""

import streamlit as st

from ui.display import page_header, show_grid
from ui.session import require_checkpoint
from vae_core.images import grid_png
from vae_core.latent import sample_prior

page_header(
    "Generate",
    "Draw z from the prior N(0, T²·I) and decode it. Lower temperature T gives more typical, less varied samples.",
)
ckpt = require_checkpoint()

c1, c2, c3 = st.columns(3)
n = c1.slider("Samples", 4, 64, 32, step=4, key="gen_n")
temperature = c2.slider("Temperature T", 0.0, 2.0, 1.0, step=0.05, key="gen_t")
seed = c3.number_input("Seed", 0, 1_000_000, 0, key="gen_seed")

z, images = sample_prior(ckpt.model, n, temperature=temperature, seed=int(seed))
st.session_state["gen_images"] = images
show_grid(images, per_row=8)
st.download_button(
    "Download PNG grid",
    grid_png(images, 8),
    file_name=f"{ckpt.path.stem}-samples-T{temperature:g}-seed{seed}.png",
    mime="image/png",
)

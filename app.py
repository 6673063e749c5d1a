"""VAE Latent Explorer: `streamlit run app.py`.

A first page until the explorer's pages land: pick a checkpoint from checkpoints/, see its
training summary and samples from its prior.
"""

from pathlib import Path

import streamlit as st
import torch

from vae_core import VAEError, describe_device, load_checkpoint, resolve_device
from vae_core.cli import info_dict
from vae_core.latent import sample_prior

CHECKPOINTS = Path(__file__).parent / "checkpoints"

st.set_page_config(page_title="VAE Latent Explorer", page_icon="🧭", layout="wide")


@st.cache_resource(show_spinner="Loading model…")
def cached_checkpoint(path: str, mtime: float):
    return load_checkpoint(path)


def main() -> None:
    st.title("VAE Latent Explorer")
    st.sidebar.caption(f"Device: {describe_device(resolve_device('auto'))}")
    files = sorted(CHECKPOINTS.glob("*.pt"))
    if not files:
        st.info("No checkpoint yet. Train one from a terminal, e.g. "
                "`python -m vae_core train --dataset mnist5k --epochs 10`, then reload this page.")
        return
    choice = st.sidebar.selectbox("Checkpoint", files, format_func=lambda p: p.name)
    try:
        ckpt = cached_checkpoint(str(choice), choice.stat().st_mtime)
    except VAEError as e:
        st.error(str(e))
        return
    info = info_dict(ckpt)
    c = info["config"]
    cols = st.columns(4)
    cols[0].metric("Dataset", c["dataset"])
    cols[1].metric("Latent size", c["latent_dim"])
    cols[2].metric("β", f"{c['beta']:g}")
    nelbo = info["history"]["last_test_nelbo"]
    cols[3].metric("Test nELBO (nats)", "—" if nelbo is None else f"{nelbo:.1f}",
                   help=f"Negative ELBO per test image; likelihood: {info['likelihood']}")
    seed = st.number_input("Seed", 0, 10_000, 0)
    _, images = sample_prior(ckpt.model, 32, seed=int(seed))
    grid = torch.nn.functional.interpolate(images, scale_factor=4, mode="nearest")
    st.image([g.permute(1, 2, 0).numpy() for g in grid], clamp=True)


main()

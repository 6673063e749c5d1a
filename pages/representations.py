"""Representations: are the latent means a good representation with few labels? (the seed's
semi-supervised use; Kingma et al. 2014, M1)"""

from ui.routing import page_header

# first, before this page's imports: the router and the page's heading are on screen at once (ui/routing.py)
page_header(
    "A logistic-regression classifier is trained on a few labelled training images, using the latent "
    "means μ, the raw pixels, or PCA of the same size as the latent (fitted on all training images, "
    "without labels, like the VAE). Accuracy is on the whole test split.",
)

import plotly.graph_objects as go
import streamlit as st

from ui.display import plain
from ui.loaders import probe
from ui.session import require_checkpoint, require_data
from vae_core import VAEError

ckpt = require_checkpoint()
bundle = require_data(ckpt)
if bundle.labels is None:
    st.info("This model's data has no labels, so there is nothing to classify.")
    st.stop()

counts = st.multiselect("Labelled examples", [10, 30, 100, 300, 1000], default=[10, 100, 1000], key="probe_counts")
repeats = st.slider("Repeats (different labelled draws)", 1, 5, 1, key="probe_repeats")


if counts:
    try:
        result = probe(ckpt, tuple(counts), repeats)
    except VAEError as e:
        st.error(plain(str(e)))
        st.stop()
    labels = list(result["labels"])
    fig = go.Figure()
    for key, name, colour in (
        ("latent_acc", f"latent μ ({result['latent_dim']} dims)", "#d62728"),
        ("pca_acc", f"PCA ({result['latent_dim']} dims)", "#1f77b4"),
        ("pixel_acc", "raw pixels", "#7f7f7f"),
    ):
        fig.add_trace(
            go.Bar(
                x=[f"{n} labels" for n in labels],
                y=[result["labels"][n][key] for n in labels],
                name=name,
                marker_color=colour,
                text=[f"{result['labels'][n][key]:.2f}" for n in labels],
                textposition="outside",
            )
        )
    fig.update_layout(
        barmode="group",
        height=400,
        yaxis=dict(title="test accuracy", range=[0, 1.05]),
        margin=dict(l=10, r=10, t=20, b=10),
    )
    st.plotly_chart(fig, key="probe_chart")
    st.dataframe(
        [{"labels": n, **{k: round(v, 3) for k, v in result["labels"][n].items()}} for n in labels], hide_index=True
    )
    st.caption(f"{result['n_test']} test images.")
else:
    st.info("Choose at least one number of labelled examples.")

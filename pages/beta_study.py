"""β study: compare checkpoints trained with different β: rate against distortion, where the KL
goes, what each dimension does, and (on sprites) how disentangled the codes are."""

from ui.routing import page_header

# first, before this page's imports: the router and the page's heading are on screen at once (ui/routing.py)
page_header(
    "Higher β buys a smoother, more factorised latent space with less information about each "
    "image: KL (the rate) falls and reconstruction error (the distortion) rises. Numbers are test "
    "split, nats per example.",
)

from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from ui.display import plain
from ui.loaders import checkpoint_summary, get_checkpoint, mig
from ui.session import SELECTED, list_checkpoints
from vae_core import VAEError
from vae_core.hosting import paths_being_written
from vae_core.images import grid_png, make_grid, to_display
from vae_core.latent import decode, traversal_grid
from vae_core.library import unfinished_reason

files = [p for p in list_checkpoints() if "error" not in checkpoint_summary(p)]
if len(files) < 1:
    st.info(
        "No checkpoints yet. Train a few with different β on the **Train** page, or open a checkpoint "
        "file from the sidebar."
    )
    st.stop()
files_str = [str(p) for p in files]
by_dataset: dict[str, list[str]] = {}
for p in files:
    by_dataset.setdefault(checkpoint_summary(p)["config"]["dataset"], []).append(str(p))
selected = st.session_state.get(SELECTED)
dataset = checkpoint_summary(Path(selected))["config"]["dataset"] if selected else None


# compare models of the same data with different β: the selected model's group when its β differ,
# else the largest such group, else the selected model's group
def betas(group: list[str]) -> int:
    return len({checkpoint_summary(Path(p))["config"]["beta"] for p in group})


def unfinished(p: str) -> str | None:
    """Why checkpoint `p` is not a finished run's (still training, interrupted, stopped, no test metrics)."""
    return unfinished_reason(checkpoint_summary(Path(p)), running_here=Path(p).resolve() in paths_being_written())


# the default compares finished runs only: a run still going, abandoned or stopped early is chosen by hand
finished = {p for p in files_str if unfinished(p) is None}
by_dataset = {d: [p for p in g if p in finished] for d, g in by_dataset.items()}
group = by_dataset.get(dataset, [])
varied = [g for g in by_dataset.values() if betas(g) > 1]
default = (group if betas(group) > 1 else max(varied, key=len) if varied else group or sorted(finished))[:6]
chosen = st.multiselect(
    "Checkpoints to compare",
    [str(p) for p in files],
    default=default,
    format_func=lambda p: f"{Path(p).stem} (β={checkpoint_summary(Path(p))['config']['beta']:g})",
    key="beta_chosen",
)
if not chosen:
    st.info("Choose at least one checkpoint.")
    st.stop()

rows = []
for p in chosen:
    s = checkpoint_summary(Path(p))
    m = s["metrics"]
    ckpt = get_checkpoint(p)
    rows.append(
        {
            "path": p,
            "name": Path(p).stem,
            "beta": s["config"]["beta"],
            "dataset": s["config"]["dataset"],
            "recon": m.get("test_recon"),
            "kl": m.get("test_kl"),
            "active": m.get("active_units"),
            "kl_dims": ckpt.metrics.get("test_kl_per_dim"),
            "likelihood": s["likelihood"],
        }
    )
left_out = [f"{r['name']}: {unfinished(r['path'])}" for r in rows if r["recon"] is None]
flagged = [f"{r['name']}: {why}" for r in rows if r["recon"] is not None and (why := unfinished(r["path"]))]
rows = [r for r in rows if r["recon"] is not None]
if left_out:  # a chosen model is never left out silently
    st.warning(plain("Not shown, with no test metrics yet (written after a run's first epoch): "
                     + "; ".join(left_out)))
if flagged:
    st.caption(plain("Shown from their last saved epoch, not finished runs: " + "; ".join(flagged)))
if not rows:
    st.stop()

left, right = st.columns(2)
with left:
    fig = go.Figure(
        go.Scatter(
            x=[r["kl"] for r in rows],
            y=[r["recon"] for r in rows],
            mode="markers+text",
            text=[f"β={r['beta']:g}" for r in rows],
            textposition="top center",
            hovertext=[r["name"] for r in rows],
            marker=dict(size=12, color="#d62728"),
        )
    )
    fig.update_layout(
        title="Rate–distortion",
        xaxis_title="rate: KL (nats)",
        yaxis_title="distortion: reconstruction (nats)",
        height=380,
        margin=dict(l=10, r=10, t=40, b=10),
    )
    st.plotly_chart(fig, key="beta_rd")
    st.caption(f"Likelihoods: {', '.join(sorted({r['likelihood'] for r in rows}))}")
with right:
    width = max(len(r["kl_dims"] or []) for r in rows)
    z = np.full((len(rows), width), np.nan)
    for i, r in enumerate(rows):
        dims = sorted(r["kl_dims"] or [], reverse=True)
        z[i, : len(dims)] = dims
    heat = go.Figure(
        go.Heatmap(
            z=z,
            x=[f"#{d + 1}" for d in range(width)],
            y=[r["name"] for r in rows],
            colorscale="Magma",
            colorbar=dict(title="nats"),
        )
    )
    heat.update_layout(
        title="KL per dimension (sorted, largest first)",
        height=380,
        margin=dict(l=10, r=10, t=40, b=10),
        xaxis_title="dimension rank",
    )
    st.plotly_chart(heat, key="beta_heat")

table = [
    {
        "checkpoint": r["name"],
        "β": r["beta"],
        "recon (nats)": round(r["recon"], 2),
        "KL (nats)": round(r["kl"], 2),
        "active units": r["active"],
    }
    for r in rows
]


if all(get_checkpoint(r["path"]).config.dataset.startswith("sprites") for r in rows):
    for r, t in zip(rows, table, strict=True):
        ckpt = get_checkpoint(r["path"])
        try:
            t["MIG"] = round(mig(ckpt), 3)
        except VAEError as e:
            st.error(plain(str(e)))
    st.caption(
        "MIG: the mutual information gap (Chen et al. 2018) between the two latent dimensions most "
        "informative about each ground-truth factor, normalised by the factor's entropy; higher is "
        "more disentangled."
    )
st.dataframe(table, hide_index=True)

st.subheader("Traversals side by side")
st.caption("From z = 0, the most informative dimensions (rows) swept from −3 to +3.")
dims_shown = st.slider("Dimensions per model", 1, 10, 5, key="beta_dims")
cols = st.columns(min(len(rows), 3))
for i, r in enumerate(rows):
    ckpt = get_checkpoint(r["path"])
    order = np.argsort(ckpt.metrics.get("test_kl_per_dim") or [0.0] * ckpt.latent_dim)[::-1]
    codes = traversal_grid(torch.zeros(ckpt.latent_dim), [int(d) for d in order[:dims_shown]], steps=7)
    images = decode(ckpt.model, codes)
    with cols[i % len(cols)]:
        st.markdown(f"**{r['name']}** · β={r['beta']:g}")
        st.image(to_display(make_grid(images, nrow=7, scale=3), scale=1), width="stretch")
        st.download_button(
            "PNG", grid_png(images, 7), file_name=f"{r['name']}-traversal.png", mime="image/png", key=f"beta_dl_{i}"
        )

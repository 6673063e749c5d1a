"""Latent map: the encoded data projected to 2-D, coloured by what you want to see."""

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from ui.display import page_header, show_grid
from ui.live_decoder import plane_view, unavailable, version_of
from ui.loaders import anomaly_scores, cached_methods, encoded, model_key, projection
from ui.session import require_checkpoint, require_data
from vae_core import VAEError
from vae_core.images import grid_png, to_display
from vae_core.latent import decode, reconstruct
from vae_core.projection import LATENT, coords_csv, warm_up_in_background

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
LIVE_METHODS = (LATENT, "pca")  # maps whose inverse is linear: the browser can decode under the pointer
POINTER_POINTS = 5000  # codes drawn on the pointer pad
METHOD_NAMES = {LATENT: "Latent plane (z is 2-D)", "pca": "PCA", "umap": "UMAP", "tsne": "t-SNE"}

page_header("Latent map")
ckpt = require_checkpoint()
bundle = require_data(ckpt)
D = ckpt.config.latent_dim
key = model_key(ckpt)


# --- controls
c = st.columns([1, 1.3, 1, 1, 1.4])
split = c[0].radio("Split", ["test", "train"], horizontal=True, key="map_split")
methods = ([LATENT] if D == 2 else []) + ["pca", "umap", "tsne"]
# the latent plane for a 2-D z; else UMAP when it is already on disk (shipped models); else PCA
umap_on_disk = "umap" in cached_methods(ckpt)
first = LATENT if D == 2 else "umap" if umap_on_disk else "pca"
if not umap_on_disk:  # a UMAP may be asked for: numba compiles it meanwhile (once per server)
    warm_up_in_background()
method = c[1].selectbox(
    "Projection", methods, index=methods.index(first), format_func=METHOD_NAMES.get, key="map_method"
)
params: dict = {}
if method == "umap":
    params["n_neighbors"] = c[2].slider("n_neighbors", 2, 100, 15, key="map_nn")
    params["min_dist"] = c[3].slider("min_dist", 0.0, 1.0, 0.1, step=0.05, key="map_md")
elif method == "tsne":
    params["perplexity"] = c[2].slider("perplexity", 5.0, 100.0, 30.0, key="map_perp")
colour_options = (
    (["label"] if bundle.labels is not None else [])
    + list(bundle.factor_names)
    + ["reconstruction error", "anomaly score (nELBO)"]
)
colour = c[4].selectbox("Colour by", colour_options, key="map_colour")
views = ["Scatter", "Thumbnails", "Decoded grid"] + (["Decode under the pointer"] if method in LIVE_METHODS else [])
mode = st.radio(
    "View",
    views,
    horizontal=True,
    key="map_mode",
    help="Thumbnails draws the images themselves at their positions (a sample); Decoded grid "
    "shows what the decoder makes of each point of a grid laid over the map; Decode under the pointer "
    "(latent plane and PCA, whose inverse is linear) decodes the point under the pointer as it moves.",
)

mu, _ = encoded(ckpt, split)
data = bundle.split(split)
n = len(mu)

# --- the projection: PCA at once while a slower one is computed (each is computed once, then cached)
done = st.session_state.setdefault("projections_done", set())
proj_id = (key, split, method, tuple(sorted(params.items())))
placeholder = st.empty()
try:
    if method in ("umap", "tsne") and proj_id not in done:
        with placeholder.container():
            quick = projection(mu, key, split, "pca", ())
            st.info(
                f"Showing PCA while {METHOD_NAMES[method]} is computed (the first UMAP in a session "
                "also compiles its code: up to a minute)."
            )
            st.plotly_chart(
                go.Figure(
                    go.Scattergl(
                        x=quick.coords[:, 0], y=quick.coords[:, 1], mode="markers", marker=dict(size=4, color="#1f77b4")
                    )
                ),
                key="map_quick",
            )
    with st.spinner(f"Computing {METHOD_NAMES[method]}…"):
        proj = projection(mu, key, split, method, tuple(sorted(params.items())))
    done.add(proj_id)
except VAEError as e:
    st.error(str(e))
    st.stop()
placeholder.empty()
xy = proj.coords


def colour_values() -> tuple[np.ndarray, list[str] | None]:
    """Per-point values, and category names when they are categorical."""
    if colour == "label":
        names = list(bundle.class_names) or [str(v) for v in sorted(set(data.labels.tolist()))]
        return data.labels.numpy(), names
    if colour in bundle.factor_names:
        f = bundle.factor_names.index(colour)
        values = bundle.factor_values[f]
        if isinstance(values[0], str):
            return data.factors[:, f].numpy(), list(values)
        return np.asarray(values, dtype=float)[data.factors[:, f].numpy()], None
    return anomaly_scores(ckpt, split, "recon" if colour.startswith("recon") else "nelbo"), None


def scatter() -> go.Figure:
    values, names = colour_values()
    fig = go.Figure()
    size = 5 if n <= 5000 else 3
    if names is not None:
        for k, name in enumerate(names):
            idx = np.flatnonzero(values == k)
            if len(idx):
                fig.add_trace(
                    go.Scattergl(
                        x=xy[idx, 0],
                        y=xy[idx, 1],
                        mode="markers",
                        name=name,
                        customdata=idx,
                        marker=dict(size=size, color=PALETTE[k % 10]),
                        hovertemplate=f"{name}<br>#%{{customdata}}<extra></extra>",
                    )
                )
    else:
        idx = np.arange(n)
        fig.add_trace(
            go.Scattergl(
                x=xy[:, 0],
                y=xy[:, 1],
                mode="markers",
                customdata=idx,
                marker=dict(
                    size=size, color=values, colorscale="Viridis", showscale=True, colorbar=dict(title=colour[:14])
                ),
                hovertemplate="#%{customdata}: %{marker.color:.3g}<extra></extra>",
            )
        )
    fig.update_layout(
        height=620,
        margin=dict(l=10, r=10, t=30, b=10),
        dragmode="lasso",
        legend=dict(itemsizing="constant", title=colour),
    )
    return fig


def selected_indices(event) -> np.ndarray:
    """Data indices of the points in a box/lasso selection (each trace carries them as customdata)."""
    points = event.selection.points if event else []
    out = [p["customdata"] for p in points if p.get("customdata") is not None]
    return np.asarray([int(v[0] if isinstance(v, list) else v) for v in out], dtype=int)


def pointer_view() -> None:
    """The map as a pad: the decoder runs in the browser on the code under the pointer."""
    if reason := unavailable(ckpt):
        st.warning(f"This view needs the decoder in your browser: {reason}. Decoded grid shows the same plane.")
        return
    origin, du, dv = proj.linear_inverse()
    lo, hi = np.percentile(xy, 1, axis=0), np.percentile(xy, 99, axis=0)
    pad = 0.08 * (hi - lo)
    values, names = colour_values()
    shown = np.random.default_rng(0).choice(n, size=min(n, POINTER_POINTS), replace=False)
    plane_view(
        ckpt, origin=origin, du=du, dv=dv, extent=(lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1]),
        key="map_pointer", version=version_of(key, split, method), points=xy[shown], pad=440, palette=PALETTE,
        colours=values[shown] if names is not None else None, legend=names, point=tuple(np.median(xy, axis=0)),
    )
    what = "the latent plane itself" if method == LATENT else "z = mean + p · components (the exact PCA inverse)"
    st.caption(f"Each point of the square decodes to {what}; drawn: {len(shown)} of the {n} {split} codes"
               + (f", coloured by {colour}." if names is not None else "."))


if mode == "Scatter":
    left, right = st.columns([3, 2])
    with left:
        event = st.plotly_chart(scatter(), key="map_chart", on_select="rerun", selection_mode=("box", "lasso"))
        st.caption(
            f"{METHOD_NAMES[method]} of the {n} {split} codes (posterior means)"
            + (" · loaded from cache" if proj.params.get("cached") else f" · {proj.seconds:.1f} s")
        )
    with right:
        chosen = selected_indices(event)
        if len(chosen):
            shown = chosen[:24]
            st.markdown(f"**{len(chosen)} selected** (showing {len(shown)}): originals, then reconstructions")
            originals = data.images[torch.as_tensor(shown)]
            show_grid(originals, per_row=6, width=72)
            show_grid(reconstruct(ckpt.model, originals), per_row=6, width=72)
        else:
            st.info("Draw a lasso or a box around points to see those images beside their reconstructions.")
elif mode == "Thumbnails":
    count = st.slider("Images drawn", 50, 600, 250, step=50, key="map_thumbs")
    pick = np.random.default_rng(0).choice(n, size=min(count, n), replace=False)
    span = float(np.ptp(xy, axis=0).max()) or 1.0
    side = span / 28
    fig = go.Figure(go.Scatter(x=xy[pick, 0], y=xy[pick, 1], mode="markers", marker=dict(size=1, opacity=0)))
    from PIL import Image

    for i in pick:
        img = Image.fromarray(to_display(data.images[i], scale=1))
        fig.add_layout_image(
            source=img,
            x=float(xy[i, 0]),
            y=float(xy[i, 1]),
            xref="x",
            yref="y",
            sizex=side,
            sizey=side,
            xanchor="center",
            yanchor="middle",
            layer="above",
        )
    fig.update_layout(height=720, margin=dict(l=10, r=10, t=10, b=10), plot_bgcolor="white")
    fig.update_yaxes(scaleanchor="x")
    st.plotly_chart(fig, key="map_thumbnails")
elif mode == "Decode under the pointer":
    pointer_view()
else:
    cells = st.slider("Grid cells per side", 5, 25, 12, key="map_cells")
    lo, hi = np.percentile(xy, 2, axis=0), np.percentile(xy, 98, axis=0)
    gx, gy = np.linspace(lo[0], hi[0], cells), np.linspace(hi[1], lo[1], cells)  # top row = high y
    points = np.array([[x, y] for y in gy for x in gx], dtype=np.float32)
    with st.spinner("Decoding the grid…"):
        z = proj.inverse(points)
        images = decode(ckpt.model, torch.from_numpy(np.asarray(z, dtype=np.float32)))
    how = {
        "latent": "the latent plane itself",
        "pca": "the exact PCA inverse",
        "umap": "UMAP's inverse transform" if proj.fitted is not None else "nearest encoded neighbours",
        "tsne": "nearest encoded neighbours (t-SNE has no inverse)",
    }[method]
    st.caption(
        f"Each cell decodes the code behind its map position, through {how}. Rows run from high y "
        f"(top) to low y; the grid covers the 2nd–98th percentile of the map."
    )
    show_grid(images, per_row=cells, width=max(36, 760 // cells))
    st.download_button(
        "Download grid PNG", grid_png(images, cells), file_name=f"decoded-grid-{method}.png", mime="image/png"
    )

labels = data.labels.numpy() if data.labels is not None else None
st.download_button(
    "Download coordinates (CSV)",
    coords_csv(proj, labels=labels),
    file_name=f"{ckpt.path.stem}-{split}-{method}.csv",
    mime="text/csv",
)

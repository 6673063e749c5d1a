"""Latent map: the encoded data projected to 2-D, coloured by what you want to see.

The method picker, its parameter sliders and what each view offers come from the registry
(`vae_core.projection.PROJECTION_METHODS`). Every code of the split is drawn (a WebGL scatter); images
are shown for a sample only (thumbnails, the gallery of a selection). Above LARGE_MAP codes, background
methods (UMAP, t-SNE) are computed in a job (`ui.loaders.projection_job`) while a first view is shown:
the QUICK map (PCA), then the method fitted on a sample.
"""

from ui.routing import page_header

# first, before this page's imports: the router and the page's heading are on screen at once (ui/routing.py)
page_header()

import time

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from ui import address
from ui.display import plain, show_grid, show_pairs
from ui.live_decoder import hover_images, plane_view, unavailable, version_of
from ui.loaders import (
    anomaly_scores,
    cached_methods,
    directions,
    encoded,
    latent_index,
    model_key,
    projection,
    projection_job,
)
from ui.map_figure import PALETTE, colours_for, scatter_figure
from ui.session import page_fragment, require_checkpoint, require_data, sliders_button, sliders_picker
from vae_core import VAEError
from vae_core.images import grid_png, to_display
from vae_core.latent import decode, reconstruct
from vae_core.projection import (
    LARGE_MAP,
    MIN_POINTS,
    PROJECTION_METHODS,
    QUICK,
    Projection,
    ProjectionJob,
    coords_csv,
    default_method,
    offered_methods,
    warm_up_in_background,
)
from vae_core.streaming import as_tensor

POINTER_POINTS = 5000  # codes drawn on the pointer pad
GALLERY = 24  # images of a selection shown (a seeded sample of a larger selection)
DISTANCES = {"euclidean": "Euclidean on μ", "symmetric-kl": "symmetric KL of q(z|x)"}

ckpt = require_checkpoint()
bundle = require_data(ckpt)
D = ckpt.latent_dim
key = model_key(ckpt)


def label(name: str) -> str:
    return PROJECTION_METHODS[name].label


# --- controls: a column per parameter of the method that has the most
methods = offered_methods(D)
c = st.columns([1, 1.3, *[1] * max(len(PROJECTION_METHODS[m].parameters) for m in methods), 1.4])
address.take("split", "map_split", address.choice(["test", "train"]))
address.take("method", "map_method", address.choice(methods))
split = c[0].radio("Split", ["test", "train"], horizontal=True, key="map_split")
on_disk = cached_methods(ckpt, split)
if any(PROJECTION_METHODS[m].warm_up and m not in on_disk for m in methods):
    warm_up_in_background()  # that method may be asked for: its code compiles meanwhile (once per server)
first = default_method(D, on_disk)
address.initial("map_method", first)
method = c[1].selectbox(
    "Projection", methods, format_func=label, key="map_method",
    help="; ".join(f"{label(m)}: {PROJECTION_METHODS[m].help}" for m in methods),
)
spec = PROJECTION_METHODS[method]
for p in spec.parameters:
    if p.slider:
        kind = address.whole if isinstance(p.default, int) else address.real
        address.take(p.name, f"map_{method}_{p.name}", kind(p.slider[0], p.slider[1]))
        address.initial(f"map_{method}_{p.name}", p.default)
params = {
    p.name: column.slider(p.name, p.slider[0], p.slider[1], step=p.slider[2], help=p.help,
                          key=f"map_{method}_{p.name}")
    for column, p in zip(c[2:-1], [p for p in spec.parameters if p.slider], strict=False)
}
colour_options = (
    (["label"] if bundle.labels is not None else [])
    + list(bundle.factor_names)
    + ["reconstruction error", "anomaly score (nELBO)"]
)
address.take("colour", "map_colour", address.choice(colour_options))
colour = c[-1].selectbox("Colour by", colour_options, key="map_colour")
views = ["Scatter", "Thumbnails", "Decoded grid"] + (["Decode under the pointer"] if spec.linear else [])
views += ["Attribute axes"] if bundle.labels is not None or bundle.factors is not None else []
address.take("view", "map_mode", address.choice(views))
mode = st.radio(
    "View",
    views,
    horizontal=True,
    key="map_mode",
    help="Thumbnails draws the images themselves at their positions (a sample); Decoded grid "
    "shows what the decoder makes of each point of a grid laid over the map; Decode under the pointer "
    "(latent plane and PCA, whose inverse is linear) decodes the point under the pointer as it moves. Attribute "
    "axes places every code by how far it lies along two attribute directions of your choice (x and y).",
)

mu, logvar = encoded(ckpt, split)
rows = bundle.test_idx if split == "test" else bundle.train_idx  # the split's rows of the dataset (no copy)
labels = bundle.labels[rows].numpy() if bundle.labels is not None else None
n = len(mu)
if n < MIN_POINTS:  # a tiny folder's split
    st.info(f"A map needs at least {MIN_POINTS} images, and this model's {split} split has {n}: "
            + ("try the train split, or " if split == "test" else "") + "train on a folder with more images.")
    st.stop()
params_key = tuple(sorted(params.items()))
address.take("point", "map_point", address.whole(0, n - 1))
address.keep("point", st.session_state.get("map_point"))  # the neighbours asked for (a click changes it below)
address.keep("split", split, "test")
address.keep("method", method, first)
for name, value in params.items():
    address.keep(name, value, next(p.default for p in spec.parameters if p.name == name))
for other in {p.name for m in PROJECTION_METHODS.values() for p in m.parameters} - set(params):
    address.keep(other, None)  # another method's parameters leave the address with it
address.keep("colour", colour, colour_options[0])
address.keep("view", mode, "Scatter")


def images_at(positions) -> torch.Tensor:
    """The split's images at `positions` as one tensor (ask for a few: a gallery, thumbnails)."""
    return as_tensor(bundle.images[rows[torch.as_tensor(np.asarray(positions), dtype=torch.long)]])


def computed_here() -> Projection:
    """A map small enough to wait for: the QUICK map shown at once while a slower one is computed (once)."""
    done = st.session_state.setdefault("projections_done", set())
    proj_id = (key, split, method, params_key)
    placeholder = st.empty()
    if spec.background and proj_id not in done:
        with placeholder.container():
            compiles = " (the first in a session also compiles its code: up to a minute)" if spec.warm_up else ""
            st.info(f"Showing {label(QUICK)} while {label(method)} is computed{compiles}.")
            quick = projection(mu, key, split, QUICK, ()).coords
            st.plotly_chart(go.Figure(go.Scattergl(x=quick[:, 0], y=quick[:, 1], mode="markers",
                                                   marker=dict(size=4, color=PALETTE[0]))), key="map_quick")
    with st.spinner(f"Computing {label(method)}…"):
        proj = projection(mu, key, split, method, params_key)
    done.add(proj_id)
    placeholder.empty()
    return proj


@page_fragment(run_every=1.0)
def watch(job: ProjectionJob, showing_quick: bool) -> None:
    """The background job's progress; the page reruns when it has a new view to show."""
    status = job.status()
    if status.done or (status.quick is not None) != showing_quick:
        st.rerun()
    st.progress(status.progress, text=f"{label(method)} of all {n:,} codes, in the background · "
                                      f"step {status.step_number} of {status.steps}: {status.step}")


def computed_in_background() -> Projection:
    """A large map: the full projection when the background job has it, else a first view (QUICK, then
    the method fitted on a sample) with the job's progress."""
    job = projection_job(mu, key, split, method, params_key)
    watched = st.session_state.get("map_job")
    if watched is not None and watched is not job and not watched.status().done:
        watched.cancel()  # this session asked for another map; a session still watching it restarts it
    st.session_state["map_job"] = job
    status = job.status()
    if status.error:
        raise VAEError(status.error)
    if status.result is not None:
        return status.result
    watch(job, status.quick is not None)
    return status.quick or projection(mu, key, split, QUICK, ())


try:
    proj = computed_in_background() if n > LARGE_MAP and spec.background else computed_here()
except VAEError as e:
    st.error(plain(str(e)))
    st.stop()
xy = proj.coords
first_view = proj.method != method or "sample" in proj.params  # shown while the full projection computes


def view_caption() -> str:
    """Which map this is, of how many codes, and where it came from."""
    what = label(proj.method)
    if sample := proj.params.get("sample"):
        what += f" fitted on a seeded sample of {sample:,} codes, the others placed by {proj.spec.placement},"
    how = "loaded from cache" if proj.params.get("cached") else f"{proj.seconds:.1f} s"
    text = f"{what} of the {n:,} {split} codes (posterior means) · {how}"
    return f"First view: {text}. The full {label(method)} replaces it when ready." if first_view else text


def colour_values() -> tuple[np.ndarray, list[str] | None]:
    """Per-point values, and category names when they are categorical."""
    if colour == "label":
        return labels, list(bundle.class_names) or [str(v) for v in sorted(set(labels.tolist()))]
    if colour in bundle.factor_names:
        f = bundle.factor_names.index(colour)
        values, index = bundle.factor_values[f], bundle.factors[rows, f].numpy()
        if isinstance(values[0], str):
            return index, list(values)
        return np.asarray(values, dtype=np.float32)[index], None
    return anomaly_scores(ckpt, split, "recon" if colour.startswith("recon") else "nelbo").astype(np.float32), None


def scatter() -> go.Figure:
    values, names = colour_values()
    # the same coordinates keep the user's zoom across reruns (colour, selection); a new map resets it
    revision = repr((key, split, proj.method, first_view, params_key))
    return scatter_figure(xy, values, names, colour, revision=revision)


def selected_indices(event) -> np.ndarray:
    """Data indices of the points in a box/lasso selection (each trace carries them as customdata)."""
    points = event["selection"]["points"] if event else []  # (key access: a PlotlyState, or a plain dict)
    out = [p["customdata"] for p in points if p.get("customdata") is not None]
    return np.asarray([int(v[0] if isinstance(v, list) else v) for v in out], dtype=int)


def point_name(i: int) -> str:
    """'#12 · 7': a point's index in its split, and its label when the data has labels (a folder's subfolder
    name: shown through `plain` wherever Markdown would read it)."""
    if labels is None:
        return f"#{i}"
    return f"#{i} · {bundle.class_names[labels[i]] if bundle.class_names else labels[i]}"


def one_point(i: int) -> None:
    """A single selected point: its image and reconstruction, larger, and a way to start the Sliders there."""
    st.markdown(f"**{plain(f'{split} image {point_name(i)}')}**: the original, then its reconstruction")
    original = images_at([i])
    show_grid(torch.cat([original, reconstruct(ckpt.model, original)]), per_row=2, width=140)
    sliders_button(key, mu[i], f"{split} image {point_name(i)}", key="map_to_sliders")


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
        key="map_pointer", version=version_of(key, split, method), points=xy[shown], pad=440,
        palette=colours_for(names), colours=values[shown] if names is not None else None, legend=names,
        point=tuple(np.median(xy, axis=0)),
    )
    st.caption(f"Each point of the square decodes to the code behind it ({proj.inverse_in_words()}); "
               f"drawn: {len(shown)} of the {n} {split} codes"
               + (f", coloured by {colour}." if names is not None else "."))


def neighbour_query() -> tuple[int | None, np.ndarray, np.ndarray, float]:
    """The point whose neighbours are asked for (a click on the map sets it, or the number box) and its
    nearest codes in z with their distances, and the search's time in ms. Read before the chart is
    drawn, so the chart shows them in this run."""
    picked = selected_indices(st.session_state.get("map_chart"))
    last = st.session_state.get("map_last_click")
    if len(picked) == 1 and int(picked[0]) != last:  # a new click: ask for its neighbours
        st.session_state["map_point"] = int(picked[0])
    st.session_state["map_last_click"] = int(picked[0]) if len(picked) == 1 else None
    point = st.session_state.get("map_point")
    if point is None or not 0 <= point < n:
        return None, np.zeros(0, dtype=int), np.zeros(0), 0.0
    index = latent_index(ckpt, split)
    metric = st.session_state.get("map_metric", "euclidean")
    metric = metric if metric in index.metrics else "euclidean"
    started = time.perf_counter()
    found, dist = index.query(mu[point], int(st.session_state.get("map_k", 12)), logvar=logvar[point],
                              metric=metric, exclude=[point])
    return int(point), found[0], dist[0], 1000 * (time.perf_counter() - started)


def neighbours_panel(point: int | None, found: np.ndarray, dist: np.ndarray, ms: float) -> None:
    """The neighbour search's controls and its gallery (the point first, then its neighbours, nearest first)."""
    st.subheader("Nearest neighbours in z")
    a, b, c = st.columns([1.2, 1, 1.6])
    a.number_input(f"Of point # (0–{n - 1})", 0, n - 1, value=None, key="map_point",
                   placeholder="click a point, or type its number",
                   help="Its nearest codes in the latent space itself (all dimensions), not on the 2-D picture")
    b.slider("How many", 4, 32, 12, step=4, key="map_k")
    c.radio("Distance", list(DISTANCES), format_func=DISTANCES.get, horizontal=True, key="map_metric",
            help="Euclidean between the posterior means μ; or the symmetric KL between the Gaussians q(z|x) "
                 "(nats), which measures a difference in μ against both images' σ")
    if point is None:
        st.caption("Click a point of the map (with the chart's zoom or pan tool) or type its number: its nearest "
                   "neighbours are ringed on the map and shown here.")
        return
    unit = " nats" if st.session_state.get("map_metric") == "symmetric-kl" else ""
    shown = np.concatenate([[point], found])
    st.caption(f"{split} image {plain(point_name(point))} (first), then its {len(found)} nearest codes, nearest first, "
               f"each with its distance · exact search over all {n:,} codes in {ms:.1f} ms")
    show_grid(images_at(shown), per_row=min(len(shown), 13), width=56,
              captions=[plain(point_name(point))] + [f"#{i} · {d:.2f}{unit}" for i, d in zip(found, dist, strict=True)])
    address.keep("point", point)


def attribute_axes() -> None:
    """Custom axes: x and y are two attribute directions (class-mean differences of the split's labels or
    factors); each code is placed at its coordinate along each, (z · d) / |d|."""
    named = directions(ckpt, split)
    names = [d.name for d in named]
    address.take("x", "map_axis_x", address.choice(names))
    address.take("y", "map_axis_y", address.choice(names))
    a, b = st.columns(2)
    address.initial("map_axis_y", names[min(1, len(names) - 1)])
    x_name = a.selectbox("x axis: more …", names, index=0, key="map_axis_x")
    y_name = b.selectbox("y axis: more …", names, key="map_axis_y")
    address.keep("x", x_name, names[0])
    address.keep("y", y_name, names[min(1, len(names) - 1)])
    dx, dy = (named[names.index(v)].vector for v in (x_name, y_name))
    units = np.stack([dx / np.linalg.norm(dx), dy / np.linalg.norm(dy)], 1)  # (D, 2)
    values, cats = colour_values()
    figure = scatter_figure(np.asarray(mu, dtype=np.float32) @ units, values, cats, colour,
                            revision=repr((key, split, x_name, y_name)))
    figure.update_layout(xaxis_title=f"{x_name} →", yaxis_title=f"{y_name} →")
    st.plotly_chart(figure, key="map_axes")
    hover_images(ckpt, split, chart="map_axes", key="map_axes_hover", labels=labels, class_names=bundle.class_names)
    cos = float(units[:, 0] @ units[:, 1])
    st.caption(f"Each of the {n:,} {split} codes at its coordinate along two directions (each the mean code of "
               f"the images with the attribute minus the mean of the others; units of z). The axes are not "
               f"orthogonal: cos = {cos:.2f}.")


def ring(figure: go.Figure, point: int, found: np.ndarray) -> None:
    """The asked-for point as a star and its neighbours ringed, over the map."""
    hover = "#%{customdata}<extra></extra>"
    figure.add_trace(go.Scattergl(
        x=xy[found, 0], y=xy[found, 1], mode="markers", name="neighbours", customdata=found.astype(np.int32),
        hovertemplate=hover, marker=dict(size=11, color="rgba(0,0,0,0)", line=dict(color="black", width=2))))
    figure.add_trace(go.Scattergl(
        x=xy[[point], 0], y=xy[[point], 1], mode="markers", name=f"#{point}", customdata=[point], hovertemplate=hover,
        marker=dict(size=16, symbol="star", color="black", line=dict(color="white", width=1))))


if mode == "Scatter":
    point, found, dist, search_ms = neighbour_query()
    left, right = st.columns([3, 2])
    with left:
        figure = scatter()
        if point is not None:
            ring(figure, point, found)
        event = st.plotly_chart(figure, key="map_chart", on_select="rerun",
                                selection_mode=("points", "box", "lasso"))
        hover_images(ckpt, split, chart="map_chart", key="map_hover", labels=labels, class_names=bundle.class_names)
        st.caption(
            view_caption()
        )
    with right:
        chosen = selected_indices(event)
        if len(chosen) == 1 or (point is not None and not len(chosen)):  # a click, or the point asked for
            one_point(int(chosen[0]) if len(chosen) else point)  # (a click redraws the chart, ending its selection)
        elif len(chosen):
            shown = np.sort(np.random.default_rng(0).choice(chosen, size=min(GALLERY, len(chosen)), replace=False))
            st.markdown(
                f"**{len(chosen):,} selected**"
                + (f" (a random {len(shown)} shown)" if len(shown) < len(chosen) else "")
                + ": each original above its reconstruction"
            )
            originals = images_at(shown)
            show_pairs(originals, reconstruct(ckpt.model, originals), per_row=6, width=56,  # fits the column
                       captions=[f"#{i}" for i in shown])
            sliders_picker(key, shown, mu, name=point_name, key="map_pick", split=split)
        else:
            st.info("Draw a lasso or a box around points to see those images beside their reconstructions, "
                    "and open one in the Sliders. With the chart's zoom or pan tool, a click selects one point.")
    neighbours_panel(point, found, dist, search_ms)
elif mode == "Thumbnails":
    count = st.slider("Images drawn", 50, 600, 250, step=50, key="map_thumbs")
    pick = np.random.default_rng(0).choice(n, size=min(count, n), replace=False)
    thumbnails = images_at(pick)
    span = float(np.ptp(xy, axis=0).max()) or 1.0
    side = span / 28
    fig = go.Figure(go.Scatter(x=xy[pick, 0], y=xy[pick, 1], mode="markers", marker=dict(size=1, opacity=0)))
    from PIL import Image

    for i, image in zip(pick, thumbnails, strict=True):
        img = Image.fromarray(to_display(image, scale=1))
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
elif mode == "Attribute axes":
    attribute_axes()
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
    st.caption(
        f"Each cell decodes the code behind its map position, through {proj.inverse_in_words()}. Rows run from high y "
        f"(top) to low y; the grid covers the 2nd–98th percentile of the map."
    )
    show_grid(images, per_row=cells, width=max(36, 760 // cells))
    st.download_button(
        "Download grid PNG", grid_png(images, cells), file_name=f"decoded-grid-{proj.method}.png", mime="image/png"
    )

st.download_button(
    "Download coordinates (CSV)",
    lambda: coords_csv(proj, labels=labels),  # written when clicked: 100,000 rows take a while
    file_name=f"{ckpt.path.stem}-{split}-{proj.method}{'-first-view' if first_view else ''}.csv",
    mime="text/csv",
)

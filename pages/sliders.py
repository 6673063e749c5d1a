"""Sliders: one per latent dimension, most informative first; the decoder, running in the browser,
repaints on every move of a drag (on the server, after release, when the browser cannot run it).
The small map beside the pad and the traversal grid below it are drawn in the browser too and follow
the drag (the grid is one batched decode). A release reruns only the pad's fragment (its PNG and the
z caption), and the PNGs are made when a download is clicked, so what a release asks of a busy server
stays small: one decode."""

from ui.routing import page_header

# first, before this page's imports: the router and the page's heading are on screen at once (ui/routing.py)
page_header(
    "Each slider is one coordinate of z. Dimensions are ordered by how much information they "
    "carry (mean KL to the prior on the test split, nats); collapsed ones barely change the image.",
)

from functools import partial

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from ui import address
from ui.display import plain, show_grid
from ui.live_decoder import latent_pad, marker_map, png_url, traversal_view, unavailable, version_of
from ui.loaders import directions, encoded, latent_index, model_key, projection
from ui.map_figure import colours_for
from ui.session import page_fragment, require_checkpoint, require_data, sliders_start
from vae_core.images import grid_png, png_bytes, to_display
from vae_core.latent import decode, kl_ranking, stored_kl_ranking, traversal_grid
from vae_core.projection import MIN_POINTS, linear_method, method_spec

LIMIT = 4.0  # slider range ±LIMIT, in prior standard deviations
VISIBLE = 8  # dimensions shown before the fold
TILE = 84  # traversal tiles on screen, CSS pixels
STEPS, SPAN = 9, 3.0  # traversal: values per row, swept over [-SPAN, SPAN]
MAP_POINTS = 2000  # test codes drawn on the small map (a seeded sample of more): sent again on each release
DIRECTION_LIMIT = 2.0  # attribute sliders: t in ±this, in units of the class-mean difference
NEIGHBOURS = 8  # test images nearest to z, when asked for

ckpt = require_checkpoint()
D = ckpt.latent_dim
this_model = model_key(ckpt)


def test_codes() -> tuple[np.ndarray, np.ndarray]:
    """The test split's posterior means and log-variances (loaded and encoded once per model)."""
    require_data(ckpt)
    return encoded(ckpt, "test")


# the checkpoint's own KL per dimension orders the pad, so it mounts before the data is loaded and
# encoded (about 2 s in a fresh server); a file without it is ordered from the encoded test split
kl, order = stored_kl_ranking(ckpt) or kl_ranking(*(torch.from_numpy(a) for a in test_codes()))


def keep_z() -> None:
    """z in the address (?z=, two decimals each; none at z = 0), so a reload or a copied link shows it."""
    z = [round(float(v), 2) for v in st.session_state["slider_z"]]
    address.keep("z", z if any(z) else None, text=lambda values: ",".join(f"{v:g}" for v in values))


def set_z(z: np.ndarray) -> None:
    """The page sets z (a button, a new model): the pad and the fallback sliders take it."""
    st.session_state["slider_z"] = np.clip(np.asarray(z, dtype=np.float32), -LIMIT, LIMIT)
    st.session_state["slider_z_version"] = st.session_state.get("slider_z_version", 0) + 1
    st.session_state.pop("slider_origin", None)  # whose code z was, when another page sent it
    for d in range(D):
        st.session_state[f"z_{d}"] = float(st.session_state["slider_z"][d])
    for key in [k for k in st.session_state if str(k).startswith("direction_")]:
        st.session_state[key] = 0.0  # the fallback's attribute sliders start again from this z


def pad_moved(z: list[float]) -> None:
    """A drag on the pad ended: take its z (the pad already shows it, so no version bump). In place:
    the page's traversal download, drawn before the drag, reads this array when clicked."""
    if z is not None and len(z) == D:
        st.session_state["slider_z"][:] = np.clip(np.asarray(z, dtype=np.float32), -LIMIT, LIMIT)
        keep_z()


def prior_sample() -> None:
    rng = np.random.default_rng(st.session_state.get("prior_draws", 0))
    st.session_state["prior_draws"] = st.session_state.get("prior_draws", 0) + 1
    set_z(rng.standard_normal(D))


def encode_test_image() -> None:
    i = int(st.session_state.get("slider_index", 0))
    set_z(test_codes()[0][i])
    st.session_state["slider_origin"] = f"test image #{i}"


if st.session_state.get("sliders_model") != this_model:  # a new model: start from its zero code
    st.session_state["sliders_model"] = this_model
    set_z(np.zeros(D))
if (handed := sliders_start(this_model)) is not None:  # an image's code another page sent here
    set_z(np.asarray(handed[0]))
    st.session_state["slider_origin"] = handed[1]
elif (linked := address.take("z", None, address.numbers(D, -LIMIT, LIMIT))) is not None:  # a link's z
    set_z(np.asarray(linked))
keep_z()


def named_directions() -> list:
    """Attribute directions from the test split's labels or factors ("more like an 8", "larger"), if any."""
    bundle = require_data(ckpt)
    if bundle.labels is None and bundle.factors is None:
        return []
    return directions(ckpt, "test")

# the buttons act in callbacks, before the pad is drawn; the row is filled once the data is in
controls = st.container(border=True)


def fill_controls() -> None:
    c1, c2, c3, c4 = controls.columns([1, 1, 2, 1])
    c1.button("Zero", help="z = 0, the prior's mean", on_click=set_z, args=(np.zeros(D),))
    c2.button("Prior sample", help="z ~ N(0, I)", on_click=prior_sample)
    n_test = len(test_codes()[0])
    c3.number_input(f"Test image (0–{n_test - 1})", 0, n_test - 1, 0, key="slider_index")
    c4.button("Encode it", help="z = the posterior mean of that image", on_click=encode_test_image)
    if origin := st.session_state.get("slider_origin"):
        controls.caption(plain(f"Started from the code of {origin} (its posterior mean)"))


ranked = [int(d) for d in order]
labels = {d: f"z[{d}] · KL {kl[d]:.2f} nats" for d in ranked}


def current_z() -> torch.Tensor:
    return torch.as_tensor(st.session_state["slider_z"], dtype=torch.float32)


def dim_slider(d: int) -> None:
    st.slider(labels[d], -LIMIT, LIMIT, step=0.05, key=f"z_{d}")


def direction_moved(i: int, vector: np.ndarray) -> None:
    """The fallback's attribute slider i was released: z moves by how far it moved, times its vector."""
    t = st.session_state[f"direction_{i}"]
    moved = float(t) - st.session_state.get(f"direction_{i}_was", 0.0)
    st.session_state[f"direction_{i}_was"] = float(t)
    z = np.clip(st.session_state["slider_z"] + moved * vector, -LIMIT, LIMIT)
    st.session_state["slider_z"] = z.astype(np.float32)
    for d in range(D):
        st.session_state[f"z_{d}"] = float(z[d])


def neighbours_of_z() -> None:
    """The test images whose codes (posterior means) lie nearest to z, if asked for."""
    if not st.toggle("Nearest test images to this z", key="slider_nb",
                     help="Exact search over every test code, Euclidean on the posterior means μ"):
        return
    found, dist = latent_index(ckpt, "test").query(st.session_state["slider_z"], NEIGHBOURS)
    test = require_data(ckpt).split("test")
    show_grid(test.images[torch.as_tensor(found[0])], per_row=NEIGHBOURS, width=64,
              captions=[f"#{i} · {d:.2f}" for i, d in zip(found[0], dist[0], strict=True)])


@page_fragment
def server_decoder() -> None:
    """The fallback: Streamlit sliders, decoded on the server when a slider is released (the map
    and the traversals with them)."""
    left, right = st.columns([3, 2])
    with left:
        for i, direction in enumerate(named_directions()):
            st.session_state.setdefault(f"direction_{i}", 0.0)
            st.slider(direction.name, -DIRECTION_LIMIT, DIRECTION_LIMIT, step=0.05, key=f"direction_{i}",
                      help=direction.note, on_change=direction_moved, args=(i, direction.vector))
        for d in ranked[:VISIBLE]:
            dim_slider(d)
        if D > VISIBLE:
            with st.expander(f"{D - VISIBLE} more dimensions (less KL)"):
                for d in ranked[VISIBLE:]:
                    dim_slider(d)
    st.session_state["slider_z"] = np.array([st.session_state[f"z_{d}"] for d in range(D)], dtype=np.float32)
    keep_z()
    image = decode(ckpt.model, current_z())
    with right:
        st.image(to_display(image[0], scale=None), caption="decoder(z), decoded on the server", width=300)
        if note := map_note():
            st.caption(note)
        else:
            st.plotly_chart(z_on_map(current_z().numpy()), key="slider_map")
        z_details(image)
        neighbours_of_z()
    rows = traversal_rows()
    images = traversal_images(current_z(), rows)
    st.image(grid_png(images, STEPS, tile=TILE), width=TILE * STEPS)
    traversal_download(current_z().numpy(), rows)


def z_details(image: torch.Tensor) -> None:
    """What follows z once a gesture ends: the PNG and z's values."""
    z = current_z()
    st.session_state["slider_image"] = image[0].numpy()
    st.download_button("Download PNG", partial(png_bytes, image[0], scale=8), file_name="decoded.png",
                       mime="image/png", on_click="ignore")
    st.caption("z = [" + ", ".join(f"{v:.2f}" for v in z.tolist()) + "]")


def map_note() -> str | None:
    """Why the small map of the test codes cannot be drawn (too few of them to project), or None."""
    n = len(test_codes()[0])
    if n >= MIN_POINTS:
        return None
    return (f"No map of the test codes here: it needs at least {MIN_POINTS} test images, and this model's data "
            f"has {n}.")


def map_of_test_codes():
    """The test codes' linear map (PCA, or the latent plane for a 2-D z) and their labels (or None)."""
    bundle = require_data(ckpt)
    test_labels = None if bundle.labels is None else bundle.labels[bundle.test_idx]
    return projection(test_codes()[0], model_key(ckpt), "test", linear_method(D)), test_labels


def live_map(z: np.ndarray) -> None:
    """The test codes' map with a star on z that moves as the pad is dragged (drawn in the browser)."""
    if note := map_note():
        st.caption(note)
        return
    proj, test_labels = map_of_test_codes()
    offset, matrix = proj.linear_transform()
    label = method_spec(linear_method(D)).label
    names = None
    if test_labels is not None:
        names = list(require_data(ckpt).class_names) or [str(v) for v in range(int(test_labels.max()) + 1)]
    n = len(proj.coords)
    shown = np.sort(np.random.default_rng(0).choice(n, size=min(n, MAP_POINTS), replace=False))
    marker_map(follows="slider_pad", z=z, offset=offset, matrix=matrix, points=proj.coords[shown],
               colours=None if test_labels is None else test_labels.numpy()[shown], palette=colours_for(names),
               legend=names,
               title=f"z on the map ({label}): the star follows the sliders", key="slider_map_live",
               version=version_of(this_model, label))


def z_on_map(z: np.ndarray) -> go.Figure:
    """The test codes' PCA map (or the latent plane for 2-D z) with the current z as a star."""
    proj, test_labels = map_of_test_codes()
    at = proj.transform(z)[0]
    fig = go.Figure(
        go.Scattergl(
            x=proj.coords[:, 0],
            y=proj.coords[:, 1],
            mode="markers",
            hoverinfo="skip",
            marker=dict(
                size=3, color=None if test_labels is None else test_labels.numpy(), colorscale="Turbo", opacity=0.5
            ),
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[at[0]],
            y=[at[1]],
            mode="markers",
            hoverinfo="skip",
            marker=dict(symbol="star", size=18, color="black", line=dict(color="white", width=1)),
        )
    )
    fig.update_layout(
        height=260,
        margin=dict(l=0, r=0, t=24, b=0),
        showlegend=False,
        title=dict(text=f"z on the map: {method_spec(linear_method(D)).label}", font=dict(size=12)),
    )
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    return fig


def traversal_rows() -> int:
    st.subheader("Traversals")
    st.caption(f"Each row sweeps one dimension from −{SPAN:g} to +{SPAN:g} around the current z, the others "
               "held fixed.")
    return st.slider("Dimensions to traverse (by KL)", 1, D, min(D, 6), key="trav_rows")


def traversal_images(z, rows: int) -> torch.Tensor:
    codes = traversal_grid(torch.as_tensor(z, dtype=torch.float32), ranked[:rows], steps=STEPS, span=SPAN)
    return decode(ckpt.model, codes)


def traversal_download(z: np.ndarray, rows: int) -> None:
    """The full-size traversal PNG, made when clicked, at `z` as it is then: the live pad updates the
    array in place on each release (`pad_moved`), so a click after a drag gets the dragged z."""
    st.download_button("Download traversal PNG", lambda: grid_png(traversal_images(z, rows), STEPS),
                       file_name="traversal.png", mime="image/png", on_click="ignore")


@page_fragment
def live_pad() -> None:
    """The pad, its PNG and z's values: a release reruns this, not the page; the map and the
    traversals beside it follow the drag in the browser."""
    if unavailable(ckpt):  # the browser has just said it cannot decode: the whole page falls back
        st.rerun()
    image = decode(ckpt.model, current_z())  # once: the pad's first picture and the PNG's
    dims = [(d, f"z[{d}]", f"KL {kl[d]:.2f} nats") for d in ranked]
    ready = st.session_state.get("directions_for") == this_model  # found after the pad's first mount, below
    named = [(d.name, d.note, d.vector) for d in named_directions()] if ready else []
    latent_pad(ckpt, st.session_state["slider_z"], dims, key="slider_pad", version=st.session_state["slider_z_version"],
               visible=VISIBLE, limit=LIMIT, on_change=pad_moved, image=image[0], directions=named,
               direction_limit=DIRECTION_LIMIT)
    st.caption("Decoded in your browser as you drag; the map's star and the traversals below follow it."
               + (" The named sliders move z along a direction: the mean code of the images with that attribute "
                  "minus the mean of the others (test split; White 2016)." if named else ""))
    z_details(image)
    neighbours_of_z()


def live_page() -> None:
    left, right = st.columns([5, 2])
    with left:
        live_pad()
    z = st.session_state["slider_z"]
    with right:
        live_map(z)
    rows = traversal_rows()
    traversal_view(ckpt, follows="slider_pad", z=z, dims=ranked[:rows], steps=STEPS, span=SPAN, tile=TILE,
                   key="slider_traversal", version=version_of(this_model, st.session_state["slider_z_version"], rows),
                   poster=png_url(grid_png(traversal_images(z, rows), STEPS, tile=TILE)))
    traversal_download(z, rows)


if reason := unavailable(ckpt):
    st.caption(f"Decoding on the server, after each slider is released: {reason}.")
    server_decoder()
else:
    live_page()
fill_controls()
if reason is None and st.session_state.get("directions_for") != this_model:
    # the named sliders need the data encoded, which the pad does not wait for: once it is in, the pad
    # mounts again (a new version) with them
    st.session_state["directions_for"] = this_model
    if named_directions():
        st.session_state["slider_z_version"] += 1
        st.rerun()

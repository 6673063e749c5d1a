"""Interpolate: walk the latent space between two images (a strip, a GIF and a live scrubber), or
between four corners (a grid and a live pad)."""

from ui.routing import page_header

# first, before this page's imports: the router and the page's heading are on screen at once (ui/routing.py)
page_header(
    "Encode two images to their posterior means, walk between the codes and decode every step. "
    "Spherical interpolation (slerp) keeps the path where the Gaussian prior has its mass; "
    "a straight line cuts through the low-norm middle.",
)

import numpy as np
import streamlit as st
import torch

from ui import address
from ui.display import show_grid
from ui.live_decoder import path_scrubber, plane_view, unavailable, version_of
from ui.session import require_checkpoint, require_data, uploaded_image
from vae_core.images import gif_bytes, grid_png, to_display
from vae_core.latent import corner_grid, corner_plane, decode, encode, lerp, slerp

ckpt = require_checkpoint()
bundle = require_data(ckpt)
test = bundle.split("test")
n_test = len(test)


def pick_image(slot: str, default_index: int) -> torch.Tensor | None:
    """One endpoint, chosen by index, as a random image of a class, or uploaded: (1, C, H, W)."""
    modes = ["By index", "Random of a class", "Upload"] if test.labels is not None else ["By index", "Upload"]
    mode = st.radio("Choose", modes, key=f"{slot}_mode", horizontal=True, label_visibility="collapsed")
    if mode == "By index":
        address.initial(f"{slot}_index", default_index)
        i = st.number_input(f"Test image (0–{n_test - 1})", 0, n_test - 1, key=f"{slot}_index")
        return test.images[int(i)].unsqueeze(0)
    if mode == "Random of a class":
        names = bundle.class_names or tuple(str(c) for c in sorted(set(test.labels.tolist())))
        cls = st.selectbox("Class", range(len(names)), format_func=lambda c: names[c], key=f"{slot}_class")
        seed = st.number_input("Draw", 0, 10_000, 0, key=f"{slot}_draw")
        members = torch.nonzero(test.labels == cls).flatten()
        if len(members) == 0:
            st.warning("No test image of that class.")
            return None
        pick = members[np.random.default_rng(int(seed)).integers(len(members))]
        return test.images[int(pick)].unsqueeze(0)
    return uploaded_image("Image file", f"{slot}_up", ckpt.image_shape, ckpt.config.background)


for slot in ("A", "B"):  # ?a= and ?b=: test indices (an uploaded image or a random draw is not in the address)
    if address.take(slot.lower(), f"{slot}_index", address.whole(0, n_test - 1)) is not None:
        st.session_state[f"{slot}_mode"] = "By index"
address.take("path", "interp_method", address.choice(["slerp", "linear"]))
address.take("steps", "interp_steps", address.whole(3, 24))
cols = st.columns(2)
ends = []
varied = (test.varied(4) * 4)[:4]  # defaults of different classes where labelled: A, B, and the 4 corners
for col, (slot, default) in zip(cols, (("A", varied[0]), ("B", varied[1])), strict=True):
    with col, st.container(border=True):
        st.markdown(f"**Image {slot}**")
        img = pick_image(slot, default)
        if img is not None:
            st.image(to_display(img[0]), width=120)
        ends.append(img)

c1, c2, c3 = st.columns(3)
method = c1.radio("Path", ["slerp", "linear"], horizontal=True, key="interp_method")
address.initial("interp_steps", 10)
steps = c2.slider("Steps", 3, 24, key="interp_steps")
frame_ms = c3.slider("GIF frame (ms)", 30, 500, 100, step=10, key="interp_ms")
path_fn = slerp if method == "slerp" else lerp
for slot, default in (("A", varied[0]), ("B", varied[1])):
    by_index = st.session_state.get(f"{slot}_mode", "By index") == "By index"
    address.keep(slot.lower(), int(st.session_state.get(f"{slot}_index", default)) if by_index else None, default)
address.keep("path", method, "slerp")
address.keep("steps", steps, 10)

if all(e is not None for e in ends):
    mu, _ = encode(ckpt.model, torch.cat(ends))
    frames = decode(ckpt.model, path_fn(mu[0], mu[1], steps))
    st.subheader("Strip")
    show_grid(frames, per_row=min(steps, 12), width=80)
    left, right = st.columns([1, 3])
    gif = gif_bytes(frames, duration_ms=frame_ms)
    left.image(gif, caption="animated", width=200)
    with right:
        st.download_button("Download GIF", gif, file_name=f"interpolation-{method}.gif", mime="image/gif")
        st.download_button(
            "Download strip PNG", grid_png(frames, steps), file_name=f"interpolation-{method}.png", mime="image/png"
        )
    st.subheader("Scrub the path")
    if reason := unavailable(ckpt):
        st.caption(f"Decoding on the server, after the scrubber is released: {reason}.")
        t = st.slider("Position along the path (0 = A, 1 = B)", 0.0, 1.0, 0.5, step=0.01, key="scrub_t")
        st.image(to_display(decode(ckpt.model, path_fn(mu[0], mu[1], 101)[round(t * 100)])[0]), width=200)
    else:
        st.caption(f"Drag along the {method} path from A to B: every position is decoded in your browser as you move.")
        path_scrubber(ckpt, mu[0].numpy(), mu[1].numpy(), method=method, key="interp_scrub",
                      version=version_of(method, mu.tolist()))

st.subheader("Grid between four corners")
st.caption("Bilinear mixing of four corner codes: top-left, top-right, bottom-left, bottom-right.")
g1, g2 = st.columns([3, 1])
corners = g1.text_input("Corner test indices", ", ".join(map(str, varied)), key="corners")
size = g2.slider("Grid size", 3, 12, 7, key="grid_size")
try:
    idx = [int(v) for v in corners.split(",")]
    if len(idx) != 4 or not all(0 <= i < n_test for i in idx):
        raise ValueError
except ValueError:
    st.error(f"Give four test indices from 0 to {n_test - 1}, separated by commas.")
else:
    mu, _ = encode(ckpt.model, test.images[idx])
    images = decode(ckpt.model, corner_grid(mu, size))
    left, right = st.columns([1, 1]) if not unavailable(ckpt) else (st.container(), None)
    with left:
        show_grid(images, per_row=size, width=max(40, 420 // size))
        st.download_button("Download grid PNG", grid_png(images, size), file_name="corner-grid.png", mime="image/png")
    if right is not None:
        with right:
            st.caption("Move the pointer over the square: each point mixes the four corner codes, decoded live.")
            origin, du, dv, duv = corner_plane(*mu)
            names = [f"#{i}" for i in idx]
            corners_at = [(0.02, 0.95), (0.88, 0.95), (0.02, 0.03), (0.88, 0.03)]
            plane_view(ckpt, origin=origin, du=du, dv=dv, duv=duv, extent=(0, 1, 0, 1), key="corner_pad",
                       version=version_of(idx), point=(0.5, 0.5), pad=260,
                       labels=[(u, v, name) for (u, v), name in zip(corners_at, names, strict=True)])

"""Generate: samples from the prior p(z) = N(0, I), decoded; the temperature follows a drag in the browser."""

from ui.routing import page_header

# first, before this page's imports: the router and the page's heading are on screen at once (ui/routing.py)
page_header("Draw z from the prior N(0, T²·I) and decode it. Lower temperature T gives more typical, less varied "
            "samples.")

import streamlit as st

from ui import address
from ui.display import show_grid
from ui.live_decoder import png_url, sample_grid, unavailable, version_of
from ui.session import require_checkpoint
from vae_core.images import grid_png
from vae_core.latent import decode, prior_noise

PER_ROW = 8
T_KEY = "gen_t"  # the temperature: the fallback's slider, or where the browser's last drag ended

ckpt = require_checkpoint()
reason = unavailable(ckpt)
live = reason is None

address.take("n", "gen_n", lambda raw: 4 * round(address.whole(4, 64)(raw) / 4))
address.take("t", T_KEY, address.real(0.0, 2.0))
address.take("seed", "gen_seed", address.whole(0, 1_000_000))
c1, c2, c3 = st.columns(3)
for widget, first in (("gen_n", 32), (T_KEY, 1.0), ("gen_seed", 0)):
    address.initial(widget, first)
n = c1.slider("Samples", 4, 64, step=4, key="gen_n")
if live:
    temperature = st.session_state[T_KEY]
else:
    temperature = c2.slider("Temperature T", 0.0, 2.0, step=0.05, key=T_KEY)
seed = (c2 if live else c3).number_input("Seed", 0, 1_000_000, key="gen_seed")  # no gap where T was
address.keep("n", n, 32)
address.keep("seed", int(seed), 0)


def temperature_moved(t: float) -> None:
    """A drag of the temperature ended (in the browser): keep it, in the address too."""
    st.session_state[T_KEY] = t
    address.keep("t", round(float(t), 3), 1.0)


address.keep("t", round(float(temperature), 3), 1.0)

eps = prior_noise(n, ckpt.model.latent_dim, int(seed))
images = decode(ckpt.model, eps * temperature)
st.session_state["gen_images"] = images
png = grid_png(images, PER_ROW)
if live:
    st.caption("Drag the temperature: every sample is decoded again in your browser as you move.")
    sample_grid(ckpt, eps.numpy(), temperature=temperature, key="gen_live", per_row=PER_ROW, poster=png_url(png),
                version=version_of(n, int(seed)), on_change=temperature_moved)
else:
    st.caption(f"Decoding on the server, after the temperature is released: {reason}.")
    show_grid(images, per_row=PER_ROW)
st.download_button(
    "Download PNG grid",
    png,
    file_name=f"{ckpt.path.stem}-samples-T{temperature:g}-seed{seed}.png",
    mime="image/png",
)

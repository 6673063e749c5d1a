"""Check-up: is this model healthy? Its figures, the aggregate posterior against the prior, and the tutorial
mistakes that show from outside, each with its evidence (vae_core.checkup; `python -m vae_core checkup`)."""

from ui.routing import page_header

# first, before this page's imports: the router and the page's heading are on screen at once (ui/routing.py)
page_header("Is this model healthy? Its test figures, how its codes fill the prior, and the mistakes common in "
            "VAE code (each checked from outside, with its evidence). Most useful on a model trained elsewhere "
            "and imported (`python -m vae_core import`).")

import math

import plotly.graph_objects as go
import streamlit as st

from ui.display import plain
from ui.loaders import checkup
from ui.session import require_checkpoint, require_data
from vae_core.images import grid_png
from vae_core.latent import reconstruct, sample_prior

SHOWN = 8  # images in each row of the pictures

ckpt = require_checkpoint()
bundle = require_data(ckpt)
report = checkup(ckpt)
test = report["test"]

found = report["findings"]
if found:
    st.warning(f"{len(found)} thing{'s' if len(found) > 1 else ''} to look at below.")
else:
    st.success(f"No mistake found among the {len(report['checks'])} checked for.")
c1, c2, c3, c4 = st.columns(4)
c1.metric("Test nELBO", f"{test['nelbo']:.1f} nats", help=f"{report['likelihood']}; {report['n_test']} test "
          "images; nats per example")
c2.metric("Reconstruction", f"{test['recon']:.1f} nats", help="−log p(x|z) at one posterior draw; the data's mean "
          f"image costs {report['mean_image_recon']:.1f}")
c3.metric("KL", f"{test['kl']:.2f} nats")
c4.metric("Active units", f"{report['active_units']} / {ckpt.latent_dim}",
          help="dimensions whose mean KL exceeds 0.01 nats; 0 is a collapsed posterior")
st.caption(plain(f"Likelihood: {report['likelihood']}. Nats per example on {report['n_test']} test images of "
                 f"{report['dataset']}."))

for check in report["checks"].values():  # the titles are this app's; the evidence is escaped as plain text
    if check["found"]:
        st.warning(f"**{check['title']}.** {plain(check['evidence'])}. What to change: {plain(check['advice'])}",
                   icon=":material/warning:")
with st.expander("Every check and its evidence", expanded=not found):
    for check in report["checks"].values():
        icon = ":material/warning:" if check["found"] else ":material/check_circle:"
        st.markdown(f"{icon} **{check['title']}**: {plain(check['evidence'])}.")

st.subheader("Data, reconstructions, prior samples")
split = bundle.split("test")
x = split.images[split.varied(SHOWN)]
_, samples = sample_prior(ckpt.model, SHOWN, seed=0)
for name, images in (("test images", x), ("their reconstructions (decoded posterior means)",
                                          reconstruct(ckpt.model, x)),
                     ("prior samples z ~ N(0, I)", samples)):
    st.caption(name)
    st.image(grid_png(images, SHOWN, tile=56), width=640)

st.subheader("The codes against the prior")
ap = report["aggregate_posterior"]
holes = ap["hole_fraction"]
st.markdown(plain(
    f"**{100 * holes:.0f} %** of prior samples fall in holes: farther from every test image's code than 95 % of "
    f"codes lie from their nearest neighbour ({100 * ap['hole_fraction_if_filled']:.0f} % when the codes fill the "
    "prior). A sample from a hole decodes to something the model never learned; sampling at a lower "
    "temperature (Generate) stays nearer the codes."
    if not math.isnan(holes) else "No dimension is active, so the codes do not spread over the prior at all."))
dims = [f"z{i}" for i in range(ckpt.latent_dim)]
fig = go.Figure()
fig.add_bar(x=dims, y=report["kl_per_dim"], name="KL per dimension (nats)", marker_color="#d62728")
fig.add_bar(x=dims, y=ap["variance"], name="variance of the codes' q(z) (prior: 1)", marker_color="#1f77b4")
fig.add_hline(y=1.0, line_dash="dot", line_color="#555")
fig.update_layout(barmode="group", height=320, margin=dict(l=10, r=10, t=10, b=10),
                  legend=dict(orientation="h", y=-0.2))
st.plotly_chart(fig, key="checkup_dims")
st.caption("Per dimension: the KL to the prior (a dimension with none carries nothing), and the variance of the "
           "aggregate posterior q(z), the mixture of every test image's q(z|x) (1 where it matches the prior).")

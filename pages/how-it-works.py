"""How it works: the seed's five steps live on the chosen model: draw a digit (or pick an image), see
the encoder's Gaussian q(z|x), draw z = μ + σ·ε, decode it, and read the loss, reweighted live by β.

The steps run in the browser (`ui/explainer.py`): every pen move re-encodes and re-decodes. The address
holds the view (`?input=`, a drawing over it `?draw=`, ε's seed `?seed=`, `?mu=1`, `?beta=`, `?step=` and
`?present=1`, besides the sidebar's `?model=`), so a lesson's links can be prepared in advance and show the
sender's numbers.
"""

from ui.routing import page_header

# first, before this page's imports: the router and the page's heading are on screen at once (ui/routing.py)
page_header("What a VAE does with one image, step by step, on the model chosen in the sidebar: "
            "every number is this model's, in nats.")

import numpy as np
import streamlit as st
import torch

from ui import address
from ui.display import plain, presenter_chrome
from ui.explainer import STRIP, explainer, plane_data, where_it_runs, why_kl
from ui.loaders import encoded, model_key
from ui.session import open_in_sliders, require_checkpoint, require_data, uploaded_image
from vae_core.images import image_from_text, image_to_text, quantized
from vae_core.latent import encode, lesson_noise

TEXTS = [
    "A VAE starts from an image x. Draw on the canvas (your strokes are shrunk to the model's size, "
    "as its training images were prepared) or start from a test image; every step below follows the pen.",
    "The encoder does not give one code: it gives a Gaussian q(z|x) = N(μ, σ²) for every dimension of z. "
    "Rows run from the dimension with the most KL for this image (the nats on each row) to the least; a "
    "dimension whose Gaussian covers the prior N(0, 1) tells the decoder nothing about x.",
    "z is drawn from q(z|x) as z = μ + σ·ε with ε ~ N(0, I): the randomness sits in ε, so training can "
    "pass gradients through μ and σ (the reparameterization trick). Resample draws a new ε.",
    "The decoder turns z into x̂, the mean of p(x|z): the model's reconstruction of its input from one draw of z.",
    "The loss is what the model pays for this image: the reconstruction cost −log p(x|z), summed over "
    "pixels (the map shows where), plus β times the KL from q(z|x) to the prior, summed over dimensions. "
    "Slide β to reweight the total.",
]
STEPS = 6  # five in the component; the sixth (why the KL term matters) is drawn here, below it
WHY_KL = ("Why the KL term matters",
          "The KL term keeps every q(z|x) near the prior N(0, 1), so the codes fill the space the prior draws from. "
          "Drop it (β = 0, a plain autoencoder) and reconstructions stay good, but the codes scatter wherever suits "
          "the decoder: samples from the prior and the middle of a line between two codes land where the decoder "
          "has seen nothing.")

ckpt = require_checkpoint()
bundle = require_data(ckpt)
test = bundle.split("test")
D = ckpt.latent_dim
params = st.query_params


def _number(name: str, kind, low, high, default):
    """A value from the address, or `default` (with one line) when it is missing or not a value here."""
    raw = params.get(name)
    if raw is None:
        return default
    try:
        value = kind(raw)
        if low <= value <= high:
            return value
    except ValueError:
        pass
    st.caption(address.ignored_line(name, raw, f"expected a number from {low} to {high}"))
    return default


present = st.sidebar.toggle("Presenter mode", value=params.get("present") == "1", key="hiw_present",
                            help="Larger type and pictures, one step at a time: the ← and → keys move between them")
if present:
    st.set_page_config(initial_sidebar_state="collapsed", layout="wide")
    presenter_chrome()

# --- the input: a test image (by index or a random one of a class) or an upload
source, pick = st.columns([2, 3])
modes = ["Test image", "Random of a class", "Upload"] if test.labels is not None else ["Test image", "Upload"]
mode = source.radio("Start from", modes, horizontal=True, key="hiw_mode")
index = _number("input", int, 0, len(test) - 1, 0)
if mode == "Test image":
    index = pick.number_input(f"Test image (0–{len(test) - 1})", 0, len(test) - 1, index, key="hiw_index")
    x = test.images[index:index + 1]
elif mode == "Random of a class":
    classes = sorted({int(v) for v in test.labels})
    c = pick.selectbox("Class", classes, key="hiw_class",
                       format_func=lambda v: bundle.class_names[v] if bundle.class_names else str(v))
    rows = (test.labels == c).nonzero().flatten()
    index = int(rows[torch.randint(len(rows), (1,), generator=torch.Generator().manual_seed(c)).item()])
    x = test.images[index:index + 1]
else:
    x = uploaded_image("An image", "hiw_upload", ckpt.image_shape, ckpt.config.background)
    if x is None:
        st.info("Upload an image, or start from a test image.")
        st.stop()
if mode != "Upload":
    params["input"] = str(index)
x = torch.as_tensor(x, dtype=torch.float32)
# a lesson's link: the drawing over this input (8-bit levels, `?draw=`), ε's seed (`?seed=`) and z = μ (`?mu=1`)
linked = address.take("draw", None, lambda raw: image_from_text(raw, ckpt.image_shape))
if linked is not None and mode != "Upload":
    st.session_state["hiw_drawn"] = (model_key(ckpt), (mode, index), linked.reshape(-1).tolist())
address.take("seed", "hiw_seed", address.whole(0, 2**31 - 1))
if address.take("mu", None, address.choice(["1"])) is not None:
    st.session_state["hiw_use_mu"] = True
drawn = st.session_state.get("hiw_drawn")  # the last finished drawing on this model, if any
drawing = drawn is not None and drawn[0] == model_key(ckpt) and drawn[1] == (mode, index)
if drawing:
    x = torch.tensor(drawn[2], dtype=torch.float32).reshape(1, *ckpt.image_shape)
address.keep("draw", image_to_text(x) if drawing else None)
if mode == "Upload":
    st.caption("This page's address holds a test image's number, a drawing over it, β and ε's seed, "
               "not an uploaded image: a copied link opens on test image 0.")

# --- ε and the strip's draws: one seed (0 until Resample; the browser's draw comes back as its seed), the
# same numbers here and in the browser (`lesson_noise`), so a link with `?seed=` shows the sender's numbers
seed = st.session_state.get("hiw_seed", 0)
eps, *strip = lesson_noise(seed, 1 + STRIP, D)
strip = np.stack(strip)
address.keep("seed", seed, 0)
beta = _number("beta", float, 0.0, 10.0, float(ckpt.config.beta))
step = _number("step", int, 1, STEPS, 1) if present else 0


def heard(name: str, value) -> None:
    """A gesture ended in the component: keep what the page needs for its address, the server's view
    and the Sliders button."""
    if name == "x" and value is not None:
        levels = quantized(torch.tensor(value, dtype=torch.float32))  # the 8-bit levels the browser drew
        st.session_state["hiw_drawn"] = (model_key(ckpt), (mode, index), levels.tolist())
    elif name == "seed" and value is not None:
        st.session_state["hiw_seed"] = int(value)
    elif name == "beta" and value is not None:
        params["beta"] = f"{float(value):g}"
    elif name == "use_mu":
        st.session_state["hiw_use_mu"] = bool(value)
    elif name == "step" and value is not None:
        params["step"] = str(int(value))


reason = where_it_runs(ckpt)
if reason:
    st.caption(plain(f"The steps are computed on the server after each change, because {reason}."))
if present:
    params["present"] = "1"
    params["step"] = str(step)
elif "present" in params:
    del params["present"]
use_mu = st.session_state.get("hiw_use_mu", False)
address.keep("mu", "1" if use_mu else None)
version = hash((model_key(ckpt), mode, index, present, reason is None,
                None if reason is None else (tuple(np.round(eps, 5)), use_mu, x.sum().item())))
plane = plane_data(encoded(ckpt)[0], None if test.labels is None else test.labels.numpy()) if D == 2 else None
explainer(ckpt, x, eps=eps, strip=strip, beta=beta, use_mu=use_mu, texts=TEXTS + [WHY_KL[1]], train_url="train",
          key="hiw", version=version, step=step, on_change=heard, in_browser=reason is None, plane=plane,
          after=[WHY_KL[0]])

# --- the server's exact numbers and a way on
mu, logvar = (t[0] for t in encode(ckpt.model, x))
z = mu if use_mu else mu + torch.exp(0.5 * logvar) * torch.as_tensor(eps)
if st.button("Open this z in the Sliders", key="hiw_sliders",
             help="Start the Sliders page from the z of step 3 (the last finished stroke's, on the server)"):
    open_in_sliders(model_key(ckpt), z.numpy(), "How it works, step 3")

if not present:
    st.subheader(f"6 · {WHY_KL[0]}")
    st.markdown(WHY_KL[1])
if not present or step == 6:
    why_kl(ckpt, large=present)

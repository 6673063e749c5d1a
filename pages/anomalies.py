"""Anomalies: score every test image by how badly the model explains it."""

from ui.routing import page_header

# first, before this page's imports: the router and the page's heading are on screen at once (ui/routing.py)
page_header()

from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from ui import address
from ui.display import plain, show_grid
from ui.loaders import anomaly_scores, encoded, folder_scores, model_key, pixel_maps
from ui.session import require_checkpoint, require_data, sliders_picker, uploaded_image
from vae_core import VAEError
from vae_core.anomaly import (
    auroc,
    checkpoint_pixel_maps,
    checkpoint_scores,
    class_aurocs,
    flagged_csv,
    percentile_of,
    roc_curve_points,
    top_k,
)
from vae_core.hosting import ROOTS_ENV, confine_path
from vae_core.images import cost_overlay
from vae_core.latent import reconstruct
from vae_core.limits import public_mode
from vae_core.streaming import as_tensor

SCORE_NAMES = {
    "nelbo": "negative ELBO (nats)",
    "recon": "reconstruction −log p(x|z=μ) (nats)",
    "iw": "importance-weighted −log p(x) (nats)",
}

ckpt = require_checkpoint()
bundle = require_data(ckpt)
test = bundle.split("test")
st.caption(
    f"Scores use the model's likelihood ({ckpt.config.likelihood_name}); higher means the model finds "
    "the image less likely. Anomaly detection by reconstruction error is one of the seed's uses of a VAE."
)


address.take("score", "anom_score", address.choice(list(SCORE_NAMES)))
address.take("threshold", "anom_pct", address.real(50.0, 99.9))
c1, c2 = st.columns([2, 1])
score = c1.radio("Score", list(SCORE_NAMES), format_func=SCORE_NAMES.get, horizontal=True, key="anom_score")
k = c2.slider(
    "Importance samples K",
    2,
    256,
    32,
    key="anom_k",
    disabled=score != "iw",
    help="Burda et al. 2016: a tighter bound on −log p(x) as K grows",
)
scores = anomaly_scores(ckpt, "test", score, k if score == "iw" else 1)

address.initial("anom_pct", 95.0)
pct = st.slider("Threshold (percentile of test scores)", 50.0, 99.9, step=0.1, key="anom_pct")
address.keep("score", score, "nelbo")
address.keep("threshold", round(pct, 1), 95.0)
threshold = float(np.percentile(scores, pct))
flagged = int((scores > threshold).sum())
m1, m2, m3 = st.columns(3)
m1.metric("Threshold", f"{threshold:.1f} nats")
m2.metric("Flagged", f"{flagged} of {len(scores)}")
m3.metric("Median score", f"{np.median(scores):.1f} nats")

fig = go.Figure(go.Histogram(x=scores, nbinsx=60, marker_color="#1f77b4"))
fig.add_vline(x=threshold, line_dash="dash", line_color="#d62728", annotation_text="threshold")
fig.update_layout(
    height=280, margin=dict(l=10, r=10, t=20, b=10), xaxis_title=SCORE_NAMES[score], yaxis_title="test images"
)
st.plotly_chart(fig, key="anom_hist")

st.subheader("Most anomalous")
n_top = st.slider("How many", 4, 32, 8, step=4, key="anom_top")
idx = top_k(scores, n_top)
originals = test.images[torch.as_tensor(idx.copy())]
recons = reconstruct(ckpt.model, originals)


def with_cost_maps(originals: torch.Tensor, recons: torch.Tensor, maps: torch.Tensor, caps: list[str],
                   what: str) -> None:
    """Rows of 8: the originals, their reconstructions, and their per-pixel cost in red over them."""
    overlays, top = cost_overlay(originals, maps)
    st.caption(f"Each original ({what}), its reconstruction, and where it costs: −log p(x|z) per pixel "
               f"({ckpt.config.likelihood_name}) in red over the image, full red at {top:.2g} nats per pixel")
    for start in range(0, len(originals), 8):
        rows = slice(start, start + 8)
        for images, captions in ((originals, caps), (recons, None), (overlays, None)):
            show_grid(images[rows], per_row=8, captions=captions[rows] if captions else None, width=90)


with_cost_maps(originals, recons, torch.from_numpy(pixel_maps(ckpt, "test", idx)),
               [f"#{i} · {scores[i]:.0f}" for i in idx], "test index · score")
flagged_idx = top_k(scores, flagged) if flagged else np.zeros(0, dtype=int)
st.download_button(
    f"Download the {flagged} flagged images (CSV)",
    lambda: flagged_csv(flagged_idx, scores, paths=test.paths,
                        labels=None if test.labels is None else test.labels.numpy(), class_names=bundle.class_names),
    file_name=f"{ckpt.path.stem}-flagged-{score}-p{pct:g}.csv", mime="text/csv", disabled=not flagged,
    help="path (a folder dataset's file), test index, score (nats), percentile among the test scores, label",
    key="anom_csv",
)
sliders_picker(model_key(ckpt), idx, encoded(ckpt, "test")[0], name=lambda i: f"#{i} · {scores[i]:.0f} nats",
               key="anom_pick")
if st.button("Its nearest neighbours on the map", key="anom_neighbours",
             help="The latent map with the chosen image's nearest codes ringed and shown with their distances"):
    address.open_page("pages/map.py", point=int(st.session_state["anom_pick"]))

if test.labels is not None:
    st.subheader("Which classes are normal?")
    names = bundle.class_names or tuple(str(c) for c in sorted(set(test.labels.tolist())))
    labels = test.labels.numpy()
    # the default view: every class in turn as the only normal one, which says what this model's score
    # tracks (trained on every class, it has no normal class: "normal = 0" alone read 0.279, below chance)
    per_class = class_aurocs(scores, labels)
    if per_class:
        ranked = sorted(per_class, key=per_class.get, reverse=True)
        bars = go.Figure(go.Bar(x=[names[c] for c in ranked], y=[per_class[c] for c in ranked],
                                marker_color=["#2ca02c" if per_class[c] > 0.5 else "#d62728" for c in ranked],
                                text=[f"{per_class[c]:.2f}" for c in ranked], textposition="outside"))
        bars.add_hline(y=0.5, line_dash="dot", line_color="grey", annotation_text="chance")
        bars.update_layout(height=300, margin=dict(l=10, r=10, t=30, b=10), yaxis=dict(range=[0, 1.08]),
                           title="AUROC with each class alone as normal (the rest as anomalies)",
                           xaxis_title="the normal class", yaxis_title="AUROC")
        st.plotly_chart(bars, key="anom_classes")
        easy, hard = ranked[0], ranked[-1]
        st.caption(plain(
            f"Trained on every class, this model has no normal class: its score says how hard an image is to "
            f"reconstruct ({ckpt.config.likelihood_name}), not which class it is, so {names[easy]} looks most "
            f"normal (AUROC {per_class[easy]:.3f}) and {names[hard]} least ({per_class[hard]:.3f}"
            f"{', below chance' if per_class[hard] < 0.5 else ''}). A one-class detector is trained on the normal "
            "class alone: python -m vae_core anomaly-benchmark."))
    normal = st.multiselect(
        "Normal classes (the rest count as anomalies)",
        list(range(len(names))),
        default=[],
        format_func=lambda c: names[c],
        key="anom_normal",
        help="Their ROC curve: how well this model's score tells the chosen classes from the rest",
    )
    is_normal = np.isin(labels, normal)
    if normal and not is_normal.all():
        fpr, tpr = roc_curve_points(scores[is_normal], scores[~is_normal])
        value = auroc(scores[is_normal], scores[~is_normal])
        roc = go.Figure(go.Scatter(x=fpr, y=tpr, mode="lines", name=f"AUROC {value:.3f}"))
        roc.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dot", color="grey"), name="chance"))
        roc.update_layout(
            height=320,
            width=420,
            margin=dict(l=10, r=10, t=30, b=10),
            title=f"ROC, AUROC = {value:.3f}",
            xaxis_title="false positive rate",
            yaxis_title="true positive rate",
        )
        st.plotly_chart(roc, key="anom_roc")
        if value <= 0.5:
            st.warning(f"AUROC {value:.3f} is at or below chance: to this model the chosen classes cost more to "
                       "reconstruct than the rest; trained on every class, it scores how hard an image is to "
                       "reconstruct, not its class.")
        else:
            st.caption("The model was trained on all classes, so this measures how unusual the other classes "
                       "look to it next to the chosen ones, not a one-class detector.")
    elif normal:
        st.info("Leave at least one class out: the rest count as anomalies.")
    else:
        st.caption("Choose normal classes to draw their ROC curve against the rest.")

st.subheader("Score your own image")
image = uploaded_image("Image file", "anom_upload", ckpt.image_shape, ckpt.config.background)
if image is not None:
    own = checkpoint_scores(ckpt, image, score, k=k if score == "iw" else 1)[0]
    show_grid(torch.cat([image, reconstruct(ckpt.model, image)]), per_row=2, width=110)
    st.metric("Score", f"{own:.1f} nats", help="the uploaded image (left) and its reconstruction")
    st.write(
        f"Higher than **{percentile_of(own, scores):.1f}%** of the test images"
        + (" — flagged as anomalous." if own > threshold else ".")
    )

st.subheader("Score a folder")
if public_mode():
    st.caption("The public demo reads no server paths: score your own image above.")
else:
    text = st.text_input("Image folder", key="anom_folder", placeholder="a folder of images on the server",
                         help="Every image in it (first-level subfolders become labels) at the model's size, scored "
                              "as above and ranked. Only inside the server's data folders "
                              f"({ROOTS_ENV}); a relative path is taken inside the first.")
    if text.strip():
        folder = None
        try:
            folder = confine_path(text)
            folder_bundle, folder_scores_ = folder_scores(ckpt, folder, score, k if score == "iw" else 1)
        except VAEError as e:  # named as typed, not by its server path
            st.error(plain(str(e).replace(str(folder), text.strip()) if folder else str(e)))
        except OSError as e:
            st.error(plain(f"that folder cannot be read ({e.strerror or type(e).__name__})"))
        else:
            ranked = top_k(folder_scores_, len(folder_scores_))
            above = int((folder_scores_ > threshold).sum())
            st.caption(f"{len(ranked):,} images, most anomalous first; percentiles rank each among this model's "
                       f"{len(scores):,} test scores; {above:,} above the threshold ({threshold:.1f} nats)")
            for warning in folder_bundle.spec.get("warnings", []):  # files skipped, images nearly blank
                st.warning(plain(warning))
            shown = ranked[:8]
            pick = as_tensor(folder_bundle.images[torch.as_tensor(shown.copy())])
            with_cost_maps(pick, reconstruct(ckpt.model, pick), checkpoint_pixel_maps(ckpt, pick),
                           [plain(f"{Path(folder_bundle.paths[i]).name} · {folder_scores_[i]:.0f}") for i in shown],
                           "file · score")
            st.download_button(
                f"Download all {len(ranked):,} ranked (CSV)",
                lambda: flagged_csv(ranked, folder_scores_, paths=folder_bundle.paths, reference=scores,
                                    labels=None if folder_bundle.labels is None else folder_bundle.labels.numpy(),
                                    class_names=folder_bundle.class_names),
                file_name=f"{ckpt.path.stem}-{Path(text.strip()).name[:40] or 'folder'}-{score}.csv", mime="text/csv",
                key="anom_folder_csv",
            )

"""The film of a run on screen (`vae_core.film`): the live latent map while it trains (the latest frame,
aligned to the one before), and the replay of a finished run (`ui.film_figures.replay_figure`, cached by
`ui.loaders`), with its speed, keys and GIF."""

from __future__ import annotations

import html

import streamlit as st
import torch

from ui.film_figures import (
    FRAME_MS,
    PRESENTER_FONT,
    REPLAY_META,
    SPEEDS,
    frame_pngs,
    frame_title,
    map_figure,
    presenter_type,
    replay_legend,
    set_speed,
    speed_label,
    two_columns,
)
from vae_core.film import extent, film_of, plane

LIVE = "film_live"  # session key: (job id, the last frame's index, its picture, the axes' half-width)


# Train's presenter view: Space presses Pause or Resume (whichever acts now), → presses One step (while
# paused), as a click on the page's own buttons would; keys typed into a field or a slider are theirs.
# Installed once per browser tab; it acts only on the Train page with ?present=1 in the address.
PRESENTER_KEYS_JS = """<script>
(() => {
  if (window.__vaeTrainKeys) return;
  window.__vaeTrainKeys = true;
  const button = (label) => [...document.querySelectorAll('[data-testid="stMain"] button')].find(
    (b) => b.innerText.trim() === label && !b.disabled);
  document.addEventListener("keydown", (e) => {
    const here = new URL(location.href);
    if (!here.pathname.endsWith("/train") || here.searchParams.get("present") !== "1") return;
    if (e.defaultPrevented || e.altKey || e.ctrlKey || e.metaKey || e.shiftKey) return;
    const t = e.target;
    if (t && t.closest && t.closest("input, textarea, select, [contenteditable=true], [role=slider], " +
                                    "[role=listbox], [role=combobox], [role=radiogroup]")) return;
    const press = e.key === " " ? button("Pause") || button("Resume")
      : e.key === "ArrowRight" ? button("One step") : null;
    if (!press) return;
    e.preventDefault();
    e.stopImmediatePropagation();
    press.click();
  }, true);
})();
</script>"""
def live_map(job, snap, *, large: bool = False) -> None:
    """The film's latest frame of a running job: its map, aligned to the previous picture this session
    drew, the axes only ever widening, and the prior samples and reconstructions of that moment beside it.
    The job's frames carry the film's labels and originals (`vae_core.job`)."""
    frame = snap.frame
    if frame is None:
        return
    last = st.session_state.get(LIVE)
    ours = last is not None and last[0] == id(job)
    if ours and last[1] == frame["index"]:
        points, half = last[2], last[3]
    else:
        points = plane(torch.as_tensor(frame["codes"]).float().numpy(), last[2] if ours else None)
        half = max(extent([points]), last[3] if ours else 0.0)
        st.session_state[LIVE] = (id(job), frame["index"], points, half)
    labels = frame.get("labels")
    left, right = st.columns([3, 2])
    with left:
        fig = map_figure(two_columns(points), None if labels is None else torch.as_tensor(labels), half,
                         f"Latent space, live: {frame_title(frame)}", job.config.latent_dim,
                         frame.get("class_names", ()))
        if large:  # presenter view: the map fills the screen's height, its type readable across a room
            presenter_type(fig).update_layout(height=760, margin=dict(l=10, r=10, t=70, b=10))
            fig.update_traces(marker=dict(size=7))
        st.plotly_chart(fig, key="train_film_live")
    with right:
        samples, pair = frame_pngs(frame["originals"], frame)
        st.caption("Samples from the prior, now")
        st.image(samples, width=8 * (88 if large else 40))
        st.caption("Test images (top) and their reconstructions now (bottom)")
        st.image(pair, width=8 * (88 if large else 40))
        frames = f"{snap.frames_recorded} frame{'' if snap.frames_recorded == 1 else 's'}"
        st.caption(f"{frames} so far · the codes (μ) of {len(frame['codes'])} test images"
                   + ("; PCA of the codes, each frame aligned to the one before" if job.config.latent_dim > 2 else ""))


# --- the replay


# ← / → step the replay most in view one frame (plotly has no key bindings): the script clicks plotly's
# own slider at the neighbouring step's tick, so the step's animate (frame, title, images) runs as if the
# slider were clicked there, and a Play in progress stops. Keys typed into a field or a slider are
# theirs. Installed once per browser tab; it finds the replay when a key is pressed.
KEYS_JS = """<script>
(() => {
  if (window.__vaeReplayKeys) return;
  window.__vaeReplayKeys = true;
  const META = "@META@";
  const visible = (el) => {
    const r = el.getBoundingClientRect();
    const h = Math.min(r.bottom, window.innerHeight) - Math.max(r.top, 0);
    return r.width > 0 && h > 0 ? h : 0;
  };
  document.addEventListener("keydown", (e) => {
    if (e.defaultPrevented || e.altKey || e.ctrlKey || e.metaKey || e.shiftKey) return;
    if (e.key !== "ArrowLeft" && e.key !== "ArrowRight") return;
    const t = e.target;
    if (t && t.closest && t.closest("input, textarea, select, [contenteditable=true], [role=slider], " +
                                    "[role=listbox], [role=combobox], [role=tablist], [role=radiogroup]")) return;
    const plots = [...document.querySelectorAll(".js-plotly-plot")].filter(
      (p) => p._fullLayout && p._fullLayout.meta === META && p._fullLayout.sliders && visible(p) > 0);
    if (!plots.length) return;
    const gd = plots.reduce((a, b) => (visible(b) > visible(a) ? b : a));
    const slider = gd._fullLayout.sliders[0];
    const ticks = gd.querySelectorAll(".slider-tick-rect");
    const rail = gd.querySelector(".slider-rail-touch-rect");
    if (!slider || !rail || !ticks.length) return;
    const k = Math.max(0, Math.min(ticks.length - 1, (slider.active || 0) + (e.key === "ArrowRight" ? 1 : -1)));
    e.preventDefault();
    const tick = ticks[k].getBoundingClientRect(), box = rail.getBoundingClientRect();
    const at = {clientX: tick.left + tick.width / 2, clientY: box.top + box.height / 2, bubbles: true,
                cancelable: true, view: window, button: 0};
    rail.dispatchEvent(new MouseEvent("mousedown", at));
    rail.dispatchEvent(new MouseEvent("mouseup", at));
  });
})();
</script>""".replace("@META@", REPLAY_META)


GIF_SIZE_LABELS = {"presentation": "for slides, 1280×720", "web": "for the web, 240 px"}


def replay_section(ckpt, *, key: str, large: bool = False) -> None:
    """A checkpoint's film replayed (`replay_figure`: scrubbing and Play run in the browser) and a GIF of
    it to download; a line saying so when the checkpoint has no film. `large`: presenter view, the replay
    as tall as a projector's screen with type to match."""
    from ui.display import plain
    from ui.loaders import film_gif_bytes, film_replay, model_key
    from vae_core.errors import VAEError
    from vae_core.film import GIF_SIZES

    try:
        fig = film_replay(ckpt)
    except VAEError as e:
        st.error(plain(str(e)))
        return
    if fig is None:
        st.info("This model has no film: it was trained before runs recorded one, or with Film frames set to 0. "
                "Train a model on this page to watch its latent space form.")
        return
    st.caption(f"{len(fig.frames)} frames of the run: drag the slider, press Play, or step one frame with ← → "
               "(drawn in the browser). The codes (μ) of fixed test images, coloured by label, over the prior's "
               "1σ and 2σ circles; the curve is the training negative ELBO up to the frame.")
    seconds = st.select_slider("Seconds a frame (Play)", SPEEDS, value=FRAME_MS / 1000, format_func=speed_label,
                               key=f"{key}_speed", help=f"how long Play shows each frame: {len(fig.frames)} frames "
                               "take that many times as long")
    fig = set_speed(fig, round(seconds * 1000))
    if large:
        presenter_type(fig).update_layout(height=980)
    legend = replay_legend(film_of(ckpt.film))
    if legend:  # the labels' colours, over the chart (drawn in it, they slowed every frame of a scrub)
        size = f"font-size:{PRESENTER_FONT}px;" if large else ""
        st.html(f'<div class="vae-replay-legend" style="{size}">' + " ".join(
            f'<span style="white-space:nowrap;margin-right:0.8em"><span style="color:{colour}">●</span> '
            f"{html.escape(name)}</span>" for name, colour in legend) + "</div>")
    st.plotly_chart(fig, key=f"{key}_replay")
    st.html(KEYS_JS, unsafe_allow_javascript=True)
    size = st.radio("GIF size", GIF_SIZES, format_func=GIF_SIZE_LABELS.get, horizontal=True, key=f"{key}_gif_size")
    made = st.session_state.get(f"{key}_gif")
    if made is not None and made[:2] == (model_key(ckpt), size):
        st.download_button(f"Download the GIF ({GIF_SIZE_LABELS[size]})", made[2],
                           file_name=f"{ckpt.path.stem}-film{'' if size == 'web' else '-' + size}.gif",
                           mime="image/gif", key=f"{key}_gif_download")
    elif st.button("Make a GIF of the film", key=f"{key}_gif_make", help="every frame's map, samples and "
                   "reconstructions: a 1280×720 slide with large type, or a small one for a web page"):
        st.session_state[f"{key}_gif"] = (model_key(ckpt), size, film_gif_bytes(ckpt, size))
        st.rerun()

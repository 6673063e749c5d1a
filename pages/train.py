"""Train: a live run in a process of its own, with curves, β you can change while it runs, previews
each epoch, and the latent space forming (the film: a live map, one step or one epoch at a time while
paused, slow motion, and a replay of a finished run or of the sidebar's model). The run belongs to
this browser session and survives page switches. Runs stay within the server's limits (shown here),
read data only inside the allowed roots, never download, warn when they degenerate, and a run the
server lost can be resumed."""

from ui.routing import page_header

# first, before this page's imports: the router and the page's heading are on screen at once (ui/routing.py)
page_header()

from pathlib import Path

import plotly.graph_objects as go
import streamlit as st
import torch
from plotly.subplots import make_subplots

from ui.config_form import config_inputs, widget_key
from ui.display import plain, presenter_chrome
from ui.film_view import PRESENTER_KEYS_JS, live_map, replay_section
from ui.loaders import get_checkpoint
from ui.runs import JOB, launch_run, session_run, unwatched_line
from ui.session import SELECTED, claim_checkpoint_path, current_checkpoint, page_fragment, run_state, session_dir
from ui.sidebar import limits_panel
from vae_core import DATASETS, TrainingJob, VAEConfig, VAEError
from vae_core.config import ConfigField
from vae_core.hosting import ROOTS_ENV, stopped_at_time_limit, stopped_unwatched
from vae_core.images import grid_png
from vae_core.job import enabled_controls, live_beta_note
from vae_core.limits import limit, public_mode

limits_panel()
job: TrainingJob | None = session_run()  # this session's run, or the one the address names (a reload)
running = job is not None and job.alive
present = st.sidebar.toggle(
    "Presenter view", value=st.query_params.get("present") == "1", key="train_present",
    help="For a projector: the live map and the replay large, and the keys: Space pauses or resumes, "
         "→ takes one step while paused")
if present:
    st.query_params["present"] = "1"
    presenter_chrome()
    st.html(PRESENTER_KEYS_JS, unsafe_allow_javascript=True)
    st.caption("Presenter view: Space pauses or resumes the run, → takes one step while it is paused.")
elif "present" in st.query_params:
    del st.query_params["present"]


def dataset_choices() -> list[str]:
    """Every registry dataset and a folder; in the public demo, those that ship with the install
    and fit the dataset limit."""
    if not public_mode():
        return [n for n in DATASETS if n != "folder:PATH"] + ["folder"]
    cap = limit("dataset_images")
    return [n for n, d in DATASETS.items() if d.offline and d.size and (cap is None or d.size <= cap)]


# where they differ from VAEConfig's: the page trains the conv model, sharper at 28-64 pixels (the model
# option's help says why the command line keeps mlp, which takes any image size)
FORM_DEFAULTS = {"model": "conv", "hidden_sizes": (256,), "warmup_epochs": 5.0}


def _dataset(where, f: ConfigField) -> str:
    names = dataset_choices()
    return where.selectbox(f.option.label, names, index=names.index(f.default), key=widget_key(f.name),
                           help="\n".join(f"- **{d.name}**: {d.description}" for d in DATASETS.values()))


def _data_path(where, f: ConfigField) -> str | None:
    if public_mode():  # the public demo reads no server paths
        return None
    return where.text_input(
        "Folder or data root",
        "",
        key=widget_key(f.name),
        help="For `folder`: the image folder. For torchvision datasets: where the files are (they are never "
        f"downloaded here). Only inside the server's data folders ({ROOTS_ENV}); a relative path is taken "
        "inside the project folder where that is an allowed folder (so `data/icons` works as it does for the "
        "command line), else inside the first.",
    ).strip() or None


def config_form() -> VAEConfig | None:
    """The run's settings; returns a config when Start is pressed and the settings are valid. Folded
    away while a run goes on, so that its controls and live map fill a 1080-pixel screen."""
    with st.expander("Settings of a run", expanded=not running), st.form("train_form", border=False):
        values = config_inputs(defaults=FORM_DEFAULTS, custom={"dataset": _dataset, "data_root": _data_path})
        start = st.form_submit_button("Start training", type="primary", disabled=running)
    if not start:
        return None
    if bad := next((v for v in values.values() if isinstance(v, VAEError)), None):
        raise bad  # a field's text that is not what it takes, named by its label
    if values["dataset"] == "folder":
        if not values["data_root"]:
            raise VAEError("choose an image folder for the folder dataset")
        values["dataset"], values["data_root"] = f"folder:{values['data_root']}", None
    return VAEConfig(**values)


def launch(config: VAEConfig, out: Path, resume=None) -> None:
    """Start a run within the limits; a refusal is a message on the page. A session runs one run at a
    time (checked here too, not only by the disabled Start button)."""
    current = st.session_state.get(JOB)
    if current is not None and current.alive:
        st.error("This session's run is still going: stop it or wait for it to end before starting another.")
        return
    try:
        launch_run(config, out, resume=resume)
    except VAEError as e:
        st.error(plain(str(e)))
        return
    st.session_state["live_beta"] = config.beta
    st.session_state["live_delay"] = 0.0
    st.rerun()  # draw the page with the run going on


def offer_resume() -> None:
    """A selected checkpoint whose run died (the server was stopped) can go on from its last epoch."""
    ckpt = current_checkpoint()
    if ckpt is None or run_state(ckpt.path) != "interrupted":
        return
    st.warning(plain(f"The run of {ckpt.path.stem} was interrupted after epoch {ckpt.progress.get('epoch', 0)} of "
                     f"{ckpt.config.epochs}: the server stopped while it trained."))
    if st.button("Resume", key="resume_interrupted", type="primary", disabled=running):
        out = session_dir() / ckpt.path.name if public_mode() else ckpt.path  # the demo writes only to scratch
        launch(ckpt.config, out, resume=ckpt)


try:
    config = config_form()
except VAEError as e:
    st.error(plain(str(e)))
    config = None
if config is not None:
    launch(config, claim_checkpoint_path(config, session_dir() if public_mode() else None))
offer_resume()


CONTROLS_DRAWN = "train_controls_drawn"  # session key: (the run's id, the state its controls were drawn for)


def controls(job: TrainingJob) -> None:
    """Pause, Resume, Stop, β, One step, One epoch and slow motion; drawn with the page (not every
    second), each enabled exactly when it acts in the run's state (`vae_core.job.RUN_CONTROLS`). Each acts
    in its callback, before the page is drawn again, and the job shows the state it asked for at once; when
    the run changes state by itself (ready, paused after One step, stopped, ended), `live_status` redraws
    the page, so no button is ever left for a state the run is no longer in."""
    snap = job.snapshot()
    can = enabled_controls(snap.status, job.config)
    st.session_state[CONTROLS_DRAWN] = (id(job), snap.status)
    if snap.done:  # an ended run has no control that acts: its result and Resume are drawn below
        return
    if "live_beta" not in st.session_state:  # a run found again after a reload: its β as it is now
        st.session_state["live_beta"] = float(min(20.0, snap.beta))
        st.session_state["live_delay"] = snap.delay_s if snap.delay_s in SLOW_MOTION else 0.0
    c = st.columns([1, 1, 1, 3])
    c[0].button("Pause", disabled="pause" not in can, on_click=job.pause, help="Space in presenter view")
    c[1].button("Resume", disabled="resume" not in can, on_click=job.resume, help="Space in presenter view")
    c[2].button("Stop", disabled="stop" not in can, help="stop and save the checkpoint", on_click=job.stop)
    beta_note = live_beta_note(job.config)
    c[3].slider(
        "β, live",
        0.0,
        20.0,
        key="live_beta",
        step=0.1,
        disabled="beta" not in can,
        on_change=lambda: job.set_beta(st.session_state["live_beta"]),
        help=f"Not with this run: {beta_note}" if beta_note else "Changes the KL weight of the running job "
        "(the schedule's target)",
    )
    s = st.columns([1, 1, 4])
    s[0].button("One step", disabled="step" not in can, on_click=job.advance, args=(1,),
                help="While paused: one optimizer step, then paused again; the map shows the codes after it "
                "(→ in presenter view)")
    s[1].button("One epoch", disabled="epoch" not in can, on_click=job.advance_epoch,
                help="While paused: to the end of this epoch (with its test pass), then paused again")
    s[2].select_slider(
        "Slow motion (a wait after each step)",
        options=SLOW_MOTION,
        key="live_delay",
        format_func=lambda v: "off" if v == 0 else f"{v:g} s",
        disabled="delay" not in can,
        on_change=lambda: job.set_delay(st.session_state["live_delay"]),
        help="Spaces the steps out so a class can follow; every step is then logged and filmed",
    )
    notes = [unwatched_line()] if not snap.done else []
    if beta_note and not snap.done:
        notes.insert(0, f"β cannot be changed while this run goes on: {beta_note}.")
    for line in notes:
        st.caption(plain(line))


SLOW_MOTION = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0)  # seconds after each step


def _line(records: list[dict], key: str, *, name: str, color: str, legend: bool, markers: bool = False):
    return go.Scatter(
        x=[r["epoch"] for r in records],
        y=[r[key] for r in records],
        name=name,
        mode="lines+markers" if markers else "lines",
        line=dict(color=color),
        showlegend=legend,
    )


def curves(history: dict) -> go.Figure:
    steps, epochs = history.get("steps", []), history.get("epochs", [])
    fig = make_subplots(
        rows=1, cols=4, subplot_titles=("reconstruction (nats)", "KL (nats)", "negative ELBO (nats)", "β")
    )
    for col, key in enumerate(("recon", "kl", "nelbo"), start=1):
        first = col == 1
        fig.add_trace(_line(steps, key, name="train", color="#1f77b4", legend=first), row=1, col=col)
        fig.add_trace(
            _line(epochs, f"test_{key}", name="test", color="#d62728", legend=first, markers=True), row=1, col=col
        )
    fig.add_trace(_line(steps, "beta", name="β", color="#2ca02c", legend=False), row=1, col=4)
    fig.update_xaxes(title_text="epoch")
    fig.update_layout(height=300, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.25))
    return fig


def kl_bars(record: dict) -> go.Figure:
    kl = record["kl_per_dim"]
    fig = go.Figure(go.Bar(x=[f"z{d}" for d in range(len(kl))], y=kl, marker_color="#9467bd"))
    fig.add_hline(y=0.01, line_dash="dot", annotation_text="active > 0.01 nats")
    fig.update_layout(height=260, margin=dict(l=10, r=10, t=30, b=10), title="KL per dimension (test, nats)")
    return fig


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    m, s = divmod(int(seconds), 60)
    return f"{m} min {s:02d} s" if m else f"{s} s"


STATE_WORDS = {"starting": "starting: loading the data and the model", "paused": "paused",
               "stepping": "taking the steps asked for, then paused", "stopping": "stopping: saving the checkpoint"}


def progress_line(snap) -> str:
    """Where the run is; a rate and an ETA only while it takes steps (paused, nothing is moving)."""
    where = f"epoch {snap.epoch}/{snap.epochs} · step {snap.step}/{snap.total_steps}"
    if snap.status == "running":
        return f"{where} · {snap.images_per_s or 0:,.0f} images/s · ETA {_eta(snap.eta_s)}"
    return f"{where} · {STATE_WORDS.get(snap.status, snap.status)}"


def preview_pngs(job: TrainingJob, snap) -> tuple[bytes, bytes]:
    """The last epoch's preview as two PNGs (test images over their reconstructions; prior samples),
    made once per epoch: the live view redraws every second, the preview changes once an epoch."""
    key = (id(job), snap.epoch)
    cached = st.session_state.get("train_preview")
    if cached is None or cached[0] != key:
        p = snap.preview
        cached = (key, grid_png(torch.cat([p["originals"], p["reconstructions"]]), 8), grid_png(p["samples"][:8], 8))
        st.session_state["train_preview"] = cached
    return cached[1], cached[2]


# while a run goes on: its status line and progress; the live latent map; the charts
STATUS_EVERY_S, MAP_EVERY_S, CHARTS_EVERY_S = 1.0, 1.0, 2.0


@page_fragment(run_every=STATUS_EVERY_S if running else None)
def live_status() -> None:
    """The run's status, controls and progress, redrawn every second while it runs."""
    job: TrainingJob | None = st.session_state.get(JOB)
    if job is None:
        st.info(
            "Choose settings and press **Start training**. The run goes on in the background while "
            "you use the other pages."
        )
        return
    snap = job.snapshot()
    drawn = st.session_state.get(CONTROLS_DRAWN)
    if drawn is not None and drawn[0] == id(job) and drawn[1] != snap.status and not snap.done:
        st.rerun()  # the run changed state by itself: redraw the controls for the state it is in now
    c = job.config
    st.markdown(
        "**" + plain(f"{c.dataset} · {c.model} · z={c.latent_dim} · β={snap.beta:g} ({c.beta_schedule}) · "
                     f"{c.likelihood_name}") + f"** — status: `{snap.status}`"
    )
    st.progress(snap.fraction, text=progress_line(snap))
    if snap.data_line:  # resident, or streamed over the memory budget
        st.caption(plain(snap.data_line))
    if snap.status == "failed":
        st.error(plain(snap.message))
    if stopped_at_time_limit(job):
        st.info(f"Stopped at the time limit of {limit('train_minutes'):g} minutes per run (VAE_MAX_TRAIN_MINUTES).")
    if stopped_unwatched(job):
        st.info(f"Saved and stopped after {limit('unwatched_minutes'):g} minutes with no tab showing it "
                "(VAE_UNWATCHED_RUN_MINUTES).")
    for warning in (snap.history.get("epochs") or [{}])[-1].get("warnings", []):
        st.warning(warning)
    if snap.done:
        if snap.checkpoint_path:
            st.success(f"Saved {Path(snap.checkpoint_path).name} ({snap.status} after {snap.epoch} epochs).")
            if st.button("Explore this model", type="primary"):
                st.session_state[SELECTED] = snap.checkpoint_path
                st.switch_page("pages/map.py")
            if snap.status == "stopped" and snap.epoch < snap.epochs and st.button(
                    "Resume this run", help=f"Go on from its last saved epoch ({snap.epoch}) to epoch {snap.epochs}"):
                try:
                    ckpt = get_checkpoint(snap.checkpoint_path)
                except VAEError as e:
                    st.error(plain(str(e)))
                else:
                    launch(ckpt.config, ckpt.path, resume=ckpt)
        if running and not st.session_state.get("train_done_seen") == id(job):
            st.session_state["train_done_seen"] = id(job)
            st.rerun()  # a full rerun: the sidebar lists the new checkpoint, the charts their last state


@page_fragment(run_every=MAP_EVERY_S if running else None)
def live_film() -> None:
    """The latent map of the run's latest frame, redrawn every second while it runs: its own fragment, so
    the map follows the film's frames without redrawing the charts."""
    job: TrainingJob | None = st.session_state.get(JOB)
    if job is not None:
        live_map(job, job.snapshot(), large=present)


@page_fragment(run_every=CHARTS_EVERY_S if running else None)
def live_charts() -> None:
    """The curves, KL per dimension and the epoch's previews, redrawn every 2 s while the run goes
    on: redrawing the charts every second cost a watching browser about a seventh of a core here."""
    job: TrainingJob | None = st.session_state.get(JOB)
    if job is None:
        return
    snap = job.snapshot()
    if snap.history.get("steps"):
        st.plotly_chart(curves(snap.history), key="train_curves")
    epochs = snap.history.get("epochs", [])
    if epochs:
        left, right = st.columns([2, 3])
        with left:
            st.plotly_chart(kl_bars(epochs[-1]), key="train_kl")
        with right:
            pair, samples = preview_pngs(job, snap)
            st.caption("Test images (top) and their reconstructions (bottom)")
            st.image(pair, width=8 * 64)
            st.caption("Samples from the prior")
            st.image(samples, width=8 * 64)


def replays(job: TrainingJob | None) -> None:
    """The film of this session's finished run, and of the sidebar's model ("How it learned")."""
    shown = None
    snap = job.snapshot() if job is not None else None
    if snap is not None and snap.done and snap.checkpoint_path:
        st.subheader("Replay of this run")
        try:
            ckpt = get_checkpoint(snap.checkpoint_path)
        except VAEError as e:
            st.error(plain(str(e)))
        else:
            replay_section(ckpt, key="run", large=present)
            shown = ckpt.path
    selected = current_checkpoint()
    if selected is not None and selected.path != shown and not running:
        with st.expander(f"How it learned: {selected.path.stem}", expanded=job is None):
            replay_section(selected, key="selected", large=present)


if job is not None:  # outside the fragments: they change when pressed, or when the run ends (a full rerun)
    controls(job)
live_status()
live_film()
live_charts()
replays(job)

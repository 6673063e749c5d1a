"""The film's figures (`vae_core.film`), built without Streamlit: the live latent map's plotly figure and
the replay of a finished run, a plotly figure whose frames are all sent once (its slider and Play button
redraw the map, the samples, the reconstructions and the loss curves in the browser). `ui.loaders`
caches the replay; `ui.film_view` draws both."""

from __future__ import annotations

import base64

import numpy as np
import plotly.graph_objects as go
import torch

from vae_core.film import Film, extent, from_uint8, label_name
from vae_core.images import grid_png, label_hex

MAP_HEIGHT = 420


def label_groups(labels: torch.Tensor | None, n: int, class_names=()) -> list[tuple[str, np.ndarray]]:
    """(name, positions) per label, in label order, named by `class_names` where the film knows them;
    one group "codes" when there are no labels."""
    if labels is None:
        return [("codes", np.arange(n))]
    values = labels.numpy()
    return [(label_name(int(v), class_names), np.flatnonzero(values == v)) for v in np.unique(values)]


def prior_circles(fig: go.Figure, **where) -> None:
    """The prior N(0, I)'s 1σ and 2σ circles behind the codes."""
    for r in (1, 2):
        fig.add_shape(type="circle", x0=-r, y0=-r, x1=r, y1=r, layer="below",
                      line=dict(color="#bbbbbb", dash="dot" if r == 2 else "solid", width=1), **where)


def two_columns(points: np.ndarray) -> np.ndarray:
    """A frame's picture as (N, 2): one of fewer codes than two principal axes need (a test split of
    one image) has one column, and gets a second of zeros."""
    if points.shape[1] >= 2:
        return points
    return np.concatenate([points, np.zeros((len(points), 2 - points.shape[1]))], axis=1)


def _xy(points: np.ndarray, idx: np.ndarray) -> tuple[list, list]:
    return np.round(points[idx, 0], 3).tolist(), np.round(points[idx, 1], 3).tolist()


def map_figure(points: np.ndarray, labels: torch.Tensor | None, half_width: float, title: str,
               latent_dim: int, class_names=()) -> go.Figure:
    """The codes of the filmed test images in 2-D, coloured by label, over the prior's circles."""
    fig = go.Figure()
    for k, (name, idx) in enumerate(label_groups(labels, len(points), class_names)):
        x, y = _xy(points, idx)
        fig.add_trace(go.Scatter(x=x, y=y, mode="markers", name=name, marker=dict(size=4, color=label_hex(k)),
                                 hoverinfo="skip"))
    prior_circles(fig)
    axes = axis_names(latent_dim)
    fig.update_xaxes(range=[-half_width, half_width], title_text=axes[0], zeroline=False)
    fig.update_yaxes(range=[-half_width, half_width], title_text=axes[1], zeroline=False, scaleanchor="x")
    fig.update_layout(height=MAP_HEIGHT, title=title, margin=dict(l=10, r=10, t=40, b=10),
                      legend=dict(itemsizing="constant"), uirevision="film")
    return fig


def axis_names(latent_dim: int) -> tuple[str, str]:
    if latent_dim == 2:
        return "z₀", "z₁"
    if latent_dim == 1:
        return "z₀", ""
    return "PC 1 of the codes", "PC 2"


def frame_title(frame: dict) -> str:
    return f"step {frame['step']} · epoch {frame['epoch']:.2f} · β={frame['beta']:g}"


def frame_pngs(film_originals: torch.Tensor, frame: dict) -> tuple[bytes, bytes]:
    """A frame's prior samples, and the fixed test images over their reconstructions, as PNGs."""
    samples = from_uint8(torch.as_tensor(frame["samples"]))
    pair = torch.cat([from_uint8(torch.as_tensor(film_originals)),
                      from_uint8(torch.as_tensor(frame["reconstructions"]))])
    return grid_png(samples, 8, tile=28), grid_png(pair, 8, tile=28)


PRESENTER_FONT = 22  # px: a chart's type in presenter view, readable from the back of a room at 1920 × 1080


def presenter_type(fig: go.Figure) -> go.Figure:
    """A figure's every piece of type (title, axes, ticks, legend, subplot titles) at PRESENTER_FONT."""
    size = PRESENTER_FONT
    fig.update_layout(font=dict(size=size), title_font_size=size, legend_font_size=size)
    fig.update_xaxes(tickfont_size=size, title_font_size=size)
    fig.update_yaxes(tickfont_size=size, title_font_size=size)
    fig.update_annotations(font_size=size)
    for slider in fig.layout.sliders or ():
        slider.font = dict(size=size)
        slider.currentvalue.font = dict(size=size)
    for menu in fig.layout.updatemenus or ():
        menu.font = dict(size=size)
    return fig


# Play's pace: seconds each frame shows (a 21-frame film took ~1.6 s at the old 180 ms redraws, too fast
# to talk over); the page offers SPEEDS, FRAME_MS by default (21 frames in ~10 s)
SPEEDS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0)
FRAME_MS = 500
REPLAY_META = "vae-replay"  # the replay figure's layout.meta: how the keys' script finds it
def speed_label(seconds: float) -> str:
    return f"{seconds:g} s"


def set_speed(fig: go.Figure, frame_ms: int) -> go.Figure:
    """The replay figure with Play showing each frame `frame_ms` milliseconds (in place; returned)."""
    play = fig.layout.updatemenus[0].buttons[0]
    args = list(play.args)
    args[1] = {**args[1], "frame": {**args[1]["frame"], "duration": int(frame_ms)}}
    play.args = args
    return fig



# the replay's legend is drawn beside the figure, not in it (`replay_legend`): plotly works through every
# trace's defaults and every annotation on each frame of a scrub, and a legend trace per label (or an
# annotation listing them) kept the map 16-30 ms further behind the pointer
def replay_legend(film: Film) -> list[tuple[str, str]]:
    """The replay's labels, as (name, colour) in the map's colours, in order."""
    if film.labels is None:
        return []
    return [(name, label_hex(g)) for g, (name, _) in enumerate(label_groups(film.labels, len(film.labels),
                                                                            film.class_names))]


def _png_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def replay_figure(film: Film, pictures: list[np.ndarray], history: dict, latent_dim: int,
                  frame_ms: int = FRAME_MS) -> go.Figure:
    """The whole film as one animated figure: the map (left), the samples and reconstructions, and the
    negative ELBO up to the frame (right); a slider over the frames and Play/Pause buttons, all run by
    plotly.js in the browser, Play showing each frame for `frame_ms` (`set_speed` changes it). Every
    frame carries all it shows (codes, curves, title, images): nothing blanks or lags during Play."""
    from plotly.subplots import make_subplots

    frames_in = film.frames
    pictures = [two_columns(p) for p in pictures]
    half = extent(pictures)
    groups = label_groups(film.labels, len(pictures[0]), film.class_names)
    fig = make_subplots(rows=3, cols=2, column_widths=[0.58, 0.42], row_heights=[0.22, 0.33, 0.45],
                        specs=[[{"rowspan": 3}, {}], [None, {}], [None, {}]], horizontal_spacing=0.08,
                        vertical_spacing=0.1,
                        subplot_titles=("latent space (codes μ of test images)", "prior samples",
                                        "test images / reconstructions", "negative ELBO (nats)"))
    steps, epochs = history.get("steps", []), history.get("epochs", [])
    train_x = [r["epoch"] for r in steps]
    train_y = [r["nelbo"] for r in steps]
    test_x = [r["epoch"] for r in epochs]
    test_y = [r["test_nelbo"] for r in epochs]

    colors = np.empty(len(pictures[0]), dtype=object)
    for g, (_, idx) in enumerate(groups):
        colors[idx] = label_hex(g)

    def traces(k: int, first: bool = False) -> list:
        f, p = frames_in[k], np.round(pictures[k], 3)
        codes = go.Scatter(x=p[:, 0], y=p[:, 1])  # a frame changes only where the codes are
        if first:
            codes = go.Scatter(x=p[:, 0], y=p[:, 1], mode="markers", marker=dict(size=4, color=list(colors)),
                               showlegend=False, hoverinfo="skip")
        n_train = sum(1 for r in steps if r["step"] <= f["step"])
        n_test = sum(1 for r in epochs if r["step"] <= f["step"])
        return [codes,
                go.Scatter(x=train_x[:n_train], y=train_y[:n_train], mode="lines", line=dict(color="#1f77b4"),
                           showlegend=False),
                go.Scatter(x=test_x[:n_test], y=test_y[:n_test], mode="lines+markers", line=dict(color="#d62728"),
                           showlegend=False)]

    def still_layout(k: int) -> dict:
        """What else a frame shows, all of it in the frame (drawn in the same redraw as its codes, so the
        title never lags the picture): its title, and its samples and reconstructions as layout images
        (a data: URI is painted at once; an image trace's source loads asynchronously, and blanked
        during Play)."""
        samples, pair = frame_pngs(film.originals, frames_in[k])
        images = [dict(source=_png_uri(png), xref=axis, yref=axis.replace("x", "y"),
                       x=0, y=1, sizex=1, sizey=1, xanchor="left", yanchor="top", sizing="contain", layer="above")
                  for png, axis in ((samples, "x2"), (pair, "x3"))]
        return dict(title=dict(text=frame_title(frames_in[k])), images=images)

    # the whole curve, faint, behind the part played so far (the axes stay put)
    fig.add_trace(go.Scatter(x=train_x, y=train_y, mode="lines", line=dict(color="#cccccc"), showlegend=False,
                             hoverinfo="skip"), row=3, col=2)
    places = [(1, 1), (3, 2), (3, 2)]
    for trace, (row, col) in zip(traces(len(frames_in) - 1, first=True), places, strict=True):
        fig.add_trace(trace, row=row, col=col)
    moving = list(range(1, 1 + len(places)))  # the traces each frame replaces
    names = [str(k) for k in range(len(frames_in))]
    fig.frames = [go.Frame(name=names[k], data=traces(k), traces=moving, layout=still_layout(k))
                  for k in range(len(frames_in))]
    fig.add_shape(type="circle", x0=-1, y0=-1, x1=1, y1=1, layer="below", line=dict(color="#bbbbbb", width=1),
                  row=1, col=1)
    fig.add_shape(type="circle", x0=-2, y0=-2, x1=2, y1=2, layer="below",
                  line=dict(color="#bbbbbb", dash="dot", width=1), row=1, col=1)
    axes = axis_names(latent_dim)
    fig.update_xaxes(range=[-half, half], title_text=axes[0], zeroline=False, row=1, col=1)
    fig.update_yaxes(range=[-half, half], title_text=axes[1], zeroline=False, scaleanchor="x", row=1, col=1)
    for row in (1, 2):  # the images' places: axes of their own, drawn by none
        fig.update_xaxes(visible=False, range=[0, 1], row=row, col=2)
        fig.update_yaxes(visible=False, range=[0, 1], row=row, col=2)
    if train_y:
        low, high = min(train_y + test_y), max(train_y + test_y)
        fig.update_yaxes(range=[low - 0.05 * (high - low), high + 0.05 * (high - low)], row=3, col=2)
    fig.update_xaxes(title_text="epoch", row=3, col=2)
    play = dict(frame=dict(duration=frame_ms, redraw=True), transition=dict(duration=0), fromcurrent=True,
                mode="immediate")
    still = dict(frame=dict(duration=0, redraw=True), transition=dict(duration=0), mode="immediate")
    last = len(frames_in) - 1
    fig.update_layout(
        height=620, margin=dict(l=10, r=10, t=60, b=110), meta=REPLAY_META, **still_layout(last),
        updatemenus=[dict(type="buttons", direction="left", x=0.0, y=-0.13, xanchor="left", yanchor="top",
                          showactive=False, buttons=[
                              dict(label="▶ Play", method="animate", args=[None, play]),
                              dict(label="❚❚ Pause", method="animate", args=[[None], still])])],
        sliders=[dict(active=last, x=0.16, len=0.84, y=-0.1, yanchor="top", pad=dict(t=10),
                      currentvalue=dict(prefix="step ", xanchor="right"),
                      steps=[dict(label=str(frames_in[k]["step"]), method="animate", args=[[names[k]], still])
                             for k in range(len(frames_in))])],
    )
    return fig



"""The live decoder: the checkpoint's decoder runs in the browser (onnxruntime-web, WebAssembly)
inside a Streamlit v2 custom component, so dragging repaints at display rate with no server round
trip; Python hears the final value when a gesture ends.

The decoder is exported once per checkpoint content (`vae_core.export`) into
`ui/static/decoders/<content hash>.onnx`; the app serves `ui/static/` as its static folder (the
top-level `static` link, `server.enableStaticServing` in `.streamlit/config.toml`), next to the
vendored runtime in `ui/static/onnxruntime-web/`. When the browser cannot run it, or the export
fails, `unavailable()` says why in one line and pages fall back to decoding on the server. In the
public demo a session's own models (uploads, runs) decode on the server: exporting them would write
outside the scratch folder (the library's decoders are a bounded cache the operator's files decide).
Elsewhere a session's own model exports into a folder of that session,
`ui/static/decoders/sessions/<session>/`, removed with the session's scratch folder
(`vae_core.hosting.clean_scratch`; `session_exports`), so nothing a browser session makes outlives it.
The encoder is served the same way, beside it (`<content hash>.encoder.onnx`; `encoder_url`), for
pages that encode in the browser; `encoder_unavailable()` says why it cannot, for the same reasons.
"""

from __future__ import annotations

import base64
import functools
import json
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from ui.display import plain
from ui.loaders import model_key
from ui.session import in_session
from vae_core import Checkpoint, VAEError
from vae_core.export import export_decoder, export_encoder
from vae_core.hosting import session_of
from vae_core.images import png_bytes
from vae_core.latent import decode, lerp, slerp
from vae_core.library import checkpoint_cache_key
from vae_core.limits import public_mode

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
DECODERS = STATIC / "decoders"
FAILED = "live_decoder_failed"  # session key: why this browser cannot decode (then pages fall back)
MODES = {"sliders": "z", "path": "t", "plane": "point", "traversal": None, "samples": "t"}  # mode → what it reports

_component = st.components.v2.component(
    "vae_live_decoder",
    # explainer.js (the How it works page) builds on this file's runtime, sessions and drawing helpers
    js=(HERE / "live_decoder.js").read_text() + "\n" + (HERE / "explainer.js").read_text(),
    css=(HERE / "live_decoder.css").read_text(),
)


def session_exports() -> Path:
    """The folder of sessions' own exports: a subfolder per session, named as its scratch folder and
    removed with it (the sidebar passes this to `ui.session.startup_cleanup`)."""
    return DECODERS / "sessions"


def _export_name(path: str, suffix: str) -> str:
    """Where a checkpoint's file for the browser goes, relative to ui/static/decoders/: by its content
    (`checkpoint_cache_key`), in its session's own folder when the checkpoint is a session's."""
    session = session_of(path)
    folder = "" if session is None else f"{session_exports().relative_to(DECODERS).as_posix()}/{session.name}/"
    return f"{folder}{checkpoint_cache_key(path)}{suffix}"


@st.cache_resource(show_spinner="Exporting the decoder for your browser…", max_entries=64)
def _exported(_ckpt: Checkpoint, path: str, mtime: float) -> str:
    """The checkpoint's decoder's path under ui/static/decoders/ (exported once per content)."""
    name = _export_name(path, ".onnx")
    if not (DECODERS / name).exists():
        export_decoder(_ckpt, DECODERS / name)
    return name


@st.cache_resource(show_spinner="Exporting the encoder for your browser…", max_entries=64)
def _exported_encoder(_ckpt: Checkpoint, path: str, mtime: float) -> str:
    """The checkpoint's encoder's path under ui/static/decoders/ (exported once per content), beside its
    decoder's."""
    name = _export_name(path, ".encoder.onnx")
    if not (DECODERS / name).exists():
        export_encoder(_ckpt, DECODERS / name)
    return name


def _export(cached, ckpt: Checkpoint) -> str:
    """`cached(ckpt, ...)`'s file name, exported again when its file was removed since (a session's
    exports go with its scratch folder)."""
    name = cached(ckpt, *model_key(ckpt))
    if not (DECODERS / name).exists():
        cached.clear()
        name = cached(ckpt, *model_key(ckpt))
    return name


def decoder_url(ckpt: Checkpoint) -> str:
    """The URL of the checkpoint's decoder, exported on first use (ask `unavailable` first)."""
    return static_base() + "decoders/" + _export(_exported, ckpt)


def static_base() -> str:
    """The URL path of the app's static folder, under a configured base URL path."""
    prefix = (st.get_option("server.baseUrlPath") or "").strip("/")
    return f"/{prefix}/app/static/" if prefix else "/app/static/"


def unavailable(ckpt: Checkpoint) -> str | None:
    """Why the live decoder cannot run for this session and model, or None when it can."""
    if reason := st.session_state.get(FAILED):
        return f"this browser could not run the decoder ({reason})"
    if public_mode() and in_session(ckpt.path):  # its decoder would be a file outside the scratch folder
        return "in the public demo a model of this session (uploaded or trained here) decodes on the server"
    if not st.get_option("server.enableStaticServing"):
        return "static file serving is off (server.enableStaticServing), so the browser cannot fetch the decoder"
    try:
        _export(_exported, ckpt)
    except VAEError as e:
        return str(e)
    return None


def encoder_unavailable(ckpt: Checkpoint) -> str | None:
    """Why the checkpoint's encoder cannot run in this session's browser, or None when it can (then
    `encoder_url` gives it): `unavailable`'s reasons, and an encoder that cannot be exported."""
    if reason := st.session_state.get(FAILED):  # the same runtime runs both halves
        return f"this browser could not run the model ({reason})"
    if public_mode() and in_session(ckpt.path):  # its encoder would be a file outside the scratch folder
        return "in the public demo a model of this session (uploaded or trained here) encodes on the server"
    if not st.get_option("server.enableStaticServing"):
        return "static file serving is off (server.enableStaticServing), so the browser cannot fetch the encoder"
    try:
        _export(_exported_encoder, ckpt)
    except VAEError as e:
        return str(e)
    return None


def encoder_url(ckpt: Checkpoint) -> str:
    """The URL of the checkpoint's encoder (x (N, C, H, W) float32 in [0, 1] → "mu", "logvar" (N, D)),
    exported on first use. Ask `encoder_unavailable` first: an export that fails raises `VAEError` here."""
    return static_base() + "decoders/" + _export(_exported_encoder, ckpt)


def status_line(ckpt: Checkpoint, *, encoder: bool = False) -> None:
    """The sidebar's line on where this model decodes. When it is the browser, the line also starts
    the runtime and this model's decoder loading as the app opens (and its encoder, for a page that
    encodes in the browser: `encoder`), so the component a page mounts seconds later paints as soon as
    it appears; a browser that cannot run it makes every page fall back."""
    if reason := unavailable(ckpt):
        st.caption(plain(f"Decoder: on the server, because {reason}"))
        return
    key = "live_decoder_status"
    model = decoder_url(ckpt)
    data = {"mode": "status", "base": static_base(), "model": model, "version": 0, "warm": chart_bundles()}
    if encoder and not encoder_unavailable(ckpt):
        data["encoder"] = encoder_url(ckpt)
    _component(key=key, data=data, on_failed_change=lambda: _remember_failure(key))


def chart_bundles() -> list[str]:
    """URLs of Streamlit's own plotly chart bundle (one 4.7 MB JavaScript module, loaded the first
    time a page draws a chart: 1 s of a 2-core machine's browser). The sidebar's component imports it
    once the browser is idle, so the first map a session opens from another page does not wait for
    it. Found by name in this Streamlit's static files; none (nothing warmed) when it is not there."""
    prefix = (st.get_option("server.baseUrlPath") or "").strip("/")
    return [f"{'/' + prefix if prefix else ''}/static/js/{name}" for name in _chart_bundle_names()]


@functools.cache
def _chart_bundle_names() -> tuple[str, ...]:
    folder = Path(st.__file__).resolve().parent / "static" / "static" / "js"
    return tuple(sorted(p.name for p in folder.glob("PlotlyChart.*.js")))


def version_of(*values) -> int:
    """A stable small number for what a pad was built from: pass it as `version`, so the pad
    restarts from the page's value exactly when that changes."""
    return zlib.crc32(repr(values).encode())


def display_size(height: int) -> int:
    """Canvas side in CSS pixels: a whole multiple of the image side, about 190–240 px."""
    return height * max(1, 240 // height)


def _remember_failure(key: str) -> None:
    st.session_state[FAILED] = st.session_state[key].get("failed") or "unknown error"


def poster(ckpt: Checkpoint, z, image: torch.Tensor | None = None) -> str:
    """decoder(z) decoded here (or `image`, when the page has decoded z already), as a PNG data URL:
    the pad paints it at once, before the browser's runtime has compiled (about a second on a cold
    load), then replaces it with live frames."""
    if image is None:
        image = decode(ckpt.model, torch.as_tensor(np.asarray(z, dtype=np.float32)).reshape(1, -1))[0]
    return png_url(png_bytes(image))


def png_url(png: bytes) -> str:
    """PNG bytes as a data URL (a component's first picture)."""
    return "data:image/png;base64," + base64.b64encode(png).decode()


def _mount(ckpt: Checkpoint, key: str, mode: str, on_change: Callable[[object], None] | None, **fields):
    value_name = MODES[mode]

    def changed() -> None:
        if on_change is not None:
            on_change(st.session_state[key].get(value_name))

    model = decoder_url(ckpt)
    data = {
        "mode": mode, "key": key, "base": static_base(), "model": model, "shape": list(ckpt.image_shape),
        "display": display_size(ckpt.image_shape[1]), **fields,
    }
    return mount(key, data, {value_name: changed} if value_name is not None else {})


def mount(key: str, data: dict, heard: dict[str, Callable[[], None]]):
    """The live decoder's component under `key` with `data` (its `mode` picks what the browser builds;
    sent as plain JSON), each `heard[name]` called when the browser reports `name` (its value is
    `st.session_state[key][name]`), and a report that the browser cannot run the model remembered for
    this session (`FAILED`: pages then decode on the server). The one way pages and views mount it."""
    # plain JSON (numpy scalars as floats): anything else would make Streamlit send it as Arrow
    data = json.loads(json.dumps(data, default=float))
    callbacks = {f"on_{name}_change": call for name, call in heard.items()}
    return _component(key=key, data=data, on_failed_change=lambda: _remember_failure(key), **callbacks)


def _floats(values) -> list[float]:
    return [float(v) for v in np.asarray(values, dtype=np.float64).reshape(-1)]


def latent_pad(ckpt: Checkpoint, z: np.ndarray, dims: list[tuple[int, str, str]], *, key: str, version: int,
               visible: int = 8, limit: float = 4.0, step: float = 0.05,
               on_change: Callable[[list[float]], None] | None = None, image: torch.Tensor | None = None,
               directions: list[tuple[str, str, np.ndarray]] = (), direction_limit: float = 2.0):
    """One native range input per latent dimension (`dims`: (index, label, note), in display order) and
    the decoded image, repainted on every input event. `on_change(z)` runs when a drag ends.
    Bump `version` whenever the page sets z itself (a button), so the pad takes the new value;
    `image`: decoder(z), when the page has it already (the pad's first picture). `directions`: named
    attribute sliders above the raw ones, (label, note, vector (D,)): moving one by Δt moves z by Δt·vector,
    t in [−direction_limit, direction_limit], and the raw sliders follow."""
    z = np.clip(z, -limit, limit)
    return _mount(ckpt, key, "sliders", on_change, z=_floats(z), poster=poster(ckpt, z, image),
                  dims=[{"index": int(i), "label": label, "note": note} for i, label, note in dims], visible=visible,
                  limit=limit, step=step, version=version, caption="decoder(z)",
                  directions=[{"label": label, "note": note, "vector": [round(v, 5) for v in _floats(vector)]}
                              for label, note, vector in directions], directionLimit=float(direction_limit))


def path_scrubber(ckpt: Checkpoint, a: np.ndarray, b: np.ndarray, *, method: str, key: str, version: int,
                  t: float = 0.5, on_change: Callable[[float], None] | None = None):
    """A scrubber t ∈ [0, 1] along the lerp or slerp path from code a to code b, every position
    decoded as it moves."""
    along = slerp if method == "slerp" else lerp
    at = along(torch.as_tensor(a, dtype=torch.float32), torch.as_tensor(b, dtype=torch.float32), 1001)[round(t * 1000)]
    return _mount(ckpt, key, "path", on_change, a=_floats(a), b=_floats(b), method=method, t=float(t),
                  poster=poster(ckpt, at), version=version, caption="decoder(path(t))")


def traversal_view(ckpt: Checkpoint, *, follows: str, z, dims: list[int], key: str, version: int,
                   steps: int = 9, span: float = 3.0, tile: int = 84, rest: float = 4.0, poster: str | None = None):
    """The traversal grid of the pad keyed `follows`, decoded in the browser as one batch and redone as
    the pad is dragged: one row per dimension in `dims`, swept over [−span, span] in `steps` while the
    others keep z (`vae_core.latent.traversal_grid`), each tile `tile` CSS pixels. After a batch of t ms
    it waits `rest`·t ms, so following a drag takes at most 1/(1 + rest) of one core. `poster`: a
    data URL of the grid decoded here, painted until the first batch arrives."""
    return _mount(ckpt, key, "traversal", None, follows=follows, z=_floats(z), dims=[int(d) for d in dims],
                  steps=int(steps), span=float(span), tile=int(tile), rest=float(rest), poster=poster, version=version)


def sample_grid(ckpt: Checkpoint, eps, *, temperature: float, key: str, version: int, per_row: int = 8,
                tile: int = 96, limit: float = 2.0, step: float = 0.01, rest: float = 2.0, poster: str | None = None,
                on_change: Callable[[float], None] | None = None):
    """Prior samples z = T·eps (`eps`: (n, D) draws of N(0, I)) decoded in the browser as one batch, under
    a temperature range input over [0, limit]: the grid follows every move of a drag (resting `rest`
    times each batch's time between batches), and `on_change(T)` runs when the drag ends. `poster`:
    a data URL of the grid decoded here, painted until the first batch arrives."""
    return _mount(ckpt, key, "samples", on_change, eps=np.round(np.asarray(eps, dtype=np.float64), 5).tolist(),
                  t=float(temperature), per_row=int(per_row), tile=int(tile), limit=float(limit), step=float(step),
                  rest=float(rest), poster=poster, version=version)


def _drawn(points, colours) -> list[list]:
    """Points (N, 2) as [u, v, colour index] rows for a canvas (colour 0 when there are no colours)."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    cols = np.zeros(len(pts), dtype=int) if colours is None else np.asarray(colours).astype(int)
    return [[round(float(p[0]), 4), round(float(p[1]), 4), int(c)] for p, c in zip(pts, cols, strict=True)]


def marker_map(*, follows: str, z, offset, matrix, points: np.ndarray, key: str, version: int,
               colours: np.ndarray | None = None, palette: list[str] | None = None, legend: list[str] | None = None,
               title: str = "z on the map", width: int = 300, height: int = 220):
    """A small map of `points` (N, 2) with a star at offset + matrix @ z (a linear map: the latent
    plane, PCA) that follows the pad keyed `follows` while it is dragged: drawn in the browser, with
    no decoder of its own and nothing sent back, so a release does not redraw a chart."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    pad = 0.05 * np.maximum(hi - lo, 1e-6)
    data = {"mode": "marker", "follows": follows, "z": _floats(z), "offset": _floats(offset),
            "matrix": np.asarray(matrix, dtype=np.float64).reshape(2, -1).tolist(),
            "extent": [lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1]],
            "points": _drawn(pts, colours),
            "palette": palette or ["#1f77b4"], "legend": list(legend or []), "title": title, "width": width,
            "height": height, "version": version}
    return _component(key=key, data=json.loads(json.dumps(data, default=float)))


def plane_view(ckpt: Checkpoint, *, origin, du, dv, duv=None, extent: tuple[float, float, float, float],
               key: str, version: int, points: np.ndarray | None = None, colours: np.ndarray | None = None,
               palette: list[str] | None = None, legend: list[str] | None = None,
               labels: list[tuple[float, float, str]] | None = None,
               point: tuple[float, float] | None = None, pad: int = 360,
               on_change: Callable[[list[float]], None] | None = None):
    """A 2-D pad where z = origin + u·du + v·dv + u·v·duv (a latent plane, a PCA plane, or the
    bilinear grid between four corner codes); the point under the pointer is decoded live.
    `points` (N, 2) are drawn on the pad, coloured by `colours` (N,) indices into `palette`, named
    by `legend`."""
    u0, u1, v0, v1 = (float(e) for e in extent)
    drawn = [] if points is None else _drawn(points, colours)
    zero = np.zeros(len(_floats(origin)))
    duv = zero if duv is None else duv
    point = list(point) if point is not None else [(u0 + u1) / 2, (v0 + v1) / 2]
    o, a, b, ab = (np.asarray(_floats(v)) for v in (origin, du, dv, duv))
    at = o + point[0] * a + point[1] * b + point[0] * point[1] * ab
    return _mount(ckpt, key, "plane", on_change, origin=_floats(origin), du=_floats(du), dv=_floats(dv),
                  duv=_floats(duv), extent=[u0, u1, v0, v1], points=drawn, poster=poster(ckpt, at),
                  palette=palette or ["#1f77b4"], legend=list(legend or []),
                  labels=[[float(u), float(v), str(t)] for u, v, t in labels or []],
                  point=point, pad=pad, version=version, caption="decoder(z) under the pointer")


HOVER_RECONSTRUCTIONS = 20_000  # maps up to this many codes also show each point's reconstruction on hover


@st.cache_resource(show_spinner="Preparing the map's images for your browser…", max_entries=16)
def _sprites(_ckpt: Checkpoint, path: str, mtime: float, split: str) -> dict:
    """The split's images (and, for maps up to HOVER_RECONSTRUCTIONS codes, their reconstructions) as
    sprite sheets under ui/static/decoders/ (a session's model's in its session's folder there), written
    once per checkpoint content and split."""
    from ui.loaders import get_data
    from vae_core.images import sprite_sheet
    from vae_core.latent import reconstruct
    from vae_core.streaming import as_tensor

    bundle = get_data(_ckpt)
    rows = bundle.test_idx if split == "test" else bundle.train_idx
    out = {"n": len(rows)}
    for kind in ("images", "reconstructions"):
        if kind == "reconstructions" and len(rows) > HOVER_RECONSTRUCTIONS:
            continue
        name = _export_name(path, f"-{split}.{kind}.png")
        meta = DECODERS / f"{name}.json"
        if not meta.exists() or not (DECODERS / name).exists():
            images = _Rows(bundle.images, rows, as_tensor)
            if kind == "reconstructions":
                images = reconstruct(_ckpt.model, as_tensor(bundle.images[rows]))
            png, cols, side = sprite_sheet(images)
            (DECODERS / name).parent.mkdir(parents=True, exist_ok=True)
            (DECODERS / name).write_bytes(png)
            meta.write_text(json.dumps({"cols": cols, "side": side}))
        out[kind] = {"url": "decoders/" + name, **json.loads(meta.read_text())}
    return out


class _Rows:
    """Some rows of a dataset's images, sliced into tensors batch by batch (streamed data decoded as it goes)."""

    def __init__(self, images, rows, as_tensor):
        self.images, self.rows, self.as_tensor = images, rows, as_tensor
        self.shape = (len(rows), *images.shape[1:])

    def __getitem__(self, part: slice) -> torch.Tensor:
        return self.as_tensor(self.images[self.rows[part]])


def hover_images(ckpt: Checkpoint, split: str, *, chart: str, key: str, labels=None,
                 class_names: list[str] | None = None) -> None:
    """Over the plotly chart keyed `chart` (its traces carrying each point's index as customdata), the image
    of the point under the pointer, and its reconstruction, shown beside the pointer at once: the split's
    images go to the browser once, as a sprite sheet, and each hover cuts its tile out (no round trip).
    `labels` (N,) and `class_names`: each point's caption (its index and label). Not for a public-demo
    session's own model (the sheets would be files outside its scratch folder): plotly's own tooltip then."""
    if public_mode() and in_session(ckpt.path):
        return
    sheets = _sprites(ckpt, *model_key(ckpt), split)
    data = {"mode": "hover", "key": key, "base": static_base(), "chart": chart, "n": sheets["n"],
            "images": sheets["images"], "reconstructions": sheets.get("reconstructions"),
            "shape": list(ckpt.image_shape), "display": 112, "version": version_of(model_key(ckpt), split)}
    if labels is not None:
        data["labels"] = np.asarray(labels, dtype=np.int64).tolist()
        data["classes"] = list(class_names or [])
    _component(key=key, data=json.loads(json.dumps(data, default=float)))

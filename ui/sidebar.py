"""The sidebar every page shares: the model picker (the shared library, then this session's own
files), the run state of the selected file, the device, opening a checkpoint file, and the limits."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import streamlit as st

from ui.display import plain
from ui.live_decoder import session_exports, status_line
from ui.loaders import checkpoint_summary, get_checkpoint
from ui.session import (
    DEFAULT_MODEL,
    SELECTED,
    in_session,
    list_checkpoints,
    run_state,
    session_dir,
    startup_cleanup,
    upload_bytes,
    upload_limit_mb,
)
from vae_core import VAEError, describe_device, load_checkpoint, resolve_device
from vae_core.hosting import SCRATCH_MAX_AGE_S, page_thread_setup, safe_upload_stem, shown_text
from vae_core.library import checkpoint_dir, free_path
from vae_core.limits import describe_limits, public_mode

MODEL_PARAM = "model"  # ?model=NAME in the address: a shared-library model to open
IMPORT_DATASETS = ("mnist5k", "mnist", "fashion-mnist", "kmnist", "digits", "sprites", "cifar10")
TOAST = "upload_toast"  # session key: the upload's (or save's) success is still to be said


def _label(path: str) -> str:
    """A picker entry's text; it never changes while the entry exists (a selectbox matches the
    choice by its text), so a run's state goes in the caption below instead."""
    return f"{Path(path).stem} (this session only)" if in_session(path) else Path(path).stem


def _details(path: Path) -> str:
    s = checkpoint_summary(path)
    if "error" in s:  # named by its file name: the server's folders are nobody's business
        return "unreadable: " + s["error"].replace(str(path), path.name)
    c = s["config"]
    nelbo = s["history"]["last_test_nelbo"]
    if nelbo is None:  # an imported model has no history: its test nELBO was measured on import
        nelbo = s["metrics"].get("test_nelbo")
    score = f" · test nELBO {nelbo:.1f} nats" if nelbo is not None else ""
    source = c.get("extra", {}).get("imported_from")
    imported = f" · imported ({source})" if source else ""
    return f"{c['dataset']} · {c['model']} · z={c['latent_dim']} · β={c['beta']:g}{score}{imported}"


def _state_note(path: Path) -> None:
    state = run_state(path)
    if state == "interrupted":
        s = checkpoint_summary(path)
        st.warning(f"Interrupted: the server stopped during epoch {s['progress'].get('epoch', 0) + 1} of "
                   f"{s['config']['epochs']}. Resume it on the Train page.")
    elif state == "training":
        st.caption("Training now: the file grows after every epoch.")


def limits_panel() -> None:
    """Every limit in force and how to change it, as plain text."""
    with st.expander("Public demo: limits" if public_mode() else "Limits on this server"):
        st.text("\n".join(describe_limits()))
        st.caption("Whoever starts the server sets these with the environment variables named.")


def sidebar(page: str = "") -> None:
    """Model picker, device and checkpoint upload; shared by every page (`page`: its URL path)."""
    page_thread_setup()  # this rerun's thread, before the page computes anything
    startup_cleanup(companions=(session_exports(),))  # a session's exports go with its scratch folder
    files = list_checkpoints()
    with st.sidebar:
        # what changes with the chosen model (a run's state, the Save button, where it decodes) stays
        # inside containers, so the upload box below keeps its place: open across reruns, its message seen
        with st.container():
            if files:
                names = [str(p) for p in files]
                labels = {name: _label(name) for name in names}  # read in this run, where the session is known
                current = st.session_state.get(SELECTED) or _linked(names)
                preferred = str(checkpoint_dir() / f"{DEFAULT_MODEL}.pt")
                first = current if current in names else preferred if preferred in names else names[0]
                choice = st.selectbox(
                    "Model", names, index=names.index(first), format_func=labels.__getitem__,
                    help="The shared library, then what you uploaded or trained in this session (only you see those)",
                )
                st.session_state[SELECTED] = choice
                _link(choice)
                st.caption(plain(_details(Path(choice))))
                _state_note(Path(choice))
                if in_session(choice) and not public_mode():
                    st.button("Save to the shared library", on_click=_save_to_library, args=(choice,),
                              help="Copy it into checkpoints/, where every visitor sees it")
            else:
                st.session_state.pop(SELECTED, None)
                st.caption("No checkpoints yet: train one on the Train page.")
        st.caption(f"Device: {describe_device(resolve_device('auto'))}")
        with st.container():
            if files:
                _decoder_line(Path(choice), encoder=page == "how-it-works")
        _upload_box()
        if public_mode():
            limits_panel()


def _linked(names: list[str]) -> str | None:
    """The shared-library model named by the address's `?model=` (a link someone shared, or this
    page reloaded), if there is one by that name; anything else in it is ignored."""
    wanted = st.query_params.get(MODEL_PARAM)
    return next((n for n in names if not in_session(n) and Path(n).stem == wanted), None)


def _link(choice: str) -> None:
    """Keep the address naming the chosen model, so a reload or a copied link opens it again; not for
    the default (a plain address opens that) nor for this session's own files (no one else sees them)."""
    stem = None if in_session(choice) or Path(choice).stem == DEFAULT_MODEL else Path(choice).stem
    if st.query_params.get(MODEL_PARAM) != stem:
        if stem is None:
            del st.query_params[MODEL_PARAM]
        else:
            st.query_params[MODEL_PARAM] = stem


def _decoder_line(path: Path, encoder: bool) -> None:
    try:
        ckpt = get_checkpoint(path)
    except VAEError:
        return  # the caption above already says the file is unreadable
    status_line(ckpt, encoder=encoder)


def _upload_box() -> None:
    hours = SCRATCH_MAX_AGE_S / 3600
    with st.expander("Open a checkpoint file, or import a VAE"):
        st.file_uploader(
            "Checkpoint (.pt)", type=["pt", "pth", "ckpt"], key="upload", on_change=_on_upload,
            max_upload_size=upload_limit_mb(),
            help=f"Only this browser session sees it (removed after {hours:g} h unused); "
            f"at most {upload_limit_mb()} MB",
        )
        public = public_mode()
        st.selectbox("A VAE trained elsewhere, on", IMPORT_DATASETS, key="import_dataset",
                     help="The data it was trained on (choose it before uploading): its test split scores it, "
                     "and every page shows it")
        st.file_uploader(
            "Its files", type=["onnx", "json"] if public else ["onnx", "json", "pt", "pth", "bin"],
            accept_multiple_files=True, key="import_files", on_change=_on_import, max_upload_size=upload_limit_mb(),
            help="An ONNX pair: encoder.onnx + decoder.onnx + manifest.json" + ("" if public else (
                "; a pythae folder's model.pt + model_config.json; or the pytorch/examples VAE's .pth")) +
            ". Read as data, never run (docs/cli.md, 'A model trained elsewhere').",
        )
        if msg := st.session_state.get("upload_message"):
            if msg[0] == "error":  # until the file is taken away or another one arrives
                st.error(plain(msg[1]))
            elif st.session_state.pop(TOAST, False):
                # once, and gone by itself: a file the uploader refuses later (over the limit, said in its
                # own line) never reaches the server, which could not take a message of this one away
                st.toast(plain(msg[1]), icon=":material/check_circle:", duration="long")


def _on_upload() -> None:
    """Runs before the rerun that shows it, so the picker and its caption already name the upload. A file
    taken away takes its message with it. (A file over the limit never gets here: the uploader refuses it
    in one line of its own.)"""
    upload = st.session_state.get("upload")
    if upload is None:
        st.session_state.pop("upload_message", None)
    else:
        try:
            path = _accept_upload(upload.name, upload.getvalue())
        except VAEError as e:
            st.session_state["upload_message"] = ("error", str(e))
            return
        st.session_state[SELECTED] = str(path)
        shown = shown_text(upload.name, 80)
        st.session_state["upload_message"] = ("ok", f"Opened {shown} as {path.stem} (only this session sees it)")
        st.session_state[TOAST] = True


def _on_import() -> None:
    """A model trained elsewhere, its files uploaded together: staged in this session's folder, imported
    (vae_core.importers) and selected; or one line saying why not. Files still arriving (a set not yet
    complete) say what the set needs."""
    from vae_core.importers import import_model, stage

    uploads = st.session_state.get("import_files") or []
    if not uploads:
        st.session_state.pop("upload_message", None)
        return
    folder = session_dir()
    staged = folder / f".import-{uuid.uuid4().hex[:8]}"
    try:
        files = {u.name: upload_bytes(u.name, u.getvalue()) for u in uploads}
        source = stage(files, staged, public=public_mode())
        stem = safe_upload_stem(Path(source).stem if Path(source).is_file() else next(iter(files)))
        out = folder / f"{stem}.pt"
        import_model(source, st.session_state.get("import_dataset", IMPORT_DATASETS[0]), out,
                     download=not public_mode())
    except VAEError as e:
        st.session_state["upload_message"] = ("error", str(e).replace(str(staged), "the upload"))
        return
    except OSError as e:
        st.session_state["upload_message"] = ("error", f"the upload could not be stored on the server "
                                                       f"({e.strerror or type(e).__name__})")
        return
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    st.session_state[SELECTED] = str(out)
    st.session_state["upload_message"] = ("ok", f"Imported it as {out.stem} (only this session sees it); the "
                                                "Check-up page says whether it is healthy")
    st.session_state[TOAST] = True


def _accept_upload(name: str, data: bytes) -> Path:
    """Check an uploaded file's size and open it safely (weights_only) before it joins this
    session's folder under a safe name; the path it got."""
    folder = session_dir()
    incoming = folder / f".incoming-{uuid.uuid4().hex[:8]}.pt"
    try:
        incoming.write_bytes(upload_bytes(name, data))
        load_checkpoint(incoming)
        return incoming.rename(folder / f"{safe_upload_stem(name)}.pt")
    except VAEError as e:
        incoming.unlink(missing_ok=True)
        raise VAEError(str(e).replace(str(incoming), shown_text(name))) from None
    except OSError as e:  # the scratch folder's disk full, say
        incoming.unlink(missing_ok=True)
        raise VAEError(f"{shown_text(name)} could not be stored on the server "
                       f"({e.strerror or type(e).__name__})") from None


def _save_to_library(path: str) -> None:
    """Copy a session's checkpoint into the shared library without overwriting anything there
    (never in the public demo, which writes nothing outside its scratch folder)."""
    if public_mode():
        st.session_state["upload_message"] = ("error", "the public demo does not save to the shared library")
        return
    source = Path(path)
    library = checkpoint_dir()
    library.mkdir(exist_ok=True)
    target = free_path(library, source.stem)
    tmp = library / f".{target.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    except OSError as e:  # nothing in the library changed
        tmp.unlink(missing_ok=True)
        st.session_state["upload_message"] = ("error", f"{source.stem} could not be saved to the shared library "
                                                       f"({e.strerror or type(e).__name__})")
        return
    st.session_state[SELECTED] = str(target)
    st.session_state["upload_message"] = ("ok", f"Saved {target.stem} to the shared library: every visitor sees it")
    st.session_state[TOAST] = True

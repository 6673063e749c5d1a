"""Every page goes through the app's router (`app.py`), even when Streamlit runs a page file alone, and
its navigation and heading are on screen before anything slow is imported.

On a freshly started server, a first request for a deep link (say `/sliders`) makes Streamlit run
that page file by itself: a `pages/` folder beside the entry file keeps it in its old folder mode
(showing the raw list of files in `pages/` as navigation) until `st.navigation` is first called.
`page_header()`, the first statement of every page, before the page's own imports, runs `app.py`
instead in that case. The router draws the navigation and the page's heading before it imports the
sidebar (and with it torch): a bookmarked link shows the app's navigation and its page's heading at
once, never the raw file list. This module imports nothing but Streamlit.

`one_line_errors()` is the last resort around a page, the sidebar and each fragment: an exception no
page expected is one line on the page, never a traceback (the traceback goes to the server's log).
Streamlit's own display of what escapes it (a widget's callback) follows `client.showErrorDetails`:
"type" in .streamlit/config.toml (the exception's type, no message, no traceback), "none" in the public
demo (`error_details`). For developers and the tests, VAE_DEBUG_ERRORS=1 lets such an exception through
to Streamlit, shown in full (never in the public demo).
"""

from __future__ import annotations

import logging
import os
import runpy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import streamlit as st

APP = Path(__file__).resolve().parents[1] / "app.py"
_run = threading.local()  # set while the router runs a page, in this script thread
ERROR_DETAILS = "client.showErrorDetails"
DEBUG_ENV = "VAE_DEBUG_ERRORS"  # 1: an unexpected exception is Streamlit's, in full (tests set it)
_configured: list[str] = []  # client.showErrorDetails as the server was started with it
_log = logging.getLogger("vae_explorer")


@contextmanager
def routing() -> Iterator[None]:
    """The router runs the chosen page inside this."""
    _run.active = True
    try:
        yield
    finally:
        _run.active = False


@contextmanager
def one_line_errors(what: str = "This page") -> Iterator[None]:
    """Run a page, the sidebar or a fragment inside this: an exception it did not expect becomes one line
    (`what` stopped, and the exception's type: never its message, which may name server paths, nor a
    traceback), and the traceback goes to the server's log. A `VAEError` (bad input a page forgot to
    catch) shows its own one-line message, as plain text. Streamlit's control flow (st.rerun, st.stop,
    st.switch_page) raises BaseExceptions, which pass."""
    try:
        yield
    except Exception as e:
        from ui.display import plain  # not at import: this module imports nothing but Streamlit
        from vae_core.errors import VAEError

        if isinstance(e, VAEError):
            st.error(plain(str(e)))
            return
        if _debug():
            raise
        _log.exception("%s stopped on an unexpected error", what)
        st.error(f"{what} stopped on an unexpected error ({type(e).__name__}); the server's log has the details.")


def error_details(public: bool) -> None:
    """What Streamlit shows of an exception that escapes `one_line_errors` (a widget's callback): in the
    public demo "none" (a generic line), else what the server was started with ("type" in
    .streamlit/config.toml: the exception's type only)."""
    if not _configured:
        _configured.append(st.get_option(ERROR_DETAILS))
    wanted = "none" if public else "full" if _debug() else _configured[0]
    if st.get_option(ERROR_DETAILS) != wanted:
        st.set_option(ERROR_DETAILS, wanted)


def _debug() -> bool:
    """VAE_DEBUG_ERRORS=1, and not the public demo."""
    from vae_core.limits import public_mode  # not at import (see above); loaded by then

    return os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes", "on") and not public_mode()


def ensure_router() -> None:
    """Run the whole app instead of this page file alone, unless the router is already running it."""
    if not getattr(_run, "active", False):
        runpy.run_path(str(APP), run_name="__main__")
        st.stop()


def page_header(caption: str | None = None) -> None:
    """Every page starts here, before its imports: through the router (which has drawn the page's
    title), then the page's one-paragraph explanation."""
    ensure_router()
    if caption:
        st.caption(caption)

"""Every page goes through the app's router (`app.py`), even when Streamlit runs a page file alone, and
its navigation and heading are on screen before anything slow is imported.

On a freshly started server, a first request for a deep link (say `/sliders`) makes Streamlit run
that page file by itself: a `pages/` folder beside the entry file keeps it in its old folder mode
(showing the raw list of files in `pages/` as navigation) until `st.navigation` is first called.
`page_header()`, the first statement of every page, before the page's own imports, runs `app.py`
instead in that case. The router draws the navigation and the page's heading before it imports the
sidebar (and with it torch): a bookmarked link shows the app's navigation and its page's heading at
once, never the raw file list. This module imports nothing but Streamlit.
"""

from __future__ import annotations

import runpy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import streamlit as st

APP = Path(__file__).resolve().parents[1] / "app.py"
_run = threading.local()  # set while the router runs a page, in this script thread


@contextmanager
def routing() -> Iterator[None]:
    """The router runs the chosen page inside this."""
    _run.active = True
    try:
        yield
    finally:
        _run.active = False


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

"""Every page goes through the app's router (`app.py`), even when Streamlit runs a page file alone.

On a freshly started server, a first request for a deep link (say `/sliders`) makes Streamlit run
that page file by itself: a `pages/` folder beside the entry file keeps it in its old folder mode
until `st.navigation` is first called. `ensure_router()`, called by `ui.display.page_header` at the
top of every page, runs `app.py` instead in that case, so the sidebar and navigation are always there.
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

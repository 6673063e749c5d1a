"""The router every entry goes through: page config, `st.navigation` over the page files, and the
shared sidebar.

`app.py` calls `run_app()`. Each page file starts with `common.page_header()`, which calls
`ensure_router()`: Streamlit runs a page file on its own when a fresh server's first request is a
deep link (a `pages/` folder beside the entry file puts it in its old folder mode until
`st.navigation` is first called), and this sends that run through the router instead, so the
sidebar and navigation are always there.
"""

import threading

import streamlit as st

_run = threading.local()  # set while the router runs, in this script thread

PAGES = [
    ("map", "Latent map", ":material/scatter_plot:"),
    ("sliders", "Sliders", ":material/tune:"),
    ("interpolate", "Interpolate", ":material/linear_scale:"),
    ("generate", "Generate", ":material/auto_awesome:"),
    ("anomalies", "Anomalies", ":material/troubleshoot:"),
    ("beta_study", "β study", ":material/compare:"),
    ("representations", "Representations", ":material/school:"),
    ("train", "Train", ":material/model_training:"),
]


def run_app() -> None:
    from pages.common import sidebar

    st.set_page_config(page_title="VAE Latent Explorer", page_icon="🧭", layout="wide")
    pages = [st.Page(f"pages/{name}.py", title=title, icon=icon, default=name == "map") for name, title, icon in PAGES]
    page = st.navigation({"VAE Latent Explorer": pages})
    sidebar()
    _run.active = True
    try:
        page.run()
    finally:
        _run.active = False


def ensure_router() -> None:
    """Run the whole app instead of this page file alone, unless the router is already running it."""
    if not getattr(_run, "active", False):
        run_app()
        st.stop()

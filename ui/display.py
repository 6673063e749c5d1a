"""How the app shows things: a page's header (through the router), plain text, image grids."""

from __future__ import annotations

import re
import string

import streamlit as st
import torch

from vae_core.images import to_display

WORD_JOINER = "\u2060"  # invisible, and breaks what Streamlit's Markdown would turn into a link
_LINK_START = re.compile(r"(?i)(https?|www)(?=[:.])|(?<=[-.\w+])(?=@)")


def plain(text: str) -> str:
    """`text` on one line with every ASCII punctuation character escaped, so st.caption, st.success
    or st.markdown show a user's text as typed: no Markdown, links, images, HTML or math. GitHub's
    Markdown also links a bare address (https://…, www.…, name@host) after escapes are read, so a word
    joiner goes between `http`/`https`/`www` and what follows it, and before an e-mail's `@`."""
    text = _LINK_START.sub(lambda m: m.group(0) + WORD_JOINER, " ".join(str(text).split()))
    return "".join("\\" + c if c in string.punctuation else c for c in text)


def show_grid(
    images: torch.Tensor, *, per_row: int = 8, captions: list[str] | None = None, width: int | None = None
) -> None:
    """Images (N, C, H, W) in [0, 1], upscaled (nearest neighbour) so small ones are visible."""
    arrays = list(to_display(images))
    width = width or max(72, min(160, 900 // per_row))
    for start in range(0, len(arrays), per_row):
        cols = st.columns(per_row)
        for i, col in enumerate(cols):
            if start + i < len(arrays):
                cap = captions[start + i] if captions else None
                col.image(arrays[start + i], caption=cap, width=width)


def show_pairs(originals: torch.Tensor, reconstructions: torch.Tensor, *, per_row: int,
               captions: list[str] | None = None, width: int | None = None) -> None:
    """Each row of originals directly above the row of their reconstructions, so every image sits over
    its own reconstruction however many rows there are."""
    for start in range(0, len(originals), per_row):
        rows = slice(start, start + per_row)
        show_grid(originals[rows], per_row=per_row, captions=captions[rows] if captions else None, width=width)
        show_grid(reconstructions[rows], per_row=per_row, width=width)


# On a phone Streamlit stacks every row of columns, so a grid of 8 images became 8 images one under
# another, and show_pairs' originals no longer sat over their reconstructions. A row of columns that holds
# images and no control (show_grid's rows) stays a row there, its images shrinking to fit.
IMAGE_ROW = ('[data-testid="stHorizontalBlock"]:has(> [data-testid="stColumn"] [data-testid="stImage"])'
             ':not(:has(input, button:not([kind="elementToolbar"]), textarea, select, canvas, '
             '[data-testid="stPlotlyChart"]))')
_GRID_RULES = (
    "{row} {{ flex-wrap: nowrap !important; gap: 0.25rem !important; }}",
    "{row} > [data-testid='stColumn'] {{ min-width: 0 !important; width: auto !important; flex: 1 1 0 !important; }}",
    "{row} [data-testid='stImage'], {row} img {{ max-width: 100% !important; height: auto !important; }}",
    "{row} [data-testid='stImageCaption'] {{ font-size: 0.65rem; overflow-wrap: anywhere; }}",
)
# A collapsed sidebar is moved off the screen, but its links stayed in the Tab order: 13 stops before the
# page. Hidden (visibility), it keeps its place and leaves the Tab order until it is opened.
_SIDEBAR_SHUT = "[data-testid='stSidebar'][data-collapsed='true']"
_COLLAPSED_SIDEBAR = f"{_SIDEBAR_SHUT}, {_SIDEBAR_SHUT} * {{ visibility: hidden !important; }}"
# On a phone a chart's subplot titles (centred over each panel) ran into each other: smaller there, each
# still centred on its panel (plotly placed them by their middle)
_CHART_TITLES = ".js-plotly-plot .annotation-text { font-size: 10px !important; }"
PAGE_STYLE = (
    "<style>" + _COLLAPSED_SIDEBAR + "@media (max-width: 640px) {"
    + "".join(rule.format(row=IMAGE_ROW) for rule in _GRID_RULES) + _CHART_TITLES
    + "}</style>"
)


def page_style() -> None:
    """The app's own rules for every page (the router draws them): image grids stay grids on a phone, and
    a collapsed sidebar's links are out of the Tab order."""
    st.html(PAGE_STYLE)


def presenter_chrome() -> None:
    """For a projector: Streamlit's header bar (its toolbar and menu) hidden, so the page starts at the top
    of the screen. (The "Deploy" button is off in every mode: `client.toolbarMode` in .streamlit/config.toml.)"""
    st.html("<style>header[data-testid='stHeader'] { display: none; } "
            ".block-container, [data-testid='stMainBlockContainer'] { padding-top: 1rem; }</style>")

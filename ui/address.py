"""Views in the address: what a person would want to share of a page (the map's split, method and
colour, the Generate page's seed and temperature, ...) kept in `st.query_params`, so reloading the
page or opening a copied link shows the same view.

A page calls `take(name, key, parse)` before drawing the widget keyed `key`: a value in the address
that this session has not written itself (a link just opened) sets the widget; one that `parse`
rejects is ignored with one line under the page's heading, never an error. Such a widget gets its first
value from `initial(key, value)`, not from an argument of its own (Streamlit warns, in the server's log,
about a widget given a value while the session state sets it). After the widget, `keep(name,
value, default)` writes the widget's value back (and drops it at its default, so plain links stay
short). The sidebar's `?model=` (ui/sidebar.py) and How it works's own values follow the same rule.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

from ui.display import plain

WRITTEN = "address_written"  # session key: {name: the text this session last wrote to the address}
IGNORED = "address_ignored"  # session key: {name: the line said about its bad value}, until it is set
SHOWN_MAX = 40  # characters of a bad value repeated in its line


def _written() -> dict[str, str]:
    return st.session_state.setdefault(WRITTEN, {})


def take(name: str, key: str | None, parse: Callable[[str], Any]) -> Any:
    """The value of `?name=` when the address holds one this session did not write (a link just opened:
    then the widget keyed `key`, if any, takes it before it is drawn), else None. A value `parse` rejects
    (ValueError, with the reason) is ignored with one line."""
    raw = st.query_params.get(name)
    written = _written()
    ignored = st.session_state.setdefault(IGNORED, {})
    if raw is None or written.get(name) == raw:
        if name in ignored:  # said again on the page's reruns, until the value is set
            st.caption(ignored[name])
        return None
    written[name] = raw  # seen: not applied again on this session's reruns
    try:
        value = parse(raw)
    except (ValueError, TypeError, IndexError) as e:
        ignored[name] = ignored_line(name, raw, str(e))
        st.caption(ignored[name])
        return None
    ignored.pop(name, None)
    if key is not None:
        st.session_state[key] = value
    return value


def ignored_line(name: str, raw: str, reason: str) -> str:
    """The one line that says a value in the address was ignored: the value cut to SHOWN_MAX characters,
    as plain text (no Markdown)."""
    shown = raw if len(raw) <= SHOWN_MAX else raw[:SHOWN_MAX] + "…"
    return plain(f"Ignored ?{name}={shown} in the address: {reason}.")


def initial(key: str, value: Any) -> None:
    """The first value of the widget keyed `key`, which `take` may set from the address: given through the
    session state (unless it holds one), so the widget is drawn without a value argument of its own."""
    st.session_state.setdefault(key, value)


def keep(name: str, value: Any, default: Any = None, text: Callable[[Any], str] | None = None) -> None:
    """Write `value` to the address as `?name=` (as `text(value)`, or str), or drop it at `default`."""
    params = st.query_params
    shown = None if value is None or value == default else (text or _text)(value)
    if shown is None:
        if name in params:
            del params[name]
        _written().pop(name, None)
        return
    if params.get(name) != shown:
        params[name] = shown
    _written()[name] = shown
    st.session_state.get(IGNORED, {}).pop(name, None)


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ",".join(_text(v) for v in value)
    return str(value)


# --- parsers: text -> value, or ValueError saying what was expected


def choice(options: Sequence[str]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in options:
            raise ValueError(f"expected one of {', '.join(map(str, options))}")
        return raw
    return parse


def whole(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise ValueError(f"expected a whole number from {low} to {high}")
        return value
    return parse


def real(low: float, high: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:  # NaN fails both comparisons
            raise ValueError(f"expected a number from {low:g} to {high:g}")
        return value
    return parse


def numbers(count: int, low: float, high: float, kind: type = float) -> Callable[[str], list]:
    """`count` comma-separated numbers (whole ones with kind=int), each within [low, high]."""
    one = whole(low, high) if kind is int else real(low, high)

    def parse(raw: str) -> list:
        parts = raw.split(",")
        if len(parts) != count:
            raise ValueError(f"expected {count} comma-separated numbers from {low:g} to {high:g}")
        try:
            return [one(p.strip()) for p in parts]
        except ValueError:
            raise ValueError(f"expected {count} comma-separated numbers from {low:g} to {high:g}") from None
    return parse


def open_page(page: str, **params: Any) -> None:
    """Go to `page` with `params` in its address, as a link would: the page takes them even where this
    session wrote the same values before (say, the map's point from another page's image)."""
    written = _written()
    for name in params:
        written.pop(name, None)
    st.switch_page(page, query_params={name: _text(value) for name, value in params.items()})

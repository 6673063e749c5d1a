"""Widgets for a run's settings, built from `VAEConfig`'s field metadata (`vae_core.config.Option`):
one widget per field, keyed `cfg_<field>`, labelled and explained by its Option, bounded by its range
and by the server's limits (`vae_core.limits`). Fields marked advanced go under an "Advanced" expander.
A new config field needs nothing here."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import streamlit as st

from vae_core.config import ConfigField, config_fields, parse_int_list
from vae_core.errors import VAEError
from vae_core.limits import limit

Custom = Callable[[Any, ConfigField], Any]  # (column, field) -> value: a page draws this field itself
MAX_COLUMNS = 5


def widget_key(name: str) -> str:
    return f"cfg_{name}"


def config_inputs(*, defaults: dict[str, Any], custom: dict[str, Custom]) -> dict[str, Any]:
    """Draw every config field, the common ones by group and the rest under "Advanced"; return
    field name -> value (a VAEError for text that is not what the field takes)."""
    values: dict[str, Any] = {}
    fields = config_fields()
    groups = list(dict.fromkeys(f.option.group for f in fields))
    for group in groups:
        st.markdown(f"**{group.capitalize()}**")
        _grid([f for f in fields if f.option.group == group and not f.option.advanced], values, defaults, custom)
    with st.expander("Advanced"):
        for group in groups:
            st.caption(group.capitalize())
            _grid([f for f in fields if f.option.group == group and f.option.advanced], values, defaults, custom)
    return values


def _grid(fields: list[ConfigField], values: dict, defaults: dict, custom: dict[str, Custom]) -> None:
    """Fields in rows of at most MAX_COLUMNS, the rows as even as they can be."""
    if not fields:
        return
    per_row = math.ceil(len(fields) / math.ceil(len(fields) / MAX_COLUMNS))
    for start in range(0, len(fields), per_row):
        row = st.columns(per_row, vertical_alignment="bottom")  # checkboxes level with the inputs
        for column, f in zip(row, fields[start:start + per_row], strict=False):
            draw = custom.get(f.name)
            values[f.name] = draw(column, f) if draw else field_input(column, f, defaults.get(f.name, f.default))


def field_input(where, f: ConfigField, default: Any) -> Any:
    """One widget for `f` in the container `where`, starting from `default`, which its help names (a page's
    defaults may differ from VAEConfig's: the Option's help says why); returns the field's value."""
    o, key, text = f.option, widget_key(f.name), f.describe(default)
    if f.type is bool:
        return where.checkbox(o.label, value=bool(default), key=key, help=text)
    if o.choices:
        options = [None, *o.choices] if f.optional else list(o.choices)
        return where.selectbox(o.label, options, index=options.index(default), key=key, help=text,
                               format_func=lambda v: "default" if v is None else str(v))
    if f.type is tuple:
        shown = "" if default is None else ",".join(map(str, default))
        try:
            numbers = parse_int_list(where.text_input(o.label, shown, key=key, help=text))
        except VAEError as e:  # returned, not raised: the rest of the form is still drawn
            return VAEError(f"{o.label}: {e}")
        return None if f.optional and not numbers else numbers
    if f.type in (int, float):
        return where.number_input(o.label, key=key, help=text, placeholder="default" if f.optional else None,
                                  **_number(f, default))
    value = where.text_input(o.label, default or "", key=key, help=text).strip()
    return value or None if f.optional else value


def _number(f: ConfigField, default: float | None) -> dict:
    """number_input's bounds, step and start value: the field's range, capped by the server's limit."""
    o, kind = f.option, f.type
    low = None if o.low is None else o.low + 1 if kind is int and o.open_low else o.low
    cap = limit(o.limit) if o.limit else None
    high = cap if o.high is None else o.high if cap is None else min(o.high, cap)
    if default is not None:
        default = min(max(default, low if low is not None else default), high if high is not None else default)
    if kind is int:
        step = 1
    else:  # a tenth of the default's order of magnitude: 0.0001 for lr 0.001, 0.1 for β 1
        step = 10.0 ** (math.floor(math.log10(abs(default))) - 1) if default else 0.05
    bounds = {name: None if v is None else kind(v) for name, v in
              (("min_value", low), ("max_value", high), ("value", default))}
    return {**bounds, "step": kind(step), **({"format": "%g"} if kind is float else {})}

"""The latent map's scatter: every code as one WebGL point (plotly `Scattergl`), one trace per
category, with the point's index as customdata so a box or lasso selection names the images.

NumPy arrays reach the browser as base64 typed arrays (plotly writes them so): coordinates as
float32 and indices as int32, about 12 bytes (16 in base64) per point.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from vae_core.images import PALETTE as RGB
from vae_core.images import label_hexes

PALETTE = ["#{:02x}{:02x}{:02x}".format(*rgb) for rgb in RGB]  # the engine's label colours, as plotly takes them


def colours_for(names) -> list[str]:
    """One colour for each of `names` (labels 0 … n-1), no two alike; at least one."""
    return label_hexes(len(names or ()))


def point_size(n: int) -> int:
    """Marker size in pixels: smaller as the map fills up."""
    return 5 if n <= 5000 else 3 if n <= 30_000 else 2


def scatter_figure(xy: np.ndarray, values: np.ndarray, names: list[str] | None, colour: str,
                   revision: str = "map") -> go.Figure:
    """xy (N, 2) map coordinates; values (N,): category indices into `names`, or numbers (names
    None) shown on a colour scale titled `colour`. `revision` names the map's coordinates: while it
    stays the same, plotly keeps the user's zoom, pan and legend choices across reruns (a new colour,
    a selection); a new projection passes a new one."""
    xy = np.asarray(xy, dtype=np.float32)
    fig = go.Figure()
    size = point_size(len(xy))
    if names is not None:
        colours = colours_for(names)
        for k, name in enumerate(names):
            idx = np.flatnonzero(values == k).astype(np.int32)
            if len(idx):
                fig.add_trace(go.Scattergl(
                    x=xy[idx, 0], y=xy[idx, 1], mode="markers", name=name, customdata=idx,
                    marker=dict(size=size, color=colours[k]),
                    hovertemplate=f"{name}<br>#%{{customdata}}<extra></extra>",
                ))
    else:
        fig.add_trace(go.Scattergl(
            x=xy[:, 0], y=xy[:, 1], mode="markers", customdata=np.arange(len(xy), dtype=np.int32),
            marker=dict(size=size, color=np.asarray(values, dtype=np.float32), colorscale="Viridis",
                        showscale=True, colorbar=dict(title=colour[:14])),
            hovertemplate="#%{customdata}: %{marker.color:.3g}<extra></extra>",
        ))
    fig.update_layout(height=620, margin=dict(l=10, r=10, t=30, b=10), dragmode="lasso", uirevision=revision,
                      legend=dict(itemsizing="constant", title=colour))
    return fig

"""Plotly figures of evaluation results: the confusion heatmap and the difference of two.

Kept out of the page so the numbers drawn can be tested against the confusion matrix.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from fer_core.evaluate import normalize_rows
from fer_core.labels import EMOTIONS


def confusion_figure(cm: np.ndarray, *, normalized: bool = False, title: str = "") -> go.Figure:
    """Heatmap, rows = true class, columns = predicted; colour and cell text show counts or
    row-normalised percentages, and the hover shows both. Values go in as plain lists so the
    figure's JSON holds the numbers themselves (not base64 arrays)."""
    cm = np.asarray(cm, dtype=np.int64)
    pct = normalize_rows(cm) * 100
    z = pct if normalized else cm
    text = [[f"{v:.1f}%" if normalized else f"{int(v)}" for v in row] for row in z]
    fig = go.Figure(go.Heatmap(
        z=z.tolist(), x=list(EMOTIONS), y=list(EMOTIONS), text=text, texttemplate="%{text}",
        customdata=np.stack([cm, pct], axis=-1).tolist(),
        hovertemplate="true %{y}<br>predicted %{x}<br>%{customdata[0]} faces"
                      "<br>%{customdata[1]:.1f}% of the true class<extra></extra>",
        colorscale="Blues", colorbar={"title": "% of row" if normalized else "faces"},
    ))
    _axes(fig, title)
    return fig


def confusion_diff_figure(diff: np.ndarray, *, title: str = "") -> go.Figure:
    """Difference of two row-normalised confusions (B - A), in percentage points, centred on 0."""
    z = np.asarray(diff, dtype=np.float64) * 100
    bound = max(float(np.abs(z).max()), 1e-9)
    fig = go.Figure(go.Heatmap(
        z=z.tolist(), x=list(EMOTIONS), y=list(EMOTIONS), zmin=-bound, zmax=bound, zmid=0,
        text=[[f"{v:+.1f}" for v in row] for row in z], texttemplate="%{text}",
        hovertemplate="true %{y}<br>predicted %{x}<br>%{z:+.1f} points<extra></extra>",
        colorscale="RdBu", colorbar={"title": "points"},
    ))
    _axes(fig, title)
    return fig


def _axes(fig: go.Figure, title: str) -> None:
    fig.update_layout(title=title or None, margin={"l": 10, "r": 10, "t": 40 if title else 10,
                                                   "b": 10}, height=460)
    fig.update_xaxes(title="predicted", side="bottom")
    fig.update_yaxes(title="true", autorange="reversed")

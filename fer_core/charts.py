"""Plotly figures: pure functions from results to `go.Figure`, no Streamlit (pages draw them
with `st.plotly_chart`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd
import plotly.graph_objects as go

# ---------------------------------------------------------------- Training
# Curves of a run: loss and accuracy per epoch (history.csv), and the running training
# numbers inside the epoch in progress (batch events).


def training_curve_frame(history: list[Mapping[str, float]]) -> pd.DataFrame:
    """Long table (epoch, metric, split, value) of loss and accuracy, training and validation."""
    rows = []
    for row in history:
        for metric in ("loss", "accuracy"):
            for split, column in (("train", metric), ("val", f"val_{metric}")):
                value = row.get(column)
                if value is not None and math.isfinite(value):
                    rows.append({"epoch": int(row["epoch"]), "metric": metric, "split": split,
                                 "value": float(value)})
    return pd.DataFrame(rows, columns=["epoch", "metric", "split", "value"])


def batch_curve_points(events: list[dict[str, Any]], after_epoch: int) -> pd.DataFrame:
    """Running training loss/accuracy inside unfinished epochs (x = fractional epoch), so the
    curves move before the first epoch ends; epochs already in the history are left out."""
    rows = []
    for e in events:
        if e.get("kind") != "batch" or int(e.get("epoch", 0)) <= after_epoch:
            continue
        x = int(e["epoch"]) - 1 + int(e["batch"]) / max(1, int(e.get("steps") or 1))
        rows.append({"x": x, "loss": e.get("loss"), "accuracy": e.get("accuracy")})
    return pd.DataFrame(rows, columns=["x", "loss", "accuracy"])


_TRAIN_COLOURS = {"train": "#1f77b4", "val": "#d62728"}


def training_curves_figure(history: list[Mapping[str, float]],
                           batches: pd.DataFrame | None = None, *,
                           epochs: int | None = None) -> go.Figure:
    """Loss (left) and accuracy (right) per epoch, train and val; dotted: the epoch in progress.

    Two x axes side by side set up by hand (not `make_subplots`, ten times slower), since the
    live panel redraws this while a job runs."""
    frame = training_curve_frame(history)
    fig = go.Figure()
    for col, metric in enumerate(("loss", "accuracy"), start=1):
        axes = {"xaxis": "x" if col == 1 else "x2", "yaxis": "y" if col == 1 else "y2"}
        scale = 100.0 if metric == "accuracy" else 1.0
        for split in ("train", "val"):
            part = frame[(frame.metric == metric) & (frame.split == split)]
            fig.add_trace(go.Scatter(
                x=part.epoch.tolist(), y=(part.value * scale).round(4).tolist(),
                mode="lines+markers", name=split, legendgroup=split, showlegend=col == 1,
                line={"color": _TRAIN_COLOURS[split]}, **axes,
                hovertemplate=f"epoch %{{x}}<br>{split} {metric} %{{y}}<extra></extra>"))
        if batches is not None and len(batches):
            values = batches[metric].astype(float) * scale
            fig.add_trace(go.Scatter(
                x=batches.x.round(3).tolist(), y=values.round(4).tolist(), mode="lines",
                name="train (this epoch)", legendgroup="batch", showlegend=col == 1,
                line={"color": _TRAIN_COLOURS["train"], "dash": "dot"}, **axes,
                hovertemplate=f"epoch %{{x:.2f}}<br>running train {metric} %{{y}}<extra></extra>"))
    x_range = [0, max(epochs, 1) + 0.2] if epochs else None
    x_common = {"title": {"text": "epoch"}, "rangemode": "tozero", "range": x_range}
    fig.update_layout(
        xaxis={**x_common, "domain": [0.0, 0.45]},
        xaxis2={**x_common, "domain": [0.55, 1.0], "anchor": "y2"},
        yaxis={"title": {"text": "loss"}},
        yaxis2={"title": {"text": "accuracy %"}, "anchor": "x2"},
        height=340, margin={"l": 10, "r": 10, "t": 30, "b": 10},
        legend={"orientation": "h", "y": -0.25},
    )
    return fig

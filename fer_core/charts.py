"""Every plotly figure the pages draw, as pure functions of the numbers (no Streamlit), so
what a chart shows can be tested against the data it came from.

Values go in as plain lists, so a figure's JSON holds the numbers themselves (not base64
arrays) and a page test can read them back from the chart it drew. Importing this module
does not load TensorFlow (the Dataset page draws charts without it).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from fer_core.calibration import Reliability
from fer_core.evaluate import normalize_rows
from fer_core.labels import EMOTIONS

if TYPE_CHECKING:  # fer_core.infer loads TensorFlow
    from fer_core.infer import FacePrediction

# Dataset

BAR_TEXT_MIN_PX = 10  # bar text that would be smaller is hidden (the hover keeps it)


def class_distribution_figure(counts: Mapping[str, Mapping[str, int]]) -> go.Figure:
    """Grouped bars of faces per class, one group per split (`FerDataset.counts()`); the hover
    gives each count and its share of the split.

    The share is also written inside a bar, turned upright when that fits better, and only
    where it fits at `BAR_TEXT_MIN_PX`: with 3 splits x 7 classes the bars of small classes
    are too narrow and short for any text, and labels placed above them ran together."""
    fig = go.Figure()
    for split, per_class in counts.items():
        total = sum(per_class.values())
        y = [int(per_class.get(e, 0)) for e in EMOTIONS]
        share = [100 * n / total if total else 0.0 for n in y]
        fig.add_bar(name=split, x=list(EMOTIONS), y=y, customdata=share,
                    text=[f"{p:.1f}%" for p in share], textposition="inside",
                    insidetextanchor="end",
                    hovertemplate="%{x}: %{y:,} faces (%{customdata:.1f}% of "
                                  + split + ")<extra></extra>")
    fig.update_layout(barmode="group", height=380, margin={"t": 10, "b": 10},
                      yaxis_title="faces", legend_title="split",
                      uniformtext={"minsize": BAR_TEXT_MIN_PX, "mode": "hide"})
    return fig


def intensity_histogram_figure(hists: np.ndarray) -> go.Figure:
    """One line per class: the share of its pixels at each grey level (rows of
    `quality.class_histograms`, counts per level); a class with no pixels stays at 0."""
    fig = go.Figure()
    for emotion, hist in zip(EMOTIONS, np.asarray(hists, dtype=np.float64)):
        total = hist.sum()
        fig.add_scatter(x=list(range(len(hist))), y=(hist / total if total else hist).tolist(),
                        name=emotion, mode="lines")
    fig.update_layout(height=340, margin={"t": 10, "b": 10}, xaxis_title="grey level",
                      yaxis_title="share of pixels", legend_title="class")
    return fig


# Evaluation


def confusion_matrix_figure(cm: np.ndarray, *, normalized: bool = False,
                            title: str = "") -> go.Figure:
    """Heatmap, rows = true class, columns = predicted; colour and cell text show counts or
    row-normalised percentages, and the hover shows both."""
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
    _confusion_axes(fig, title)
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
    _confusion_axes(fig, title)
    return fig


def _confusion_axes(fig: go.Figure, title: str) -> None:
    fig.update_layout(title=title or None, margin={"l": 10, "r": 10, "t": 40 if title else 10,
                                                   "b": 10}, height=460)
    fig.update_xaxes(title="predicted", side="bottom")
    fig.update_yaxes(title="true", autorange="reversed")


def reliability_figure(curves: Mapping[str, Reliability]) -> go.Figure:
    """Reliability diagram: each curve's accuracy against mean confidence per bin (empty bins
    left out; the marker size grows with the bin's faces), over the diagonal of perfect
    calibration. `curves`: legend name -> `calibration.reliability(...)`."""
    fig = go.Figure()
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfectly calibrated",
                    line={"dash": "dot", "color": "grey"}, hoverinfo="skip")
    for name, rel in curves.items():
        keep = rel.counts > 0
        counts = rel.counts[keep]
        fig.add_scatter(
            x=rel.confidence[keep].tolist(), y=rel.accuracy[keep].tolist(),
            mode="lines+markers", name=f"{name} (ECE {rel.ece:.3f})",
            marker={"size": (6 + 14 * np.sqrt(counts / max(1, counts.max()))).tolist()},
            customdata=counts.tolist(),
            hovertemplate="confidence %{x:.2f}<br>accuracy %{y:.2f}<br>%{customdata} faces"
                          "<extra></extra>",
        )
    fig.update_layout(height=420, margin={"t": 10, "b": 10}, legend={"orientation": "h"},
                      xaxis_title="mean confidence of the bin's faces",
                      yaxis_title="share of them right")
    fig.update_xaxes(range=[0, 1])
    fig.update_yaxes(range=[0, 1])
    return fig


# Live


def face_probabilities_figure(faces: Sequence[FacePrediction], *,
                              height: int = 260) -> go.Figure:
    """Horizontal bars of the 7 probabilities, one colour per face (the first four)."""
    fig = go.Figure()
    for n, face in enumerate(faces[:4], start=1):
        name = f"face {face.track_id if face.track_id is not None else n}"
        fig.add_bar(y=list(EMOTIONS), x=[float(p) for p in face.probs], orientation="h",
                    name=name)
    fig.update_layout(
        barmode="group", height=height, margin={"l": 0, "r": 0, "t": 10, "b": 0},
        xaxis={"range": [0, 1], "tickformat": ".0%"}, yaxis={"autorange": "reversed"},
        legend={"orientation": "h", "y": -0.15},
    )
    return fig


def live_timeline_figure(timeline: Sequence[tuple[float, Sequence[float]]], *,
                         window_s: float = 30.0, now: float | None = None) -> go.Figure:
    """The main face's probabilities over the last `window_s` seconds, one line per emotion;
    `timeline` is `StreamMonitor.timeline()`: (time.time() stamp, 7 probabilities)."""
    now = time.time() if now is None else now
    xs = [t - now for t, _ in timeline]
    fig = go.Figure()
    for i, emotion in enumerate(EMOTIONS):
        fig.add_scatter(x=xs, y=[float(p[i]) for _, p in timeline], mode="lines", name=emotion)
    fig.update_layout(
        height=240, margin={"l": 0, "r": 0, "t": 10, "b": 0},
        xaxis={"range": [-window_s, 0], "title": "seconds ago"},
        yaxis={"range": [0, 1], "tickformat": ".0%"}, legend={"orientation": "h", "y": -0.3},
    )
    return fig


def face_timeline_figure(times: Sequence[float], probs: np.ndarray, *,
                         title: str = "") -> go.Figure:
    """One face's seven probabilities over a recorded video's time (Analyse page): `times` in
    seconds, `probs` (N, 7) in time order, already smoothed by the caller."""
    fig = go.Figure()
    for i, emotion in enumerate(EMOTIONS):
        fig.add_scatter(x=list(times), y=np.asarray(probs)[:, i], mode="lines", name=emotion)
    fig.update_layout(
        title=title or None, height=260, margin={"l": 0, "r": 0, "t": 30 if title else 10, "b": 0},
        xaxis={"title": "seconds into the video"},
        yaxis={"range": [0, 1], "tickformat": ".0%"}, legend={"orientation": "h", "y": -0.3},
    )
    return fig


# ---------------------------------------------------------------- Training
# Curves of a run: loss and accuracy per epoch (history.csv), and the running training
# numbers inside the epoch in progress (batch events).


def training_curve_frame(history: list[Mapping[str, float]]) -> pd.DataFrame:
    """Long table (epoch, metric, split, value) of loss and accuracy, training and validation.
    The loss is the data loss (cross-entropy without the L2 penalty) where the run recorded
    it, Keras's total loss for older runs."""
    rows = []
    for row in history:
        for metric in ("loss", "accuracy"):
            source = "data_loss" if metric == "loss" and row.get("data_loss") is not None \
                else metric
            for split, column in (("train", source), ("val", f"val_{source}")):
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
        loss = e.get("data_loss") if e.get("data_loss") is not None else e.get("loss")
        rows.append({"x": x, "loss": loss, "accuracy": e.get("accuracy")})
    return pd.DataFrame(rows, columns=["x", "loss", "accuracy"])


_TRAIN_COLOURS = {"train": "#1f77b4", "val": "#d62728"}


def training_curves_figure(history: list[Mapping[str, float]],
                           batches: pd.DataFrame | None = None, *,
                           epochs: int | None = None) -> go.Figure:
    """Loss (left) and accuracy (right) per epoch, train and val; dotted: the epoch in progress.

    Two x axes side by side set up by hand (not `make_subplots`, much slower to build), since
    the live panel redraws this while a job runs."""
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
    with_penalty = not any(r.get("data_loss") is not None for r in history)
    loss_title = "loss (with L2 penalty)" if history and with_penalty else "loss (cross-entropy)"
    x_common = {"title": {"text": "epoch"}, "rangemode": "tozero", "range": x_range}
    fig.update_layout(
        xaxis={**x_common, "domain": [0.0, 0.45]},
        xaxis2={**x_common, "domain": [0.55, 1.0], "anchor": "y2"},
        yaxis={"title": {"text": loss_title}},
        yaxis2={"title": {"text": "accuracy %"}, "anchor": "x2"},
        height=340, margin={"l": 10, "r": 10, "t": 30, "b": 10},
        legend={"orientation": "h", "y": -0.25},
    )
    return fig

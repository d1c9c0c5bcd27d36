"""fer_core.charts: each figure draws the numbers it is given, with named axes, and an empty
input draws an empty figure instead of failing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest

from fer_core import charts, runs
from fer_core.labels import EMOTIONS


def _face(probs, track_id=None):
    """A FacePrediction stand-in: the charts read only `probs` and `track_id`."""
    from types import SimpleNamespace

    return SimpleNamespace(probs=tuple(probs), track_id=track_id)


def _json_data(fig: go.Figure) -> list[dict]:
    """The traces as the browser gets them: plain numbers, never base64 arrays."""
    return json.loads(fig.to_json())["data"]


def test_class_distribution_bars_per_split() -> None:
    counts = {"Training": {e: i * 10 for i, e in enumerate(EMOTIONS)},
              "PublicTest": {e: 1 for e in EMOTIONS}}
    fig = charts.class_distribution_figure(counts)
    assert isinstance(fig, go.Figure) and fig.layout.barmode == "group"
    assert [t.name for t in fig.data] == ["Training", "PublicTest"]
    assert {t["name"]: dict(zip(t["x"], t["y"])) for t in _json_data(fig)} == counts
    assert fig.layout.yaxis.title.text == "faces"
    training = fig.data[0]
    assert training.customdata[-1] == pytest.approx(100 * 60 / 210)
    assert training.text[1] == f"{100 * 10 / 210:.1f}%"


def test_class_distribution_empty() -> None:
    assert charts.class_distribution_figure({}).data == ()
    empty = charts.class_distribution_figure({"Training": {e: 0 for e in EMOTIONS}}).data[0]
    assert list(empty.y) == [0] * 7 and list(empty.customdata) == [0.0] * 7


def test_intensity_histogram_shares() -> None:
    hists = np.zeros((7, 256), dtype=np.int64)
    hists[0, 10] = 3
    hists[0, 20] = 1
    fig = charts.intensity_histogram_figure(hists)
    assert [t.name for t in fig.data] == list(EMOTIONS)
    assert fig.layout.xaxis.title.text == "grey level"
    assert fig.layout.yaxis.title.text == "share of pixels"
    angry = _json_data(fig)[0]
    assert angry["x"] == list(range(256)) and sum(angry["y"]) == pytest.approx(1.0)
    assert angry["y"][10] == pytest.approx(0.75)
    assert _json_data(fig)[1]["y"] == [0.0] * 256  # a class with no pixels stays at zero
    assert charts.intensity_histogram_figure(np.zeros((0, 256))).data == ()


def test_confusion_matrix_counts_and_percentages() -> None:
    cm = np.arange(49).reshape(7, 7)
    cm[3] = 0  # a class absent from the split
    counts = charts.confusion_matrix_figure(cm)
    (heat,) = counts.data
    assert isinstance(heat, go.Heatmap) and list(heat.x) == list(EMOTIONS)
    assert _json_data(counts)[0]["z"] == cm.tolist()
    assert heat.text[1][2] == str(cm[1, 2])
    assert np.asarray(heat.customdata)[..., 0].tolist() == cm.tolist()
    assert counts.layout.xaxis.title.text == "predicted"
    assert counts.layout.yaxis.title.text == "true"
    assert counts.layout.yaxis.autorange == "reversed"  # the first class on top
    pct = np.asarray(charts.confusion_matrix_figure(cm, normalized=True).data[0].z)
    np.testing.assert_allclose(pct.sum(axis=1)[cm.sum(axis=1) > 0], 100.0)
    np.testing.assert_array_equal(pct[3], 0.0)
    titled = charts.confusion_matrix_figure(cm, title="PublicTest")
    assert titled.layout.title.text == "PublicTest" and counts.layout.title.text is None


def test_confusion_matrix_empty() -> None:
    fig = charts.confusion_matrix_figure(np.zeros((7, 7), dtype=np.int64), normalized=True)
    assert np.asarray(fig.data[0].z).tolist() == [[0.0] * 7] * 7


def test_confusion_diff_in_points_centred() -> None:
    diff = np.zeros((7, 7))
    diff[0, :2] = [0.5, -0.5]
    fig = charts.confusion_diff_figure(diff, title="B - A")
    (heat,) = fig.data
    assert np.asarray(heat.z)[0, :2].tolist() == [50.0, -50.0]
    assert (heat.zmin, heat.zmid, heat.zmax) == (-50.0, 0, 50.0)
    assert heat.text[0][0] == "+50.0" and fig.layout.title.text == "B - A"
    flat = charts.confusion_diff_figure(np.zeros((7, 7))).data[0]  # equal models
    assert flat.zmax > 0 and np.asarray(flat.z).max() == 0


def test_face_probabilities_one_trace_per_face() -> None:
    faces = [_face(np.eye(7)[i], track_id=i + 1 if i else None) for i in range(5)]
    fig = charts.face_probabilities_figure(faces, height=320)
    assert [t.name for t in fig.data] == ["face 1", "face 2", "face 3", "face 4"]  # 4 at most
    assert all(t.orientation == "h" and list(t.y) == list(EMOTIONS) for t in fig.data)
    assert _json_data(fig)[2]["x"] == np.eye(7)[2].tolist()
    assert fig.layout.height == 320 and tuple(fig.layout.xaxis.range) == (0, 1)
    assert charts.face_probabilities_figure([]).data == ()


def test_live_timeline_seconds_ago() -> None:
    now = 1000.0
    timeline = [(now - 2.0, np.eye(7)[3]), (now - 0.5, np.eye(7)[4])]
    fig = charts.live_timeline_figure(timeline, window_s=30, now=now)
    assert [t.name for t in fig.data] == list(EMOTIONS)
    happy = _json_data(fig)[3]
    assert happy["x"] == [-2.0, -0.5] and happy["y"] == [1.0, 0.0]
    assert fig.layout.xaxis.title.text == "seconds ago"
    assert tuple(fig.layout.xaxis.range) == (-30, 0) and tuple(fig.layout.yaxis.range) == (0, 1)
    empty = charts.live_timeline_figure([], now=now)
    assert len(empty.data) == 7 and all(len(t.x) == 0 for t in empty.data)


def test_importing_charts_does_not_load_tensorflow() -> None:
    code = "import sys, fer_core.charts; print('tensorflow' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=Path(__file__).resolve().parents[1], timeout=120)
    assert done.stdout.strip() == "False"


# ---------------------------------------------------------------- Training


def test_training_curves_figure_draws_the_history(finished_run):
    done = finished_run
    history = runs.read_history(done.dir)
    fig = charts.training_curves_figure(history, epochs=3)
    names = [(t.name, t.xaxis) for t in fig.data]
    assert names == [("train", "x"), ("val", "x"), ("train", "x2"), ("val", "x2")]
    assert list(fig.data[1].y) == [0.7, 0.6, 0.65]
    assert list(fig.data[3].y) == [30.0, 45.0, 40.0]
    assert charts.training_curve_frame([]).empty


def test_training_curves_show_the_epoch_in_progress():
    events = [{"kind": "batch", "epoch": 1, "batch": 5, "steps": 10, "loss": 1.2,
               "accuracy": 0.5},
              {"kind": "batch", "epoch": 2, "batch": 5, "steps": 10, "loss": 1.1,
               "accuracy": 0.55},
              {"kind": "epoch", "epoch": 1}]
    points = charts.batch_curve_points(events, after_epoch=1)
    assert points.x.tolist() == [1.5]
    fig = charts.training_curves_figure([], points, epochs=3)
    running = [t for t in fig.data if t.name == "train (this epoch)"]
    assert [list(t.y) for t in running] == [[1.1], [55.0]]
    assert [t.line.dash for t in running] == ["dot", "dot"]
    assert list(fig.layout.xaxis.range) == [0, 3.2]

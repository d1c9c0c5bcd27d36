"""Plotly figures: pure functions, checked on their traces."""

from __future__ import annotations

from run_fixtures import finished_run

from fer_core import charts, runs

# ---------------------------------------------------------------- Training


def test_training_curves_figure_draws_the_history(tmp_path):
    done = finished_run(tmp_path)
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

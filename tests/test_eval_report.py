"""fer_core.eval_report: what the Evaluate page shows of an evaluation, as plain data."""

from __future__ import annotations

import numpy as np
import pytest

from fer_core import eval_report
from fer_core import evaluate as ev
from fer_core.labels import EMOTIONS


def test_commonest_mistake_skips_the_diagonal() -> None:
    cm = np.zeros((7, 7), dtype=np.int64)
    cm[2] = [1, 0, 50, 3, 0, 0, 2]
    assert eval_report.commonest_mistake(cm, 2) == 3
    assert eval_report.commonest_mistake(np.eye(7, dtype=np.int64) * 9, 0) != 0


def test_clicked_cell() -> None:
    assert eval_report.clicked_cell([{"x": "sad", "y": "fear"}]) == ("fear", "sad")
    assert eval_report.clicked_cell([]) is None and eval_report.clicked_cell(None) is None
    assert eval_report.clicked_cell([{"x": 3, "y": "fear"}]) is None


def test_tables() -> None:
    cm = np.diag([5, 0, 5, 5, 5, 5, 5]).astype(np.int64)
    cm[0, 2] = 5
    a = ev.metrics_from_confusion(cm)
    table = eval_report.per_class_table(a)
    assert list(table.index) == list(EMOTIONS) and table.loc["angry", "support"] == 10
    assert table.loc["angry", "recall"] == pytest.approx(0.5)
    cmp = ev.Comparison(a=a, b=a, accuracy_diff=0.0, macro_f1_diff=0.0,
                        f1_diff=dict.fromkeys(EMOTIONS, 0.0),
                        recall_diff=dict.fromkeys(EMOTIONS, 0.0),
                        precision_diff=dict.fromkeys(EMOTIONS, 0.0),
                        confusion_diff=np.zeros((7, 7)))
    summary, per_class = eval_report.comparison_tables(cmp)
    assert list(summary.index) == ["accuracy", "macro-F1"]
    assert summary.loc["accuracy", "A"] == pytest.approx(a.accuracy)
    assert list(per_class.columns) == ["F1 A", "F1 B", "F1 B - A", "recall B - A",
                                       "precision B - A"]

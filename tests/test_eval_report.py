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


def test_failure_table_names_each_models_commonest_mistake_and_its_share() -> None:
    cm_a = np.diag([8, 4, 6, 9, 7, 9, 9]).astype(np.int64)
    cm_a[2, 4] = 4  # A: fear -> sad, 4 of 10
    cm_b = np.diag([8, 4, 8, 9, 7, 9, 9]).astype(np.int64)
    cm_b[2, 0] = 2  # B: fear -> angry, 2 of 10
    a, b = (ev.result_from_probs(*_probs_for(cm)) for cm in (cm_a, cm_b))
    table = eval_report.failure_table(ev.compare(a, b))
    assert list(table.index) == list(EMOTIONS)
    assert table.loc["fear", "A mistaken for"] == "sad"
    assert table.loc["fear", "A share"] == pytest.approx(0.4)
    assert table.loc["fear", "B mistaken for"] == "angry"
    assert table.loc["fear", "B share"] == pytest.approx(0.2)


def _probs_for(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One-hot probabilities and labels whose confusion matrix is `cm`."""
    true, pred = np.nonzero(cm)
    labels = np.repeat(true, cm[true, pred])
    probs = np.eye(7, dtype=np.float32)[np.repeat(pred, cm[true, pred])]
    return probs, labels


def test_views_note_speaks_only_when_one_model_mirrors_and_the_other_does_not() -> None:
    probs, labels = _probs_for(np.eye(7, dtype=np.int64))
    plain = ev.result_from_probs(probs, labels)
    mirrored = ev.result_from_probs(probs, labels, tta=True, accuracy_without_tta=1.0)
    assert eval_report.views_note(plain, plain) == ""
    assert eval_report.views_note(mirrored, mirrored) == ""
    assert eval_report.views_note(mirrored, plain).startswith("A averages")
    assert eval_report.views_note(plain, mirrored).startswith("B averages")

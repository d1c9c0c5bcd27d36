"""Tests of fer_core.evaluate: metrics by hand, predictions, TTA, compare, mistakes, cache."""

from __future__ import annotations

import json

import numpy as np
import pytest

import fer_core  # noqa: F401  (CPU flags before TensorFlow loads)
from fer_core import evaluate as ev
from fer_core.labels import EMOTIONS, NUM_CLASSES

NAMES = ("a", "b", "c", "d", "e")
# rows = true, columns = predicted. "c" never appears (row of zeros) but is predicted once;
# "d" appears twice but is never predicted (column of zeros); "e" neither appears nor is
# predicted.
HAND_CM = np.array([
    [3, 1, 0, 0, 0],
    [1, 2, 0, 0, 0],
    [0, 0, 0, 0, 0],
    [1, 0, 1, 0, 0],
    [0, 0, 0, 0, 0],
])


def test_metrics_from_hand_computed_confusion():
    m = ev.metrics_from_confusion(HAND_CM, NAMES)
    by = {c.name: c for c in m.per_class}
    assert m.accuracy == pytest.approx(5 / 9)
    assert by["a"].precision == pytest.approx(3 / 5)
    assert by["a"].recall == pytest.approx(3 / 4)
    assert by["a"].f1 == pytest.approx(2 / 3)  # 2 * .6 * .75 / 1.35
    assert by["b"].precision == pytest.approx(2 / 3)
    assert by["b"].recall == pytest.approx(2 / 3)
    assert by["b"].f1 == pytest.approx(2 / 3)
    # never appears: recall 0/0 -> 0.0; predicted once, wrongly: precision 0.0
    assert (by["c"].precision, by["c"].recall, by["c"].f1, by["c"].support) == (0.0, 0.0, 0.0, 0)
    assert by["c"].predicted == 1
    # never predicted: precision 0/0 -> 0.0
    assert (by["d"].precision, by["d"].recall, by["d"].f1, by["d"].support) == (0.0, 0.0, 0.0, 2)
    assert by["e"].support == 0 and by["e"].predicted == 0 and by["e"].f1 == 0.0
    # macro-F1 over the classes that occur in labels or predictions (a, b, c, d), not e
    assert m.macro_f1 == pytest.approx((2 / 3 + 2 / 3 + 0 + 0) / 4)
    norm = m.confusion_normalized
    assert np.all(np.isfinite(norm))
    np.testing.assert_allclose(norm[0], [0.75, 0.25, 0, 0, 0])
    np.testing.assert_array_equal(norm[2], np.zeros(5))
    np.testing.assert_allclose(norm.sum(axis=1), [1, 1, 0, 1, 0])


def test_metrics_of_empty_confusion_are_defined():
    m = ev.metrics_from_confusion(np.zeros((NUM_CLASSES, NUM_CLASSES), int))
    assert m.accuracy == 0.0 and m.macro_f1 == 0.0
    assert all(c.precision == c.recall == c.f1 == 0.0 for c in m.per_class)


def test_confusion_matrix_counts_and_validation():
    cm = ev.confusion_matrix([0, 0, 1, 6], [0, 1, 1, 0])
    assert cm.shape == (7, 7) and cm.sum() == 4
    assert cm[0, 0] == 1 and cm[0, 1] == 1 and cm[1, 1] == 1 and cm[6, 0] == 1
    with pytest.raises(ValueError, match="0..6"):
        ev.confusion_matrix([0, 7], [0, 0])
    with pytest.raises(ValueError, match="2 labels but 1 predictions"):
        ev.confusion_matrix([0, 1], [0])


def test_metrics_to_dict_is_json_ready():
    m = ev.metrics_from_confusion(HAND_CM, NAMES)
    d = json.loads(json.dumps(m.to_dict()))
    assert set(d) == {"accuracy", "macro_f1", "per_class", "confusion"}
    assert d["per_class"]["a"]["support"] == 4
    assert d["confusion"] == HAND_CM.tolist()


def _probs(pred: list[int], conf: list[float]) -> np.ndarray:
    p = np.full((len(pred), NUM_CLASSES), 0.0, np.float32)
    for i, (k, c) in enumerate(zip(pred, conf)):
        p[i] = (1 - c) / (NUM_CLASSES - 1)
        p[i, k] = c
    return p


def test_top_mistakes_most_confident_first():
    labels = np.array([0, 0, 0, 0, 1])
    probs = _probs([2, 2, 0, 2, 2], [0.5, 0.9, 0.8, 0.7, 0.95])
    res = ev.result_from_probs(probs, labels)
    got = ev.top_mistakes(res, 0, 2)
    assert [m.index for m in got] == [1, 3, 0]
    assert got[0].confidence == pytest.approx(0.9)
    assert got[0].top3[0] == (EMOTIONS[2], pytest.approx(0.9))
    assert len(got[0].top3) == 3
    assert [m.index for m in ev.top_mistakes(res, 0, 2, k=1)] == [1]
    assert ev.top_mistakes(res, 3, 4) == []


def test_compare_differences():
    labels = np.array([0, 0, 1, 1])
    a = ev.result_from_probs(_probs([0, 1, 1, 0], [0.9] * 4), labels)
    b = ev.result_from_probs(_probs([0, 0, 1, 1], [0.9] * 4), labels)
    c = ev.compare(a, b)
    assert c.accuracy_diff == pytest.approx(0.5)
    assert c.f1_diff["angry"] == pytest.approx(b.per_class[0].f1 - a.per_class[0].f1)
    np.testing.assert_allclose(c.confusion_diff[0, :2], [0.5, -0.5])
    np.testing.assert_allclose(c.confusion_diff.sum(axis=1), 0, atol=1e-12)


def test_split_key_is_file_safe():
    assert ev.split_key("PublicTest") == "PublicTest"
    assert ev.split_key("my data (1).csv.gz") == "my_data_1"
    assert ev.split_key("../../etc") == "etc"
    assert ev.split_key("") == "split"

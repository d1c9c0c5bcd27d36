"""fer_core.calibration: reliability bins, ECE and temperature scaling on data whose true
calibration is known because it was drawn that way."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fer_core import calibration as cal


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _drawn(n: int, true_t: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax(z / true_t); the model reports softmax(z): it is off by
    exactly the temperature `true_t`."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 3.0, (n, 7))
    truth = _softmax(z / true_t)
    labels = np.array([rng.choice(7, p=p) for p in truth])
    return _softmax(z).astype(np.float32), labels


def test_ece_of_a_hand_made_example():
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    labels = np.array([0, 1, 0, 0])
    rel = cal.reliability(probs, labels, bins=10)
    # bin 0.8-0.9: confidence 0.9, accuracy 0.5; bin 0.5-0.6: confidence 0.6, accuracy 1.0
    assert rel.counts.sum() == 4 and rel.counts[8] == 2 and rel.counts[5] == 2
    assert rel.accuracy[8] == pytest.approx(0.5) and rel.confidence[5] == pytest.approx(0.6)
    assert np.isnan(rel.accuracy[0])  # an empty bin has no accuracy
    assert rel.ece == pytest.approx(0.5 * 0.4 + 0.5 * 0.4)


def test_a_calibrated_model_has_a_small_ece_and_a_temperature_near_one():
    probs, labels = _drawn(20_000, true_t=1.0)
    assert cal.expected_calibration_error(probs, labels) < 0.02
    assert cal.fit_temperature(probs, labels) == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("true_t", [0.5, 2.0])
def test_the_fitted_temperature_recovers_the_one_the_data_was_drawn_with(true_t):
    probs, labels = _drawn(20_000, true_t=true_t)
    fitted = cal.calibrate(probs, labels)
    assert fitted.temperature == pytest.approx(true_t, rel=0.08)
    assert fitted.ece_before > 0.05 and fitted.ece_after < 0.02
    assert fitted.nll_after < fitted.nll_before
    scaled = cal.with_temperature(probs, fitted.temperature)
    np.testing.assert_array_equal(scaled.argmax(axis=1), probs.argmax(axis=1))
    np.testing.assert_allclose(scaled.sum(axis=1), 1.0, atol=1e-5)
    assert json.loads(json.dumps(fitted.to_dict()))["faces"] == 20_000


def test_temperature_one_changes_nothing_and_bad_input_is_named():
    probs, labels = _drawn(100, true_t=1.0)
    np.testing.assert_allclose(cal.with_temperature(probs, 1.0), probs, atol=1e-6)
    with pytest.raises(ValueError, match="positive"):
        cal.with_temperature(probs, 0.0)
    with pytest.raises(ValueError, match="labels"):
        cal.reliability(probs, labels[:5])
    with pytest.raises(ValueError, match="class indices"):
        cal.reliability(probs, np.full(len(probs), 7))
    with pytest.raises(ValueError, match="at least one face"):
        cal.fit_temperature(np.zeros((0, 7)), np.zeros(0, np.int64))


def test_an_evaluation_reports_its_calibration():
    from fer_core.evaluate import result_from_probs

    probs, labels = _drawn(2_000, true_t=2.0)
    out = json.loads(json.dumps(result_from_probs(probs, labels).to_dict()))
    assert out["calibration"]["temperature"] == pytest.approx(
        cal.fit_temperature(probs, labels), rel=1e-6)
    assert out["calibration"]["ece_after"] < out["calibration"]["ece_before"]

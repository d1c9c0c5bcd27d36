"""Classifying each face with its mirror image too (`backends.with_mirror_view`, Evaluate's flip
TTA) on the Live page, photos, Analyse and the `analyze` CLI: the mean of both views in one
call, behind the temperature stored for that pair."""

from __future__ import annotations

import numpy as np

from fer_core import backends, calibration
from fer_core.backends import MirroredFaceModel, TemperedFaceModel, with_mirror_view
from fer_core.ensemble import EnsembleFaceModel
from fer_core.model_card import StoredTemperature

FACES = np.random.default_rng(5).integers(0, 256, (3, 48, 48), dtype=np.uint8)


class LeftRight:
    """A fake model whose answer depends on which half of the face is brighter, so a face
    and its mirror get different probabilities; it counts its calls."""

    name, runtime = "fake", "keras"

    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict(self, faces: np.ndarray) -> np.ndarray:
        faces = backends.as_batch(faces)
        self.calls.append(len(faces))
        left = faces[:, :, :24].mean(axis=(1, 2, 3)) / 255
        right = faces[:, :, 24:].mean(axis=(1, 2, 3)) / 255
        logits = np.stack([left, right, *[np.zeros(len(faces))] * 5], axis=1) * 4
        probs = np.exp(logits)
        return (probs / probs.sum(axis=1, keepdims=True)).astype(np.float32)


def test_it_is_the_mean_of_both_views_in_one_call() -> None:
    model = LeftRight()
    mirrored = with_mirror_view(model)
    probs = mirrored.predict(FACES)
    assert model.calls == [6]  # both views of the three faces in one call
    expected = (model.predict(FACES) + model.predict(FACES[:, :, ::-1])) / 2
    np.testing.assert_allclose(probs, expected, atol=1e-6)
    assert not np.allclose(probs, model.predict(FACES))
    assert mirrored.predict(FACES[:0]).shape == (0, 7)
    assert (mirrored.name, mirrored.runtime) == ("fake", "keras")


def test_a_calibrated_model_switches_to_the_temperature_fitted_for_both_views() -> None:
    model = LeftRight()
    tempered = TemperedFaceModel(model, StoredTemperature(2.0, 0.5, "PublicTest"))
    assert tempered.temperature == 2.0
    mirrored = with_mirror_view(tempered)
    assert isinstance(mirrored, TemperedFaceModel) and mirrored.temperature == 0.5
    both = (model.predict(FACES) + model.predict(FACES[:, :, ::-1])) / 2
    np.testing.assert_allclose(mirrored.predict(FACES),
                               calibration.with_temperature(both, 0.5), atol=1e-5)


def test_a_model_that_mirrors_already_is_left_as_it_is() -> None:
    mirrored = with_mirror_view(LeftRight())
    assert with_mirror_view(mirrored) is mirrored
    tempered = with_mirror_view(TemperedFaceModel(LeftRight(), StoredTemperature(2, 0.5, "x")))
    assert with_mirror_view(tempered) is tempered
    flip = EnsembleFaceModel([LeftRight()], tta="flip")
    assert with_mirror_view(flip) is flip
    single = EnsembleFaceModel([LeftRight()], tta="none", temperature=0.8)
    mirrored = with_mirror_view(single)
    assert (mirrored.tta, mirrored.temperature, mirrored.members) == ("flip", 0.8, single.members)


def test_evaluate_scores_a_mirrored_model_with_both_views_and_their_temperature() -> None:
    """A page's classifier handed to Evaluate is scored as the page runs it, its plain and
    mirrored views kept apart (accuracy without TTA), then the pair's temperature."""
    from fer_core import evaluate

    labels = np.array([0, 1, 2])
    model = LeftRight()
    stored = StoredTemperature(2.0, 0.5, "PublicTest")
    for page_model, temperature in ((with_mirror_view(model), None),
                                    (with_mirror_view(TemperedFaceModel(model, stored)), 0.5)):
        result = evaluate.evaluate_model(page_model, FACES, labels)
        both = (model.predict(FACES) + model.predict(FACES[:, :, ::-1])) / 2
        expected = both if temperature is None else calibration.with_temperature(both, 0.5)
        np.testing.assert_allclose(result.probs, expected, atol=1e-5)
        assert result.accuracy_without_tta is not None

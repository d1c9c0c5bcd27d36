"""The model that ships with the app: present, safe to load, what its recipe builds, exported
from these weights, and as accurate on PublicTest as its model card says (when the real data
is here)."""

from __future__ import annotations

import numpy as np
import pytest

import fer_core  # noqa: F401  (CPU flags before TensorFlow loads)
from fer_core import catalog, evaluate, model_card
from fer_core.data import load_dataset
from fer_core.labels import NUM_CLASSES
from fer_core.models import load_model
from fer_core.paths import DEFAULT_MODEL_PATH
from shipped_models import REAL_CSV, assert_built_by_recipe, card_figure

# its recipe: the `default` preset and the options its run changed (models/MODEL_CARD.md)
RECIPE = ("default", {"name": "member5 erasing0.3 e64 seed4", "seed": 4, "epochs": 64,
                       "augment": {"erasing": 0.3}})


@pytest.fixture(autouse=True)
def _shipped_default(monkeypatch) -> None:
    monkeypatch.delenv("FER_DEFAULT_MODEL", raising=False)


@pytest.fixture(scope="module")
def model():
    return load_model(DEFAULT_MODEL_PATH)


def test_the_default_is_shipped_small_and_resolves() -> None:
    assert DEFAULT_MODEL_PATH.is_file()
    assert DEFAULT_MODEL_PATH.stat().st_size <= 10 * 2**20
    assert catalog.resolve("default").path == DEFAULT_MODEL_PATH


def test_it_is_what_its_recipe_builds() -> None:
    assert_built_by_recipe(DEFAULT_MODEL_PATH, *RECIPE)


def test_the_live_page_runs_its_shipped_exports() -> None:
    """Exports whose cards name other weights would be skipped and the Live page would fall
    back to the slower Keras model."""
    assert sorted(e.path.name for e in model_card.exports_of(DEFAULT_MODEL_PATH)) == [
        "default.int8.tflite", "default.onnx"]
    assert model_card.fastest_export(DEFAULT_MODEL_PATH).path.name == "default.int8.tflite"


@pytest.mark.parametrize("name, plain", [("default.keras", 0.99), ("default.onnx", 0.99),
                                         ("default.int8.tflite", 1.00)])
def test_it_and_its_exports_store_the_temperatures_its_card_states(name, plain) -> None:
    """A re-export or new weights drop a file's temperature (`calibrate` fits it again)."""
    stored = model_card.stored_temperature(DEFAULT_MODEL_PATH.parent / name)
    assert stored is not None and stored.fitted_on == "PublicTest"
    assert stored.plain == pytest.approx(plain, abs=0.005)
    assert stored.flip == pytest.approx(0.93, abs=0.01)


def test_it_gives_seven_probabilities_that_depend_on_the_face(model) -> None:
    faces = np.random.default_rng(0).integers(0, 256, (4, 48, 48, 1)).astype(np.float32)
    probs = np.asarray(model(faces, training=False))
    assert probs.shape == (4, NUM_CLASSES)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert not np.allclose(probs[0], probs[1])


@pytest.mark.skipif(not REAL_CSV.exists(), reason=f"{REAL_CSV} not present")
def test_publictest_accuracy_is_what_the_card_says(model) -> None:
    images, labels = load_dataset(REAL_CSV).split("PublicTest")
    result = evaluate.evaluate_model(model, images, labels, tta=True)
    assert result.accuracy_without_tta == pytest.approx(card_figure("PublicTest accuracy"),
                                                        abs=0.002)
    assert result.accuracy == pytest.approx(card_figure("PublicTest accuracy with flip TTA"),
                                            abs=0.002)

"""The shipped `accurate` ensemble: its members are the files it records and what their
recipes build, it resolves and runs as one model, and on PublicTest it scores what its
manifest and the model card say (when the real data is here)."""

from __future__ import annotations

import numpy as np
import pytest

import fer_core  # noqa: F401  (CPU flags before TensorFlow loads)
from fer_core import catalog, ensemble, evaluate
from fer_core.backends import open_face_model
from fer_core.data import load_dataset
from fer_core.labels import NUM_CLASSES
from shipped_models import MODELS, REAL_CSV, assert_built_by_recipe, card_figure

MANIFEST = MODELS / "accurate.ensemble.json"
# each member's recipe: a preset and the options its run changed (models/MODEL_CARD.md)
RECIPES = {
    "accurate-1.keras": ("default", {}),
    "accurate-2.keras": ("default", {"name": "member2 erasing0.3 seed1", "seed": 1,
                                     "epochs": 32, "augment": {"erasing": 0.3}}),
    "accurate-3.keras": ("default", {"name": "member4 default e64 seed3", "seed": 3,
                                     "epochs": 64}),
    "accurate-4.keras": ("default", {"name": "member5 erasing0.3 e64 seed4", "seed": 4,
                                     "epochs": 64, "augment": {"erasing": 0.3}}),
}


@pytest.fixture(autouse=True)
def _shipped_models(monkeypatch) -> None:
    monkeypatch.delenv("FER_DEFAULT_MODEL", raising=False)


def test_accurate_is_shipped_and_its_members_are_the_recorded_files() -> None:
    spec = ensemble.read_ensemble(MANIFEST)
    assert [m.name for m in spec.members] == list(RECIPES)
    ensemble.check_members(spec)  # every member's SHA-256 is the one recorded
    assert all(m.stat().st_size <= 10 * 2**20 for m in spec.members)
    assert spec.tta == "flip" and spec.extra["fitted_on"] == "PublicTest"
    assert catalog.resolve("accurate").path == MANIFEST.resolve()


@pytest.mark.parametrize("member", list(RECIPES))
def test_each_member_is_what_its_recipe_builds(member) -> None:
    assert_built_by_recipe(MODELS / member, *RECIPES[member])


def test_it_runs_as_one_model() -> None:
    model = open_face_model(catalog.resolve("accurate").path)
    faces = np.random.default_rng(0).integers(0, 256, (3, 48, 48), dtype=np.uint8)
    probs = model.predict(faces)
    assert probs.shape == (3, NUM_CLASSES)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    # flip TTA is part of the model: a face and its mirror image get the same answer
    np.testing.assert_allclose(model.predict(faces[:, :, ::-1]), probs, atol=1e-5)


@pytest.mark.skipif(not REAL_CSV.exists(), reason=f"{REAL_CSV} not present")
def test_publictest_accuracy_is_what_the_manifest_and_card_say() -> None:
    images, labels = load_dataset(REAL_CSV).split("PublicTest")
    result = evaluate.evaluate_model(open_face_model(MANIFEST), images, labels)
    recorded = ensemble.read_ensemble(MANIFEST).extra["publictest"]
    assert result.accuracy == pytest.approx(recorded["accuracy"], abs=0.002)
    assert result.accuracy == pytest.approx(card_figure("accurate: PublicTest accuracy"),
                                            abs=0.002)

"""Checks shared by the tests of the models that ship in `models/` (`default` and `accurate`'s
members): each is what its recipe builds, and the model card's stated figures."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fer_core.config import TrainConfig, config_from_preset
from fer_core.models import create_model, load_model

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
CARD = MODELS / "MODEL_CARD.md"
REAL_CSV = ROOT.parent / "shared/fer2013/fer2013.csv.gz"


def card_figure(name: str) -> float:
    """A percentage the model card states in a summary line `- name: 12.3%`, as a fraction."""
    match = re.search(rf"^- {re.escape(name)}: ([0-9.]+)%", CARD.read_text(), re.MULTILINE)
    assert match, f"{CARD} has no '- {name}: N%' line"
    return float(match.group(1)) / 100


def assert_built_by_recipe(model_file: Path, preset: str, changes: dict) -> None:
    """The training config recorded beside `model_file` is `preset` with `changes` (the data
    path aside), and the saved network has the layers that config builds."""
    expected = config_from_preset(preset, **changes)
    recorded = json.loads(model_file.with_suffix(".config.json").read_text())
    assert TrainConfig.from_dict(recorded).to_dict() == expected.to_dict() | {
        "data": recorded["data"]}
    built = create_model(expected.model, **expected.model_kwargs)
    model = load_model(model_file)
    assert model.name == built.name
    assert [w.shape for w in model.weights] == [w.shape for w in built.weights]

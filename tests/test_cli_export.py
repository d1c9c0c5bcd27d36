"""`python -m fer_core export`: a run's model shipped as a .keras file with its config."""

from __future__ import annotations

import json

import numpy as np
import pytest

import fer_core  # noqa: F401  (CPU flags before TensorFlow loads)
from fer_core.__main__ import main
from fer_core.config import TrainConfig
from fer_core.models import load_model


@pytest.fixture
def tiny(tiny_run, fer_dirs):
    return tiny_run, fer_dirs.runs


def test_export_writes_the_same_model_without_optimizer_and_its_config(tiny, tmp_path, capsys):
    info, root = tiny
    target = tmp_path / "shipped" / "mine.keras"
    assert main(["export", info.id, "--to", str(target), "--runs-dir", str(root)]) == 0
    assert "exported best weights" in capsys.readouterr().out
    faces = np.random.default_rng(1).integers(0, 256, (5, 48, 48, 1)).astype(np.float32)
    ours, theirs = load_model(target), load_model(info.best_model_path)
    np.testing.assert_allclose(ours(faces, training=False), theirs(faces, training=False),
                               atol=1e-6)
    assert target.stat().st_size < info.best_model_path.stat().st_size  # no optimizer state
    config = TrainConfig.from_dict(json.loads((tmp_path / "shipped" / "mine.config.json").read_text()))
    assert config == info.config.replace(model_kwargs={"width": 4, "convs": 1})
    assert not list(target.parent.glob(".*tmp*"))


def test_mean_export_averages_the_best_and_last_weights(tiny, tmp_path):
    info, root = tiny
    target = tmp_path / "mean.keras"
    assert main(["export", info.id, "--weights", "mean", "--to", str(target),
                 "--runs-dir", str(root)]) == 0
    best, last = load_model(info.best_model_path), load_model(info.last_model_path)
    for got, b, c in zip(load_model(target).get_weights(), best.get_weights(), last.get_weights(),
                         strict=True):
        np.testing.assert_allclose(got, (b + c) / 2, rtol=1e-6, atol=1e-7)


def test_averaging_different_architectures_is_refused(tiny, tmp_path):
    from fer_core.models import create_model, export_model

    info, _ = tiny
    other = tmp_path / "other.keras"
    create_model("fernet", width=6, convs=1).save(other)
    with pytest.raises(ValueError, match="same architecture"):
        export_model(info.best_model_path, tmp_path / "x.keras", mean_with=[other])
    assert not (tmp_path / "x.keras").exists()


def test_export_options_equal_to_the_defaults_are_left_out():
    from fer_core.config import changed_options

    assert changed_options({"width": 32, "convs": 2.0, "dropout": 0.4},
                           {"width": 32, "convs": 2, "dropout": 0.4, "l2": 0.0}) == {}
    assert changed_options({"width": 24.0}, {"width": 32, "convs": 2}) == {"width": 24}


@pytest.mark.parametrize("args, problem", [
    (["no-such-run"], "no-such-run"),
    (["{run}", "--to", "{tmp}/model.h5"], ".keras"),
])
def test_bad_exports_exit_2_and_say_why(tiny, tmp_path, capsys, args, problem):
    info, root = tiny
    args = [a.format(run=info.id, tmp=tmp_path) for a in args]
    assert main(["export", *args, "--runs-dir", str(root)]) == 2
    assert problem in capsys.readouterr().err
    assert not list(tmp_path.iterdir())

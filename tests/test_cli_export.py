"""`python -m fer_core export`: a run's model shipped as a .keras file with its config."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import fer_core  # noqa: F401  (CPU flags before TensorFlow loads)
from fer_core.files import file_sha256
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
    source = json.loads(target.with_name("mean.keras.card.json").read_text())["source"]
    assert source["sha256"] == file_sha256(info.best_model_path)
    assert source["mean_with"] == [{"path": os.path.relpath(info.last_model_path, tmp_path),
                                    "sha256": file_sha256(info.last_model_path)}]


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
    (["{run}", "--format", "keras", "--int8", "--to", "{tmp}/m.keras"], "--int8 applies"),
    (["{run}", "--format", "tflite", "--to", "{tmp}/m.onnx"], "does not end in"),
    (["{run}", "--weights", "mean", "--format", "onnx"], "mean writes a .keras"),
    (["{tmp}/missing.onnx", "--format", "onnx"], "does not exist"),
])
def test_bad_exports_exit_2_and_say_why(tiny, tmp_path, capsys, args, problem):
    info, root = tiny
    args = [a.format(run=info.id, tmp=tmp_path) for a in args]
    assert main(["export", *args, "--runs-dir", str(root)]) == 2
    assert problem in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("fmt, int8", [("onnx", False), ("tflite", False), ("onnx", True),
                                       ("tflite", True)])
def test_onnx_and_tflite_exports_round_trip_with_a_measured_card(tiny, tmp_path, capsys,
                                                                  fmt, int8):
    """Export, load back, same top label (float: on every face; int8: reported), and a card
    that names the source, the input layout, the classes and what was measured."""
    from fer_core import model_card
    from fer_core.labels import EMOTIONS
    from fer_core.backends import open_face_model

    info, root = tiny
    target = tmp_path / f"tiny{'.int8' if int8 else ''}.{fmt}"
    args = ["export", info.id, "--to", str(target), "--runs-dir", str(root)]
    assert main(args + (["--int8"] if int8 else [])) == 0
    out = capsys.readouterr().out
    assert f"exported best weights of run {info.id} to {target}" in out
    assert "PublicTest accuracy" in out and "ms for one face" in out
    card = model_card.read_card(target)
    assert (card["format"], card["int8"], card["classes"]) == (fmt, int8, list(EMOTIONS))
    assert card["source"]["sha256"] == file_sha256(info.best_model_path)
    assert card["input"]["shape"] == [None, 48, 48, 1] and card["input"]["layout"] == "NHWC"
    assert card["calibration"] == ({"split": "Training", "faces": pytest.approx(500, abs=10)}
                                   if int8 else None)
    test = card["publictest"]
    assert test["faces"] > 100 and 0 <= test["accuracy"] <= 1
    if not int8:
        assert test["top_label_agreement"] >= 0.995
        assert test["accuracy"] == test["source_accuracy"]
    faces = np.random.default_rng(2).integers(0, 256, (7, 48, 48), dtype=np.uint8)
    probs = open_face_model(target).predict(faces)
    reference = open_face_model(info.best_model_path).predict(faces)
    if not int8:
        np.testing.assert_allclose(probs, reference, atol=1e-5)
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-3)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([target.name,
                                                                 f"{target.name}.card.json"])


def test_without_to_an_export_goes_beside_its_source(tiny, capsys):
    info, root = tiny
    assert main(["export", info.id, "--format", "onnx", "--runs-dir", str(root)]) == 0
    assert (info.best_model_path.parent / "best.onnx").is_file()
    assert (info.best_model_path.parent / "best.onnx.card.json").is_file()


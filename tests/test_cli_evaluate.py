"""`python -m fer_core evaluate`: same numbers and same cache files as fer_core.evaluate."""

from __future__ import annotations

import json

import numpy as np
import pytest

import fer_core  # noqa: F401  (CPU flags before TensorFlow loads)
from fer_core import evaluate as ev
from fer_core.__main__ import main
from tiny_run import demo


@pytest.fixture
def env(tiny_run, fer_dirs, monkeypatch):
    import fer_core.data

    # the CLI's "demo" source is the standard demo set; use the tiny one for speed
    monkeypatch.setattr(fer_core.data, "load_dataset", lambda source, **kw: demo())
    return tiny_run, demo(), fer_dirs.runs


def test_json_output_matches_library_and_writes_run_files(env, capsys):
    info, data, _ = env
    assert main(["evaluate", info.id, "--data", "demo", "--split", "PublicTest", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"accuracy", "macro_f1", "per_class", "confusion"} <= set(out)
    images, labels = data.split("PublicTest")
    res = ev.evaluate_cached(info.id, images, labels, split="PublicTest")
    assert out["confusion"] == res.confusion.tolist()
    assert out["accuracy"] == pytest.approx(res.accuracy)
    assert out["macro_f1"] == pytest.approx(res.macro_f1)
    assert out["per_class"]["happy"]["support"] == int((labels == 3).sum())
    assert out["synthetic"] is True
    meta = json.loads((info.dir / "eval" / "PublicTest.json").read_text())
    assert meta["metrics"]["confusion"] == out["confusion"]


def test_tta_and_table_output(env, capsys):
    info, data, _ = env
    assert main(["evaluate", info.id, "--split", "Training", "--tta"]) == 0
    text = capsys.readouterr().out
    assert "without TTA accuracy" in text and "confusion (rows: true" in text
    images, labels = data.split("Training")
    res = ev.evaluate_cached(info.id, images, labels, split="Training", tta=True)
    assert f"accuracy {res.accuracy:.4f}" in text
    assert f"{res.accuracy_without_tta:.4f}" in text
    with np.load(info.dir / "eval" / "Training.npz") as z:
        assert "probs_flip" in z.files


def test_bad_model_and_split_give_clear_errors(env, capsys):
    assert main(["evaluate", "nope", "--split", "PublicTest"]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err
    info = env[0]
    assert main(["evaluate", info.id, "--split", "Validation"]) == 2
    err = capsys.readouterr().err
    assert "no split 'Validation'" in err and "PublicTest" in err


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_an_exported_file_evaluates_like_its_keras_model(env, tmp_path, capsys, fmt):
    from fer_core.export import export_file

    info, _, _ = env
    exported = export_file(info.best_model_path, tmp_path / f"best.{fmt}")
    assert main(["evaluate", str(exported), "--data", "demo", "--json"]) == 0
    ours = json.loads(capsys.readouterr().out)
    assert main(["evaluate", info.id, "--data", "demo", "--json"]) == 0
    theirs = json.loads(capsys.readouterr().out)
    assert ours["confusion"] == theirs["confusion"]
    assert not (tmp_path / "eval").exists()  # a typed file's cache is in the cache folder

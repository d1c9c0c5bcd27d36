"""A temperature stored on a model file's card (`python -m fer_core calibrate`): fitted on
PublicTest for one view and for the flip-TTA mean, applied wherever the file is opened, used
by Evaluate for the view it scores, never inherited by new weights, and kept out of an
ensemble whose members carry one."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import fer_core  # noqa: F401  (CPU flags before TensorFlow loads)
from fer_core import calibration, ensemble, evaluate, model_card
from fer_core.__main__ import main
from fer_core.backends import TemperedFaceModel, open_face_model
from fer_core.data import load_dataset

FACES = np.random.default_rng(3).integers(0, 256, (5, 48, 48), dtype=np.uint8)


@pytest.fixture
def model_file(tiny_run, tmp_path):
    """A copy of the tiny run's weights as a plain model file, with an ONNX export beside it."""
    path = tmp_path / "m.keras"
    shutil.copy(tiny_run.best_model_path, path)
    assert main(["export", str(path), "--format", "onnx", "--data", "demo"]) == 0
    return path


def test_a_card_stores_a_temperature_for_these_weights_only(tiny_run, tmp_path) -> None:
    path = tmp_path / "m.keras"
    shutil.copy(tiny_run.best_model_path, path)
    assert model_card.stored_temperature(path) is None  # no card
    model_card.store_temperature(path, 1.5, 1.2, fitted_on="PublicTest", measured={"faces": 9})
    stored = model_card.stored_temperature(path)
    assert (stored.plain, stored.flip, stored.fitted_on) == (1.5, 1.2, "PublicTest")
    card = model_card.read_card(path)
    assert card["file"] == "m.keras" and card["format"] == "keras"
    assert card["temperature"]["faces"] == 9
    with pytest.raises(ValueError, match="positive"):
        model_card.store_temperature(path, 0.0, 1.0, fitted_on="PublicTest")
    path.write_bytes(path.read_bytes() + b"\0")  # other weights in the same file
    assert model_card.stored_temperature(path) is None


@pytest.mark.parametrize("entry", [{"plain": -1, "flip": 1}, {"plain": True, "flip": 1},
                                   {"plain": 1.2}, "1.2"])
def test_a_malformed_entry_is_no_temperature(tiny_run, tmp_path, entry) -> None:
    path = tmp_path / "m.keras"
    shutil.copy(tiny_run.best_model_path, path)
    model_card.store_temperature(path, 1.5, 1.2, fitted_on="PublicTest")
    card = model_card.read_card(path)
    card["temperature"] = entry if isinstance(entry, str) else {
        **entry, "sha256": card["temperature"]["sha256"]}
    model_card.card_path(path).write_text(json.dumps(card))
    assert model_card.stored_temperature(path) is None


def test_calibrate_fits_the_file_and_its_exports_and_every_opener_applies_it(
        model_file, capsys) -> None:
    onnx = model_file.with_suffix(".onnx")
    assert main(["calibrate", str(model_file), "--data", "demo", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()
            if line.startswith("{")]
    assert [r["file"] for r in rows] == [str(model_file), str(onnx)]
    images, labels = load_dataset("demo").split("PublicTest")
    for path, row in zip((model_file, onnx), rows):
        stored = model_card.stored_temperature(path)
        assert (stored.plain, stored.flip) == (row["plain"], row["flip"])
        raw = open_face_model(path, temperature=False)
        plain = evaluate.predict_probs(raw, images)
        flipped = evaluate.predict_probs(raw, images, flip=True)
        # each is the log-loss fit on that file's own outputs, for its view
        assert row["plain"] == pytest.approx(calibration.fit_temperature(plain, labels), abs=1e-3)
        assert row["flip"] == pytest.approx(
            calibration.fit_temperature((plain + flipped) / 2, labels), abs=1e-3)
        opened = open_face_model(path)
        assert isinstance(opened, TemperedFaceModel)
        np.testing.assert_allclose(
            opened.predict(FACES),
            calibration.with_temperature(raw.predict(FACES), stored.plain), atol=1e-6)
    # Evaluate scores each view after its own temperature and says it is the model's own
    for tta, temperature in ((False, rows[0]["plain"]), (True, rows[0]["flip"])):
        result = evaluate.evaluate_cached(str(model_file), images, labels, split="PublicTest",
                                          tta=tta)
        assert result.stored_temperature == temperature
        assert result.calibration().stored
        assert result.calibration().ece_after == pytest.approx(rows[0][
            f"{'flip' if tta else 'plain'}_ece_after"], abs=1e-4)
        loaded = evaluate.evaluate_model(open_face_model(model_file), images, labels, tta=tta)
        np.testing.assert_allclose(loaded.probs, result.probs, atol=1e-5)
    from fer_core import eval_report

    note = eval_report.stored_temperature_note(model_file)
    assert f"{rows[0]['plain']:.2f}" in note and "PublicTest" in note


def test_an_ensemble_runs_its_members_raw(model_file, tmp_path) -> None:
    manifest = tmp_path / "pair.ensemble.json"
    ensemble.write_ensemble(manifest, [model_file, model_file.with_suffix(".onnx")], tta="none")
    before = open_face_model(manifest).predict(FACES)
    model_card.store_temperature(model_file, 3.0, 3.0, fitted_on="PublicTest")
    np.testing.assert_allclose(open_face_model(manifest).predict(FACES), before, atol=1e-6)
    assert not isinstance(open_face_model(manifest), TemperedFaceModel)


def test_calibrate_refuses_an_ensemble_and_a_missing_model(model_file, tmp_path, capsys) -> None:
    manifest = tmp_path / "pair.ensemble.json"
    ensemble.write_ensemble(manifest, [model_file])
    assert main(["calibrate", str(manifest), "--data", "demo"]) == 2
    assert "fitted when it is built" in capsys.readouterr().err
    assert main(["calibrate", str(tmp_path / "nope.keras"), "--data", "demo"]) == 2
    assert "error:" in capsys.readouterr().err


def test_the_pages_shared_model_applies_it_and_reloads_when_the_card_changes(model_file) -> None:
    """ui.models serves the Live page, photos and Evaluate: the Keras file runs through its
    traced classifier there, not `open_face_model`, and must get the temperature too."""
    from ui.models import loaded_file

    onnx = model_file.with_suffix(".onnx")
    for path in (model_file, onnx):
        assert not isinstance(loaded_file(path).classifier, TemperedFaceModel)
        model_card.store_temperature(path, 2.0, 1.5, fitted_on="PublicTest")
        classifier = loaded_file(path).classifier
        assert isinstance(classifier, TemperedFaceModel) and classifier.stored.plain == 2.0
        np.testing.assert_allclose(
            classifier.predict(FACES),
            calibration.with_temperature(classifier.model.predict(FACES), 2.0), atol=1e-6)


def test_an_export_of_a_calibrated_file_says_it_needs_its_own_fit(model_file, capsys) -> None:
    model_card.store_temperature(model_file, 1.5, 1.2, fitted_on="PublicTest")
    target = model_file.with_name("m.int8.tflite")
    assert main(["export", str(model_file), "--format", "tflite", "--to", str(target),
                 "--data", "demo"]) == 0
    assert model_card.stored_temperature(target) is None
    assert f"calibrate {target} --data" in capsys.readouterr().err


def test_calibrate_names_an_export_it_cannot_run_here(model_file, capsys, monkeypatch) -> None:
    from fer_core import runtimes

    real = runtimes.missing_runtime
    monkeypatch.setattr(runtimes, "missing_runtime",
                        lambda fmt: "ONNX Runtime is not installed" if fmt == "onnx" else real(fmt))
    assert main(["calibrate", str(model_file), "--data", "demo"]) == 0
    err = capsys.readouterr().err
    assert "not fitted: m.onnx: ONNX Runtime is not installed" in err
    assert model_card.stored_temperature(model_file) is not None
    assert model_card.stored_temperature(model_file.with_suffix(".onnx")) is None


def test_a_temperature_is_stamped_with_the_weights_it_was_fitted_for(model_file) -> None:
    from fer_core.files import file_sha256

    before = file_sha256(model_file)
    model_file.write_bytes(model_file.read_bytes() + b"\0")  # rewritten while predicting
    model_card.store_temperature(model_file, 1.5, 1.2, fitted_on="PublicTest", sha256=before)
    assert model_card.stored_temperature(model_file) is None


def test_the_grad_cam_caption_shows_the_probability_after_the_temperature(model_file) -> None:
    from fer_core import eval_report

    probs = np.array([0.6, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05], np.float32)
    assert eval_report.gradcam_caption(probs, 0, model_file) == "Grad-CAM for angry (p = 60%)"
    model_card.store_temperature(model_file, 2.0, 2.0, fitted_on="PublicTest")
    p = calibration.with_temperature(probs[None], 2.0)[0, 0]
    assert eval_report.gradcam_caption(probs, 0, model_file) == f"Grad-CAM for angry (p = {p:.0%})"
    assert f"{p:.0%}" != "60%"

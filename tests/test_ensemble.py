"""Ensembles (`fer_core.ensemble`): the manifest and its checks, the averaged prediction with
flip TTA and a temperature, shipped ensembles in the catalog and the evaluation cache, and
`python -m fer_core ensemble`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from fer_core import catalog, ensemble, runtimes
from fer_core.calibration import with_temperature
from fer_core.labels import NUM_CLASSES

FACES = np.random.default_rng(7).integers(0, 256, (5, 48, 48), dtype=np.uint8)


class _Stub:
    """A member whose probabilities depend on the face's left and right halves, so a
    mirrored view gives other numbers."""

    runtime = runtimes.ONNX

    def __init__(self, seed: int) -> None:
        self.name = f"stub{seed}"
        self.weights = np.random.default_rng(seed).normal(size=(2, NUM_CLASSES))
        self.calls: list[int] = []

    def predict(self, faces: np.ndarray) -> np.ndarray:
        batch = runtimes.as_batch(faces)
        self.calls.append(len(batch))
        halves = np.stack([batch[:, :, :24].mean(axis=(1, 2, 3)),
                           batch[:, :, 24:].mean(axis=(1, 2, 3))], axis=1) / 255.0
        logits = halves @ self.weights * 3
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def test_members_and_mirror_images_are_averaged_then_the_temperature_applied() -> None:
    a, b = _Stub(1), _Stub(2)
    model = ensemble.EnsembleFaceModel([a, b], tta="flip", temperature=0.8)
    mirrored = FACES[:, :, ::-1]
    mean = (a.predict(FACES) + a.predict(mirrored) + b.predict(FACES) + b.predict(mirrored)) / 4
    np.testing.assert_allclose(model.predict(FACES), with_temperature(mean, 0.8), atol=1e-6)
    assert a.calls[-1] == 2 * len(FACES)  # both views in one call per member

    plain = ensemble.EnsembleFaceModel([a, b], tta="none")
    np.testing.assert_allclose(plain.predict(FACES), (a.predict(FACES) + b.predict(FACES)) / 2,
                               atol=1e-6)
    assert plain.predict(FACES[:0]).shape == (0, NUM_CLASSES)
    assert not np.allclose(plain.predict(FACES), model.predict(FACES))


def _manifest(path: Path, **fields) -> Path:
    data = {"version": 1, "members": [{"file": "a.keras"}], **fields}
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("fields, field", [
    ({"members": []}, "'members'"),
    ({"members": [{"file": "../a.keras"}]}, "members[0]"),
    ({"members": [{"file": "/abs/a.keras"}]}, "members[0]"),
    ({"members": [{"file": "a.h5"}]}, "members[0]"),
    ({"members": [{"nofile": 1}]}, "members[0]"),
    ({"tta": "tencrop"}, "'tta'"),
    ({"temperature": 0}, "'temperature'"),
    ({"temperature": "hot"}, "'temperature'"),
    ({"version": 9}, "'version'"),
])
def test_a_bad_manifest_names_the_file_and_the_field(tmp_path, fields, field) -> None:
    path = _manifest(tmp_path / "x.ensemble.json", **fields)
    with pytest.raises(ValueError) as info:
        ensemble.read_ensemble(path)
    assert str(path) in str(info.value) and field in str(info.value)


def test_a_manifest_that_is_not_json_is_refused(tmp_path) -> None:
    path = tmp_path / "x.ensemble.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        ensemble.read_ensemble(path)


def test_format_and_names() -> None:
    assert runtimes.format_of("models/accurate.ensemble.json") == runtimes.ENSEMBLE
    assert runtimes.is_model_file_name("m/x.ENSEMBLE.json")
    assert not runtimes.is_model_file_name("models/default.config.json")
    with pytest.raises(ValueError, match="ensemble.json"):
        runtimes.format_of("models/default.config.json")
    assert runtimes.ensemble_name("models/accurate.ensemble.json") == "accurate"


@pytest.fixture
def shipped(tmp_path, fer_dirs, tiny_run) -> Path:
    """A models folder with a tiny default model, a second member and `accurate` (both
    members, flip TTA, temperature 0.9), the default model pointed at it."""
    from fer_core.models import create_model

    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(tiny_run.best_model_path, folder / "default.keras")
    create_model("fernet", width=4, convs=1).save(folder / "accurate-2.keras")
    shutil.copy(folder / "default.keras", folder / "accurate-1.keras")
    fer_dirs.default_model(folder / "default.keras")
    ensemble.write_ensemble(folder / "accurate.ensemble.json",
                            [folder / "accurate-1.keras", folder / "accurate-2.keras"],
                            tta="flip", temperature=0.9, extra={"data": "demo"})
    return folder


def test_a_shipped_ensemble_runs_as_one_model(shipped) -> None:
    from fer_core.backends import open_face_model

    ref = catalog.resolve("accurate")
    assert ref.state == catalog.SHIPPED and ref.path == (shipped / "accurate.ensemble.json").resolve()
    assert ref.trained_on == "demo" and "2 models" in ref.label
    assert [r.spec for r in catalog.choices(default_first=True)][:2] == ["default", "accurate"]

    model = open_face_model(ref.path)
    assert model.runtime == runtimes.ENSEMBLE and model.temperature == 0.9
    members = [open_face_model(shipped / name) for name in ("accurate-1.keras", "accurate-2.keras")]
    views = [m.predict(f) for m in members for f in (FACES, FACES[:, :, ::-1])]
    np.testing.assert_allclose(model.predict(FACES),
                               with_temperature(np.mean(views, axis=0), 0.9), atol=1e-5)


def test_a_changed_member_is_refused_and_changes_the_fingerprint(shipped) -> None:
    from fer_core.backends import open_face_model

    manifest = shipped / "accurate.ensemble.json"
    before = ensemble.model_fingerprint(manifest)
    shutil.copy(shipped / "accurate-2.keras", shipped / "accurate-1.keras")
    assert ensemble.model_fingerprint(manifest) != before
    with pytest.raises(ValueError, match="accurate-1.keras is not the file"):
        open_face_model(manifest)
    shutil.copy(shipped / "default.keras", shipped / "accurate-1.keras")  # back as it was
    (shipped / "accurate-2.keras").unlink()
    with pytest.raises(ValueError, match="accurate-2.keras does not exist"):
        open_face_model(manifest)


def test_members_must_lie_beside_the_manifest(tmp_path, shipped) -> None:
    with pytest.raises(ValueError, match="beside the manifest"):
        ensemble.write_ensemble(tmp_path / "x.ensemble.json", [shipped / "accurate-1.keras"])
    with pytest.raises(ValueError, match="must end in"):
        ensemble.write_ensemble(shipped / "x.json", [shipped / "accurate-1.keras"])


def test_the_cli_builds_measures_and_evaluates_an_ensemble(shipped, capsys) -> None:
    from fer_core.__main__ import main

    manifest = shipped / "pair.ensemble.json"
    code = main(["ensemble", str(manifest), "--members", str(shipped / "accurate-1.keras"),
                 str(shipped / "accurate-2.keras"), "--data", "demo"])
    out = capsys.readouterr().out
    assert code == 0, out
    spec = ensemble.read_ensemble(manifest)
    figures = spec.extra["publictest"]
    assert spec.tta == "flip" and spec.extra["fitted_on"] == "PublicTest"
    assert [m["file"] for m in figures["members"]] == ["accurate-1.keras", "accurate-2.keras"]
    assert figures["nll_after"] <= figures["nll_before"] + 1e-4
    assert f"{figures['accuracy']:.2%}" in out

    assert main(["evaluate", "pair", "--data", "demo", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["accuracy"] == pytest.approx(figures["accuracy"], abs=1e-4)
    # the figures the manifest recorded, again: plain accuracy, calibration before and after
    # its own temperature (not one fitted again on top of it)
    assert result["tta"] and result["tta_built_in"]
    assert result["accuracy_without_tta"] == pytest.approx(figures["accuracy_without_tta"],
                                                           abs=1e-4)
    calibration = result["calibration"]
    assert calibration["temperature_stored"]
    assert calibration["temperature"] == pytest.approx(spec.temperature)
    for key in ("ece_before", "ece_after", "nll_before", "nll_after"):
        assert calibration[key] == pytest.approx(figures[key], abs=1e-3), key

    assert main(["ensemble", str(manifest), "--members", str(shipped / "nope.keras"),
                 "--data", "demo"]) == 2
    assert "nope.keras" in capsys.readouterr().err


def test_an_ensemble_is_scored_as_it_runs_with_its_plain_accuracy_and_calibration(shipped):
    """One evaluation of an ensemble with flip TTA and a temperature: its answers are the
    model's own, its plain accuracy is the members' mean on the face alone, and its
    calibration is measured before and after its own temperature."""
    from fer_core import calibration, evaluate
    from fer_core.backends import open_face_model
    from fer_core.data import load_dataset

    images, labels = load_dataset("demo").split("PublicTest")
    model = open_face_model(shipped / "accurate.ensemble.json")
    for tta in (False, True):  # the toggle changes nothing: the ensemble mirrors faces itself
        result = evaluate.evaluate_model(model, images, labels, tta=tta)
        assert result.tta and result.tta_built_in and result.stored_temperature == 0.9
        np.testing.assert_allclose(result.probs, model.predict(images), atol=1e-5)
    members = [open_face_model(shipped / n) for n in ("accurate-1.keras", "accurate-2.keras")]
    plain = np.mean([m.predict(images) for m in members], axis=0)
    assert result.accuracy_without_tta == pytest.approx(float((plain.argmax(1) == labels).mean()))
    flipped = np.mean([m.predict(images[:, :, ::-1]) for m in members], axis=0)
    before = (plain + flipped) / 2
    cal = result.calibration()
    assert cal.stored and cal.temperature == 0.9
    assert cal.ece_before == pytest.approx(
        calibration.expected_calibration_error(before, labels), abs=1e-4)
    assert cal.ece_after == pytest.approx(
        calibration.expected_calibration_error(result.probs, labels), abs=1e-6)
    cached = evaluate.evaluate_cached("accurate", images, labels, split="PublicTest")
    assert cached.accuracy == result.accuracy and cached.tta_built_in
    assert cached.accuracy_without_tta == result.accuracy_without_tta


def test_evaluate_says_what_an_ensemble_is(shipped) -> None:
    from fer_core import eval_report

    manifest = shipped / "accurate.ensemble.json"
    assert "ensemble" in eval_report.no_gradcam_reason(manifest)
    assert "exported file" in eval_report.no_gradcam_reason(shipped / "default.onnx")
    note = eval_report.stored_temperature_note(manifest)
    assert "0.90" in note and "PublicTest" in note  # the fit's split, by default PublicTest
    assert eval_report.stored_temperature_note(shipped / "default.keras") == ""


def test_the_evaluate_page_judges_an_ensemble_against_default(shipped, monkeypatch, tmp_path):
    from streamlit.testing.v1 import AppTest

    monkeypatch.chdir(tmp_path)  # no data/fer2013.csv here: the demo set is active
    page = str(Path(__file__).resolve().parents[1] / "app_pages" / "3_Evaluate.py")
    at = AppTest.from_file(page, default_timeout=120).run()
    assert not at.exception, at.exception
    at.selectbox(key="eval_model").set_value("accurate").run()
    assert not at.exception, at.exception
    assert any("applies its own temperature, 0.90" in c.value for c in at.caption)
    # the ensemble averages each face with its mirror itself, whatever the toggle says, and
    # the page says so and shows its accuracy without the mirror view beside it
    assert any("already averages each face with its mirror image" in c.value for c in at.caption)
    metrics = {m.label: m.value for m in at.metric}
    assert "Accuracy (TTA)" in metrics and "Accuracy without TTA" in metrics
    # calibration before and after its own temperature, not one fitted on top of it
    assert "ECE before its temperature" in metrics and "ECE at its temperature 0.90" in metrics
    at.toggle(key="eval_tta").set_value(True).run()
    assert not at.exception, at.exception
    assert {m.label: m.value for m in at.metric} == metrics
    # a cell with a face in it, then Grad-CAM's reason for an ensemble
    from fer_core.backends import open_face_model
    from fer_core.data import load_dataset
    from fer_core.labels import EMOTIONS

    images, labels = load_dataset("demo").split("PublicTest")
    predicted = open_face_model(shipped / "accurate.ensemble.json").predict(images[:1])
    at.selectbox(key="eval_true").set_value(EMOTIONS[int(labels[0])])
    at.selectbox(key="eval_pred").set_value(EMOTIONS[int(predicted.argmax())]).run()
    assert any("is an ensemble" in i.value for i in at.info)
    at.toggle(key="eval_tta").set_value(False)
    at.selectbox(key="eval_compare").set_value("default").run()
    assert not at.exception, at.exception
    # A mirrors every face and plain default does not: the page says so
    assert any(c.value.startswith("A averages each face") for c in at.caption)
    failures = at.dataframe[3].value  # after the metrics, the summary and the F1 tables
    assert list(failures.index) == list(EMOTIONS)
    assert set(failures.columns) == {"A mistaken for", "A share", "B mistaken for", "B share"}

"""AppTest of app_pages/3_Evaluate.py with a tiny run in a temporary runs folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import fer_core  # noqa: F401  (CPU flags before TensorFlow loads)
from fer_core.labels import EMOTIONS

PAGE = str(Path(__file__).resolve().parents[1] / "app_pages" / "3_Evaluate.py")
TIMEOUT = 120


@pytest.fixture
def env(fer_dirs, monkeypatch, tmp_path):
    from tiny_run import make_tiny_run

    fer_dirs.default_model()  # none shipped: only the two runs
    monkeypatch.chdir(tmp_path)  # no data/fer2013.csv here: the demo set is active
    root = fer_dirs.runs
    return make_tiny_run(root, "first"), make_tiny_run(root, "second"), root


def _chart_z(at: AppTest, index: int = 0) -> np.ndarray:
    spec = json.loads(at.get("plotly_chart")[index].proto.spec)
    return np.asarray(spec["data"][0]["z"], dtype=float)


def test_page_shows_metrics_heatmap_and_gallery(env):
    first, second, _ = env
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    assert at.selectbox(key="eval_split").value == "PublicTest"
    chosen = at.selectbox(key="eval_model").value
    assert chosen in (first.id, second.id)
    assert any("Synthetic demo set" in w.value for w in at.warning)
    # the heatmap draws the confusion matrix written to the run folder; rows sum to support
    run_dir = first.dir if chosen == first.id else second.dir
    meta = json.loads((run_dir / "eval" / "PublicTest.json").read_text())
    cm = np.asarray(meta["metrics"]["confusion"])
    np.testing.assert_array_equal(_chart_z(at), cm)
    support = [meta["metrics"]["per_class"][e]["support"] for e in EMOTIONS]
    np.testing.assert_array_equal(cm.sum(axis=1), support)
    table = at.dataframe[0].value
    assert list(table["support"]) == support
    # row-normalised view: each row with support sums to 100 %
    at.radio(key="eval_cm_mode").set_value("row %").run()
    pct = _chart_z(at)
    np.testing.assert_allclose(pct.sum(axis=1)[np.asarray(support) > 0], 100.0)
    # a cell with faces in it: the gallery and a Grad-CAM image appear
    t, p = np.unravel_index(np.argmax(cm), cm.shape)
    at.selectbox(key="eval_true").set_value(EMOTIONS[t])
    at.selectbox(key="eval_pred").set_value(EMOTIONS[p]).run()
    assert not at.exception, at.exception
    assert any(f"**{cm[t, p]:,}** faces" in md.value for md in at.markdown)
    assert at.selectbox(key="eval_cam_face").options
    gallery = min(int(cm[t, p]), 24)
    assert len(at.image) == gallery + 2  # the gallery, then the face and its Grad-CAM
    at.selectbox(key="eval_cam_class").set_value(EMOTIONS[(p + 1) % 7]).run()
    assert not at.exception, at.exception
    captions = [c for img in at.image for c in img.captions]
    assert any(c.startswith(f"Grad-CAM for {EMOTIONS[(p + 1) % 7]}") for c in captions)


def test_tta_and_compare(env):
    first, second, _ = env
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    at.selectbox(key="eval_model").set_value(first.id)
    at.toggle(key="eval_tta").set_value(True).run()
    assert not at.exception, at.exception
    labels = [m.label for m in at.metric]
    assert "Accuracy (TTA)" in labels and "Accuracy without TTA" in labels
    at.selectbox(key="eval_compare").set_value(second.id).run()
    assert not at.exception, at.exception
    # same weights in both runs: every difference is zero
    # after the heatmap and the reliability diagram: A's and B's row-normalised confusion
    # side by side, then their difference
    np.testing.assert_allclose(_chart_z(at, 2), _chart_z(at, 3), atol=1e-9)
    diff = _chart_z(at, 4)
    np.testing.assert_allclose(diff, 0.0, atol=1e-9)
    summary = at.dataframe[1].value
    np.testing.assert_allclose(summary["B - A"], 0.0, atol=1e-9)
    failures = at.dataframe[3].value
    assert list(failures["A mistaken for"]) == list(failures["B mistaken for"])


def _always(run, emotion: str) -> None:
    """Make a run's best weights name `emotion` for every face (a large bias on its output)."""
    from fer_core.models import load_model

    model = load_model(run.best_model_path)
    dense = [layer for layer in model.layers if layer.weights][-1]
    kernel, bias = dense.get_weights()
    bias[EMOTIONS.index(emotion)] += 1e3
    dense.set_weights([kernel, bias])
    model.save(run.best_model_path)


def test_compare_tells_the_two_models_apart(env):
    """B names every face happy: its confusion, the difference and the failures table show
    B's mistakes, not A's."""
    first, second, _ = env
    _always(second, "happy")
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    at.selectbox(key="eval_model").set_value(first.id).run()
    at.selectbox(key="eval_compare").set_value(second.id).run()
    assert not at.exception, at.exception
    a, b, diff = _chart_z(at, 2), _chart_z(at, 3), _chart_z(at, 4)
    happy = EMOTIONS.index("happy")
    assert np.all(np.delete(b, happy, axis=1)[b.sum(axis=1) > 0] == 0)  # B: one column
    assert np.delete(a, happy, axis=1).sum() > 0  # A spreads its answers
    np.testing.assert_allclose(diff, b - a, atol=1e-6)
    failures = at.dataframe[3].value
    others = [e for e in EMOTIONS if e != "happy"]
    assert set(failures.loc[others, "B mistaken for"]) == {"happy"}
    assert (failures.loc[others, "B share"] == 1.0).all()


def test_no_runs_says_what_to_do(fer_dirs):
    fer_dirs.default_model()
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert "No model to evaluate yet" in at.info[0].value


def test_an_uploaded_onnx_model_is_evaluated_like_its_keras_source(env, tmp_path):
    """A .onnx upload becomes the chosen model; its confusion matrix is its Keras source's,
    and Grad-CAM says it needs the .keras file."""
    from fer_core.export import export_file

    first, _, _ = env
    upload = export_file(first.best_model_path, tmp_path / "mine.onnx")
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    at.file_uploader(key="eval_model_file").set_value(
        ("mine.onnx", upload.read_bytes(), "application/octet-stream"))
    at.run()
    assert not at.exception, at.exception
    onnx_spec = at.selectbox(key="eval_model").value
    assert Path(onnx_spec).suffix == ".onnx"
    ours = _chart_z(at)
    at.selectbox(key="eval_model").set_value(first.id).run()
    np.testing.assert_array_equal(ours, _chart_z(at))
    at.selectbox(key="eval_model").set_value(onnx_spec).run()
    cm = ours.astype(int)
    t, p = np.unravel_index(np.argmax(cm), cm.shape)
    at.selectbox(key="eval_true").set_value(EMOTIONS[t])
    at.selectbox(key="eval_pred").set_value(EMOTIONS[p]).run()
    assert not at.exception, at.exception
    assert any("Grad-CAM is not available" in i.value for i in at.info)


def test_calibration_tab_shows_the_ece_before_and_after_a_fitted_temperature(env):
    from fer_core import calibration

    first, _, _ = env
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    at.selectbox(key="eval_model").set_value(first.id).run()
    assert not at.exception, at.exception
    cached = np.load(next((first.dir / "eval").glob("PublicTest*.npz")))
    probs, labels = cached["probs"], cached["labels"]
    fitted = calibration.calibrate(probs, labels)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Expected calibration error"] == f"{fitted.ece_before:.3f}"
    assert (metrics[f"ECE at a fitted temperature {fitted.temperature:.2f}"]
            == f"{fitted.ece_after:.3f}")
    assert any("temperature of" in c.value for c in at.caption)
    spec = json.loads(at.get("plotly_chart")[1].proto.spec)
    names = [trace["name"] for trace in spec["data"]]
    assert names[0] == "perfectly calibrated" and len(names) == 3
    assert names[1] == f"as trained (ECE {fitted.ece_before:.3f})"


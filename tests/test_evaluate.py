"""Tests of fer_core.evaluate: metrics by hand, predictions, TTA, compare, mistakes, cache."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

import fer_core  # noqa: F401  (CPU flags before TensorFlow loads)
from fer_core import evaluate as ev
from fer_core.files import file_sha256
from fer_core.labels import EMOTIONS, NUM_CLASSES
from tiny_run import demo

NAMES = ("a", "b", "c", "d", "e")
# rows = true, columns = predicted. "c" never appears (row of zeros) but is predicted once;
# "d" appears twice but is never predicted (column of zeros); "e" neither appears nor is
# predicted.
HAND_CM = np.array([
    [3, 1, 0, 0, 0],
    [1, 2, 0, 0, 0],
    [0, 0, 0, 0, 0],
    [1, 0, 1, 0, 0],
    [0, 0, 0, 0, 0],
])


def test_metrics_from_hand_computed_confusion():
    m = ev.metrics_from_confusion(HAND_CM, NAMES)
    by = {c.name: c for c in m.per_class}
    assert m.accuracy == pytest.approx(5 / 9)
    assert by["a"].precision == pytest.approx(3 / 5)
    assert by["a"].recall == pytest.approx(3 / 4)
    assert by["a"].f1 == pytest.approx(2 / 3)  # 2 * .6 * .75 / 1.35
    assert by["b"].precision == pytest.approx(2 / 3)
    assert by["b"].recall == pytest.approx(2 / 3)
    assert by["b"].f1 == pytest.approx(2 / 3)
    # never appears: recall 0/0 -> 0.0; predicted once, wrongly: precision 0.0
    assert (by["c"].precision, by["c"].recall, by["c"].f1, by["c"].support) == (0.0, 0.0, 0.0, 0)
    assert by["c"].predicted == 1
    # never predicted: precision 0/0 -> 0.0
    assert (by["d"].precision, by["d"].recall, by["d"].f1, by["d"].support) == (0.0, 0.0, 0.0, 2)
    assert by["e"].support == 0 and by["e"].predicted == 0 and by["e"].f1 == 0.0
    # macro-F1 over the classes that occur in labels or predictions (a, b, c, d), not e
    assert m.macro_f1 == pytest.approx((2 / 3 + 2 / 3 + 0 + 0) / 4)
    norm = m.confusion_normalized
    assert np.all(np.isfinite(norm))
    np.testing.assert_allclose(norm[0], [0.75, 0.25, 0, 0, 0])
    np.testing.assert_array_equal(norm[2], np.zeros(5))
    np.testing.assert_allclose(norm.sum(axis=1), [1, 1, 0, 1, 0])


def test_metrics_of_empty_confusion_are_defined():
    m = ev.metrics_from_confusion(np.zeros((NUM_CLASSES, NUM_CLASSES), int))
    assert m.accuracy == 0.0 and m.macro_f1 == 0.0
    assert all(c.precision == c.recall == c.f1 == 0.0 for c in m.per_class)


def test_confusion_matrix_counts_and_validation():
    cm = ev.confusion_matrix([0, 0, 1, 6], [0, 1, 1, 0])
    assert cm.shape == (7, 7) and cm.sum() == 4
    assert cm[0, 0] == 1 and cm[0, 1] == 1 and cm[1, 1] == 1 and cm[6, 0] == 1
    with pytest.raises(ValueError, match="0..6"):
        ev.confusion_matrix([0, 7], [0, 0])
    with pytest.raises(ValueError, match="2 labels but 1 predictions"):
        ev.confusion_matrix([0, 1], [0])


def test_metrics_to_dict_is_json_ready():
    m = ev.metrics_from_confusion(HAND_CM, NAMES)
    d = json.loads(json.dumps(m.to_dict()))
    assert set(d) == {"accuracy", "macro_f1", "per_class", "confusion"}
    assert d["per_class"]["a"]["support"] == 4
    assert d["confusion"] == HAND_CM.tolist()


def _probs(pred: list[int], conf: list[float]) -> np.ndarray:
    p = np.full((len(pred), NUM_CLASSES), 0.0, np.float32)
    for i, (k, c) in enumerate(zip(pred, conf)):
        p[i] = (1 - c) / (NUM_CLASSES - 1)
        p[i, k] = c
    return p


def test_top_mistakes_most_confident_first():
    labels = np.array([0, 0, 0, 0, 1])
    probs = _probs([2, 2, 0, 2, 2], [0.5, 0.9, 0.8, 0.7, 0.95])
    res = ev.result_from_probs(probs, labels)
    got = ev.top_mistakes(res, 0, 2)
    assert [m.index for m in got] == [1, 3, 0]
    assert got[0].confidence == pytest.approx(0.9)
    assert got[0].top3[0] == (EMOTIONS[2], pytest.approx(0.9))
    assert len(got[0].top3) == 3
    assert [m.index for m in ev.top_mistakes(res, 0, 2, k=1)] == [1]
    assert ev.top_mistakes(res, 3, 4) == []


def test_compare_differences():
    labels = np.array([0, 0, 1, 1])
    a = ev.result_from_probs(_probs([0, 1, 1, 0], [0.9] * 4), labels)
    b = ev.result_from_probs(_probs([0, 0, 1, 1], [0.9] * 4), labels)
    c = ev.compare(a, b)
    assert c.accuracy_diff == pytest.approx(0.5)
    assert c.f1_diff["angry"] == pytest.approx(b.per_class[0].f1 - a.per_class[0].f1)
    np.testing.assert_allclose(c.confusion_diff[0, :2], [0.5, -0.5])
    np.testing.assert_allclose(c.confusion_diff.sum(axis=1), 0, atol=1e-12)


def test_split_key_is_file_safe():
    assert ev.split_key("PublicTest") == "PublicTest"
    assert ev.split_key("my data (1).csv.gz") == "my_data_1"
    assert ev.split_key("../../etc") == "etc"
    assert ev.split_key("") == "split"
    assert ev.entry_name("demo", "PublicTest") == "PublicTest"
    assert ev.entry_name("data/fer2013.csv", "Training") == "Training"
    assert ev.entry_name("upload:my faces.csv", "all") == "my_faces_all"


# --- end to end: a tiny trained run on the demo set -----------------------------------------


def test_batched_predictions_match_keras_predict(tiny_run):
    from fer_core.models import load_model

    info, data = tiny_run, demo()
    model = load_model(info.best_model_path)
    images, _ = data.split("Training")
    images = images[:70]  # 70 = 2 batches of 32 + a padded one of 6
    ours = ev.predict_probs(model, images, batch_size=32)
    ref = model.predict(images[..., None].astype(np.float32), verbose=0)
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    flipped = ev.predict_probs(model, images, flip=True, batch_size=32)
    ref_flip = model.predict(images[:, :, ::-1, None].astype(np.float32), verbose=0)
    np.testing.assert_allclose(flipped, ref_flip, atol=1e-5)


def test_tiny_run_end_to_end(tiny_run):
    from fer_core.charts import confusion_matrix_figure
    from fer_core.models import load_model

    info, data = tiny_run, demo()
    images, labels = data.split("PublicTest")
    res = ev.evaluate_cached(info.id, images, labels, split="PublicTest")
    assert res.confusion.sum() == len(labels)
    np.testing.assert_array_equal(res.confusion.sum(axis=1), np.bincount(labels, minlength=7))
    assert [c.support for c in res.per_class] == np.bincount(labels, minlength=7).tolist()
    assert res.accuracy == pytest.approx(np.trace(res.confusion) / len(labels))
    # the heatmap draws exactly the confusion matrix, and percentages that sum to 100 per row
    counts = confusion_matrix_figure(res.confusion).data[0]
    np.testing.assert_array_equal(np.asarray(counts.z), res.confusion)
    pct = np.asarray(confusion_matrix_figure(res.confusion, normalized=True).data[0].z)
    np.testing.assert_allclose(pct.sum(axis=1), 100.0)
    np.testing.assert_array_equal(np.asarray(counts.customdata)[..., 0], res.confusion)
    # the same numbers as evaluating the loaded model directly
    direct = ev.evaluate_model(load_model(info.best_model_path), images, labels)
    np.testing.assert_array_equal(direct.confusion, res.confusion)
    # files in the run folder
    meta = json.loads((info.dir / "eval" / "PublicTest.json").read_text())
    assert meta["metrics"]["confusion"] == res.confusion.tolist()
    assert meta["n"] == len(labels) and meta["run"] == info.id
    assert (info.dir / "eval" / "PublicTest.npz").is_file()


def test_cache_hit_needs_no_model_and_tta_adds_the_flip(tiny_run, fer_dirs, monkeypatch):
    import fer_core.models

    info, data = tiny_run, demo()
    images, labels = data.split("PrivateTest")
    first = ev.evaluate_cached(info.id, images, labels, split="PrivateTest")
    with np.load(info.dir / "eval" / "PrivateTest.npz") as z:
        assert "probs_flip" not in z.files

    def no_load(path):
        raise AssertionError("cache hit expected, but the model was loaded")

    monkeypatch.setattr(fer_core.models, "load_model", no_load)
    again = ev.evaluate_cached(info.id, images, labels, split="PrivateTest")
    np.testing.assert_array_equal(again.probs, first.probs)
    monkeypatch.undo()  # (fer_dirs too: its runs folder is set again)
    monkeypatch.setenv("FER_RUNS_DIR", str(fer_dirs.runs))
    tta = ev.evaluate_cached(info.id, images, labels, split="PrivateTest", tta=True)
    assert tta.tta and tta.accuracy_without_tta == pytest.approx(first.accuracy)
    with np.load(info.dir / "eval" / "PrivateTest.npz") as z:
        np.testing.assert_allclose((z["probs"] + z["probs_flip"]) / 2, tta.probs, atol=1e-6)
    meta = json.loads((info.dir / "eval" / "PrivateTest.json").read_text())
    assert meta["metrics_tta"]["accuracy"] == pytest.approx(tta.accuracy)


def test_changed_data_or_model_invalidates_the_cache(tiny_run, monkeypatch):
    import fer_core.models

    info, data = tiny_run, demo()
    images, labels = data.split("PublicTest")
    ev.evaluate_cached(info.id, images, labels, split="PublicTest")
    calls = []
    real_load = fer_core.models.load_model
    monkeypatch.setattr(fer_core.models, "load_model", lambda p: calls.append(p) or real_load(p))
    changed = images.copy()
    changed[0] = 255 - changed[0]
    ev.evaluate_cached(info.id, changed, labels, split="PublicTest")
    assert len(calls) == 1, "changed images must miss the cache"
    # a changed model file (here: the same weights saved again, so different bytes) misses too
    model = real_load(info.best_model_path)
    model.save(info.best_model_path)
    ev.evaluate_cached(info.id, changed, labels, split="PublicTest")
    assert len(calls) == 2


def test_non_run_model_caches_under_cache_dir(fer_dirs, tmp_path):
    from tiny_run import model_file

    data = demo()
    images, labels = data.split("PublicTest")
    path = tmp_path / "copy.keras"
    path.write_bytes(model_file().read_bytes())
    res = ev.evaluate_cached(str(path), images, labels, split="PublicTest")
    entry = fer_dirs.cache / "eval" / file_sha256(path)[:16] / "PublicTest.json"
    assert entry.is_file()
    assert json.loads(entry.read_text())["metrics"]["accuracy"] == pytest.approx(res.accuracy)
    with pytest.raises(ValueError, match="unknown model"):
        ev.evaluate_cached("no-such-run", images, labels, split="PublicTest")



# ============================================================ poisoned caches


def _poison(eval_dir: Path, how: str) -> None:
    npz = next(eval_dir.glob("*.npz"))
    if how == "empty":
        npz.write_bytes(b"")
    elif how == "truncated":
        npz.write_bytes(npz.read_bytes()[: npz.stat().st_size // 2])
    elif how == "garbage":
        npz.write_bytes(os.urandom(4096))
    elif how == "folder":
        npz.unlink()
        npz.mkdir()
    elif how == "pickle":
        npz.write_bytes(b"\x80\x04\x95" + os.urandom(64))
    elif how == "wrong shape":
        np.savez_compressed(npz, probs=np.zeros((3, 7), np.float32))
    elif how == "garbage json":
        next(eval_dir.glob("*.json")).write_bytes(b"\xff\x00 not json")


@pytest.mark.parametrize("how", ["empty", "truncated", "garbage", "folder", "pickle",
                                 "wrong shape", "garbage json"])
def test_a_damaged_eval_cache_is_a_miss(tiny_run, how) -> None:
    """Poisoned caches: an empty, truncated, garbage or mis-shaped eval/*.npz beside an
    intact .json is recomputed (and rewritten) instead of failing every later evaluation."""

    from fer_core import evaluate as ev

    info = tiny_run
    images, labels = demo().split("PublicTest")
    first = ev.evaluate_cached(info.id, images, labels, split="PublicTest", tta=True)
    _poison(info.dir / "eval", how)
    again = ev.evaluate_cached(info.id, images, labels, split="PublicTest", tta=True)
    np.testing.assert_allclose(again.probs, first.probs, atol=1e-6)
    third = ev.evaluate_cached(info.id, images, labels, split="PublicTest", tta=True)
    np.testing.assert_allclose(third.probs, first.probs, atol=1e-6)


def test_cache_writes_are_best_effort(tiny_run) -> None:
    """Poisoned caches: `eval/` being a file (or unwritable) does not fail an evaluation
    whose predictions were computed; no temporary file is left behind."""

    from fer_core import evaluate as ev

    info = tiny_run
    images, labels = demo().split("PublicTest")
    (info.dir / "eval").rmdir()
    (info.dir / "eval").write_text("not a folder")
    result = ev.evaluate_cached(info.id, images, labels, split="PublicTest")
    assert len(result.labels) == len(labels)
    (info.dir / "eval").unlink()
    (info.dir / "eval").mkdir()
    os.chmod(info.dir / "eval", 0o500)
    try:
        assert ev.evaluate_cached(info.id, images, labels, split="PublicTest").accuracy == \
            result.accuracy
    finally:
        os.chmod(info.dir / "eval", 0o700)
    assert not [p for p in info.dir.rglob("*") if ".tmp" in p.name]


"""Issue 12, Evaluate page: what a score on the demo set means, what Compare needs, run
labels that fit, and faces named by their dataset row as on the Dataset page."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import fer_core  # noqa: F401  (CPU flags before TensorFlow loads)
from fer_core import catalog, eval_report
from fer_core.data import load_dataset
from fer_core.display import row_name

PAGE = str(Path(__file__).resolve().parents[1] / "app_pages" / "3_Evaluate.py")
TIMEOUT = 120


@pytest.fixture
def one_run(tmp_path, monkeypatch, fer_dirs):
    """One finished run (trained on the demo set), no shipped model, the demo set active."""
    from tiny_run import make_tiny_run

    info = make_tiny_run(fer_dirs.runs, "only")
    fer_dirs.default_model()
    monkeypatch.chdir(tmp_path)
    return info


def test_demo_set_note_says_whether_the_model_knows_the_demo_set() -> None:
    own = eval_report.demo_set_note("demo")
    real = eval_report.demo_set_note(None)
    assert "trained on too" in own and "real faces" in own
    assert "does not transfer" in real and "near chance" in real
    assert eval_report.demo_set_note("data/fer2013.csv") == real


def test_unnamed_run_is_labelled_by_its_id_once(one_run) -> None:
    for name in ("config.json", "status.json"):  # a run started without a name
        path = one_run.dir / name
        path.write_text(json.dumps({**json.loads(path.read_text()), "name": ""}))
    ref = catalog.resolve(one_run.id)
    assert ref.label == f"run {one_run.id}"  # the id names the architecture already
    assert ref.trained_on == "demo"


def test_demo_note_compare_message_and_row_numbering(one_run) -> None:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    assert at.selectbox(key="eval_model").options == [f"run only · fernet ({one_run.id})"]
    notes = [i.value for i in at.info]
    assert eval_report.demo_set_note("demo") in notes  # next to the accuracy
    assert any("Comparing needs a second model" in n for n in notes)
    assert at.selectbox(key="eval_compare").disabled

    rows = load_dataset("demo").rows("PublicTest")
    names = {row_name(r) for r in rows}
    cam = at.selectbox(key="eval_cam_face")
    assert cam.options and set(cam.options) <= names  # the Dataset page's numbering
    gallery = [c.value.split("\n")[0].strip() for c in at.caption if c.value.startswith("row ")]
    assert gallery and set(gallery) <= names
    captions = [c for img in at.image for c in img.captions]
    assert row_name(rows[cam.value]) in captions  # the Grad-CAM face is named the same way

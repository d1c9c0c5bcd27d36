"""The Dataset page under AppTest: demo set, a small generated CSV, bad files, splitting."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from fer_core.data import load_dataset
from fer_core.labels import EMOTIONS, SPLITS

PAGE = str(Path(__file__).resolve().parents[1] / "app_pages" / "1_Dataset.py")


pytestmark = pytest.mark.usefixtures("fer_dirs")


@pytest.fixture
def small_csv(write_csv):
    """`small_csv(name, *, usage=True, bad_rows=0, n=42)`: random faces in unequal classes,
    with `bad_rows` rows of three pixels at the end."""

    def write(name: str, *, usage: bool = True, bad_rows: int = 0, n: int = 42) -> Path:
        rng = np.random.default_rng(7)
        images = np.array([rng.integers(0, 256, 2304) for _ in range(n)])
        labels = [(i * 3) % 7 if i % 5 else 3 for i in range(n)]  # unequal classes
        splits = [SPLITS[i * 3 // n] for i in range(n)] if usage else None
        bad = ["1,5 6 7" + (",Training" if usage else "")] * bad_rows
        return write_csv(name, images, labels, splits, extra_lines=bad)

    return write


def _chart_counts(at: AppTest) -> dict[str, dict[str, int]]:
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    return {trace["name"]: dict(zip(trace["x"], trace["y"])) for trace in spec["data"]}


def _use_path(at: AppTest, path: Path) -> AppTest:
    at.radio(key="dataset_kind").set_value("Path on this machine").run()
    at.text_input(key="dataset_path").input(str(path))
    next(b for b in at.button if b.label == "Use this dataset").click()
    return at.run()


def test_demo_set_by_default() -> None:
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    assert not at.error
    assert any("Synthetic demo set" in w.value for w in at.warning)  # labelled synthetic
    assert _chart_counts(at) == load_dataset("demo").counts()
    text = " ".join(m.value for m in at.markdown)
    assert "Imbalance" in text and "the smallest, *disgust*" in text
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["PublicTest in Training"] != "0"  # the demo's planted leak
    assert int(metrics["Near-blank"]) > 0


def test_small_csv_chart_equals_class_counts(small_csv) -> None:
    path = small_csv("small.csv")
    at = _use_path(AppTest.from_file(PAGE, default_timeout=60).run(), path)
    assert not at.exception and not at.error
    expected = load_dataset(path).counts()
    assert _chart_counts(at) == expected
    assert expected["Training"]["happy"] > expected["Training"]["angry"]
    assert not any("Synthetic" in w.value for w in at.warning)
    # Another split and a reshuffle redraw without errors.
    at.selectbox(key="dataset_split").set_value("PublicTest").run()
    at.button(key="sample_reshuffle").click().run()
    assert not at.exception and at.number_input(key="sample_seed").value == 1


def test_bad_file_shows_the_error_then_skips(small_csv) -> None:
    path = small_csv("bad.csv", bad_rows=2)
    at = _use_path(AppTest.from_file(PAGE, default_timeout=60).run(), path)
    assert not at.exception
    assert "bad.csv, row 44, column 'pixels': 3 pixel values" in at.error[0].value
    assert "2 bad rows in all" in at.error[0].value
    at.checkbox(key="dataset_skip_bad").check().run()
    assert not at.exception and not at.error
    assert any("Skipped 2 bad rows" in w.value for w in at.warning)
    assert sum(sum(c.values()) for c in _chart_counts(at).values()) == 42


def test_not_a_csv_keeps_the_app_running(tmp_path) -> None:
    junk = tmp_path / "notes.csv"
    junk.write_text("hello world\n")
    at = _use_path(AppTest.from_file(PAGE, default_timeout=60).run(), junk)
    assert not at.exception
    assert "missing columns 'emotion' and 'pixels'" in at.error[0].value
    at.radio(key="dataset_kind").set_value("Demo set (synthetic)").run()
    assert not at.exception and not at.error


def test_csv_without_usage_can_be_split(small_csv) -> None:
    path = small_csv("nousage.csv", usage=False, n=70)
    at = _use_path(AppTest.from_file(PAGE, default_timeout=60).run(), path)
    assert not at.exception
    assert list(_chart_counts(at)) == ["Training"]
    at.button(key="split_apply").click().run()
    assert not at.exception
    counts = _chart_counts(at)
    assert list(counts) == list(SPLITS)
    assert sum(sum(c.values()) for c in counts.values()) == 70
    assert set(counts["Training"]) == set(EMOTIONS)

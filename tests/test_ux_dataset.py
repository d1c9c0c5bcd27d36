"""Issue 12, Dataset page: short quality labels, bar text that never runs together, one
picture per group of identical faces (near-blank ones once), one numbering of faces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from fer_core import charts, quality
from fer_core.data import load_dataset
from fer_core.display import row_name
from fer_core.labels import EMOTIONS

PAGE = str(Path(__file__).resolve().parents[1] / "app_pages" / "1_Dataset.py")
LABEL_CHARS = 26  # a metric label this long fits one of four columns on a laptop screen


@pytest.fixture(autouse=True)
def _env(fer_dirs) -> None:
    """Private runs and cache folders (tests/conftest.py)."""


def test_bar_text_is_the_share_inside_and_hidden_where_it_does_not_fit() -> None:
    counts = {"Training": {e: 100 * (i + 1) for i, e in enumerate(EMOTIONS)},
              "PublicTest": {e: 1 for e in EMOTIONS}}
    fig = charts.class_distribution_figure(counts)
    assert fig.layout.uniformtext.mode == "hide"
    assert fig.layout.uniformtext.minsize >= 8
    for trace in fig.data:
        assert trace.textposition == "inside"  # never above the bar, beside its neighbours
        assert all(t.endswith("%") and "<br>" not in t for t in trace.text)
        assert "%{y:,} faces" in trace.hovertemplate  # the count stays in the hover
    assert fig.data[1].text[0] == f"{100 / 7:.1f}%"


def test_identical_groups_keep_the_order_of_rows() -> None:
    images = np.zeros((6, 48, 48), dtype=np.uint8)
    images[1] = images[4] = 7
    images[3] = 9
    groups = quality.identical_groups(images, np.array([4, 0, 1, 3, 2]))
    assert [g.tolist() for g in groups] == [[4, 1], [0, 2], [3]]
    assert quality.identical_groups(images, np.array([], dtype=np.int64)) == []


def test_a_face_of_a_split_is_named_by_its_row_in_the_dataset() -> None:
    ds = load_dataset("demo")
    rows = ds.rows("PublicTest")
    images, labels = ds.split("PublicTest")
    np.testing.assert_array_equal(ds.images[rows], images)
    np.testing.assert_array_equal(ds.labels[rows], labels)
    assert row_name(np.int64(rows[3])) == f"row {rows[3]}"
    with pytest.raises(KeyError):
        ds.rows("Nope")


def _csv_with_blank_copies(path: Path) -> tuple[Path, list[int], list[int]]:
    """Rows 0-3 one blank face, rows 10 and 20 one ordinary face, the rest distinct noise."""
    rng = np.random.default_rng(3)
    faces = rng.integers(0, 256, (30, 2304))
    faces[[0, 1, 2, 3]] = 0
    faces[20] = faces[10]
    usage = ["Training"] * 15 + ["PublicTest"] * 8 + ["PrivateTest"] * 7
    lines = ["emotion,pixels,Usage"] + [f"{i % 7},{' '.join(map(str, f))},{u}"
                                        for i, (f, u) in enumerate(zip(faces, usage))]
    path.write_text("\n".join(lines) + "\n")
    return path, [0, 1, 2, 3], [10, 20]


def test_quality_metrics_are_short_with_help_and_faces_are_shown_once(tmp_path) -> None:
    path, blank, pair = _csv_with_blank_copies(tmp_path / "copies.csv")
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.radio(key="dataset_kind").set_value("Path on this machine").run()
    at.text_input(key="dataset_path").input(str(path))
    next(b for b in at.button if b.label == "Use this dataset").click()
    at.run()
    assert not at.exception and not at.error

    metrics = {m.label: m for m in at.metric}
    assert len(metrics) == 8  # 3 within, 3 across, conflicts, near-blank
    assert all(len(label) <= LABEL_CHARS for label in metrics), list(metrics)
    assert all(m.help for m in metrics.values())
    assert metrics["Repeats in Training"].value == "3"  # the blank face 4 times
    assert metrics["PublicTest in Training"].value == "1"  # row 20 repeats row 10
    assert metrics["Near-blank"].value == "4"

    captions = [c.value for c in at.caption]
    naming = [c for c in captions if row_name(blank[0]) in c]
    assert len(naming) == 1 and "std 0.0" in naming[0]  # the blank face once, near-blank
    assert all(f"{row_name(r)} ·" in naming[0] for r in blank)
    pair_card = [c for c in captions if f"Training {row_name(pair[0])} ·" in c]
    assert len(pair_card) == 1 and f"PublicTest {row_name(pair[1])} ·" in pair_card[0]

"""The home page (app.py, the frame, opens app_pages/0_Home.py): runs with no data, names the
active dataset, survives bad data; the frame's page table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "app.py")


@pytest.fixture(autouse=True)
def _env(fer_dirs, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # no data/fer2013.csv here


def test_no_data_uses_the_labelled_demo_set() -> None:
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception and not at.error
    assert "Synthetic demo set" in at.warning[0].value
    assert {m.label: m.value for m in at.metric} == {
        "Training": "1,124", "PublicTest": "138", "PrivateTest": "138"}
    text = " ".join(m.value for m in at.markdown)
    assert "FER2013_CSV" in text and "data/fer2013.csv" in text


def test_broken_configured_file_offers_the_demo_set(tmp_path, monkeypatch) -> None:
    (tmp_path / "broken.csv").write_text("emotion,pixels\n1,2 3\n")
    monkeypatch.setenv("FER2013_CSV", str(tmp_path / "broken.csv"))
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert "broken.csv, row 2, column 'pixels': 2 pixel values" in at.error[0].value
    at.button(key="home_use_demo").click().run()
    assert not at.exception and not at.error
    assert "Synthetic demo set" in at.warning[0].value


def test_real_configured_file_is_named(write_csv) -> None:
    write_csv("data/fer2013.csv", np.full((14, 48, 48), 7), np.arange(14) % 7, ["Training"] * 14)
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception and not at.warning
    assert "data/fer2013.csv (14 faces)" in at.success[0].value
    at.button(key="home_switch_demo").click().run()
    assert "Synthetic demo set" in at.warning[0].value


def test_frame_lists_every_page_under_its_url() -> None:
    """ui.frame.PAGES names each script in the pages folder once, and each title is the URL
    Streamlit gives the file (/Live, /Train: the browser tests and benchmarks open those)."""
    from streamlit.source_util import page_icon_and_name

    from ui.frame import HOME, PAGES, PAGES_DIR

    root = Path(APP).parent
    assert sorted(p.path for p in PAGES) == sorted(
        str(f.relative_to(root)) for f in (root / PAGES_DIR).glob("*.py"))
    assert HOME.title == "Home" and PAGES[0] is HOME
    for page in PAGES:
        assert page_icon_and_name(root / page.path)[1] == page.title

"""ui.state: every page survives whatever loading the active dataset raises, and the dataset's
cache key follows every image inside a folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import fer_core  # noqa: F401  (CPU flags before TensorFlow loads)
from child_python import REPO
from fer_core.data import load_dataset
from sample_files import ROW, lines_csv, pixels, png

pytestmark = pytest.mark.usefixtures("fer_dirs")


# =========================================== the active dataset on every page


PAGES = {
    "home": REPO / "app.py",
    "train": REPO / "app_pages" / "2_Train.py",
    "evaluate": REPO / "app_pages" / "3_Evaluate.py",
    "dataset": REPO / "app_pages" / "1_Dataset.py",
}


def _page_with(page: str, source: Path, *, skip_bad: bool = False) -> AppTest:
    at = AppTest.from_file(str(PAGES[page]), default_timeout=120)
    at.session_state["active_source"] = str(source)
    at.session_state["active_skip_bad"] = skip_bad
    return at.run()


@pytest.mark.parametrize("page", list(PAGES))
def test_pages_survive_non_ascii_digits_in_the_active_dataset(page, tmp_path,
                                                              monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "odd.csv"
    path.write_bytes(lines_csv(ROW, "3," + pixels(2, "①") + ",Training"))
    at = _page_with(page, path)
    assert not at.exception, at.exception
    assert any("odd.csv, row 3, column 'pixels'" in e.value for e in at.error), at.error


@pytest.mark.parametrize("page", list(PAGES))
@pytest.mark.parametrize("failure", [RuntimeError("a loader bug"), MemoryError()])
def test_pages_catch_any_loader_failure(page, failure, tmp_path, monkeypatch) -> None:
    """Whatever the loader raises, the page says what it was and keeps running."""
    import ui.state

    monkeypatch.chdir(tmp_path)
    path = tmp_path / f"{page}-{type(failure).__name__}.csv"
    path.write_bytes(lines_csv(ROW))

    def broken(*args, **kwargs):
        raise failure

    monkeypatch.setattr(ui.state, "load_dataset", broken)
    at = _page_with(page, path)
    assert not at.exception, at.exception
    expected = "a loader bug" if isinstance(failure, RuntimeError) else "not enough memory"
    assert any(path.name in e.value and expected in e.value for e in at.error), at.error



# ================================================================ dataset key


def _key_app(folder: Path) -> AppTest:
    def script(folder: str) -> None:
        import streamlit as st

        from ui.state import dataset_key, set_active_source

        set_active_source(folder)
        st.write(dataset_key())

    return AppTest.from_function(script, args=(str(folder),), default_timeout=30)


def test_dataset_key_changes_with_any_image_inside_the_folder(tmp_path) -> None:
    happy = tmp_path / "faces" / "train" / "happy"
    happy.mkdir(parents=True)
    (happy / "a.png").write_bytes(png(10))
    app = _key_app(tmp_path / "faces")
    keys = [app.run().markdown[0].value]
    (happy / "b.png").write_bytes(png(20))  # added deep inside: the top folder's stat is the same
    keys.append(app.run().markdown[0].value)
    (happy / "b.png").write_bytes(png(30))  # modified
    os.utime(happy / "b.png", ns=(1, 10**18))
    keys.append(app.run().markdown[0].value)
    (happy / "a.png").unlink()  # removed
    keys.append(app.run().markdown[0].value)
    assert len(set(keys)) == 4, keys
    assert int(load_dataset(tmp_path / "faces").images.mean()) == 30


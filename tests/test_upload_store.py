"""fer_core.data.upload_store: uploads are saved under the cache folder whatever their name;
old unused ones are evicted oldest first within the size budget, never one a run trains on
or another session uses."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from fer_core import data, paths, runs
from fer_core.config import TrainConfig
from fer_core.data import load_dataset, save_upload, upload_store
from sample_files import ROW, lines_csv

pytestmark = pytest.mark.usefixtures("fer_dirs")


# ====================================================================== names


def test_upload_names_cannot_escape_the_cache_folder() -> None:
    """Bad input / uploads: whatever the uploaded file's name, it is saved in cache/uploads."""
    folder = paths.uploads_dir()
    for i, name in enumerate(["../../evil.csv", "/etc/passwd", "..", "", "a/../../b.csv",
                              "C:\\Windows\\x.csv", "\x00nul.csv", "é" * 300]):
        path = save_upload(f"emotion,pixels\n{i},1".encode(), name)
        assert path.parent == folder and path.is_file(), (name, path)
        assert path.resolve().is_relative_to(folder.resolve())



# =================================================================== eviction


def _long_ago(path: Path, days: float) -> None:
    when = time.time() - days * 86400
    os.utime(path, (when, when))


def test_an_upload_a_run_trains_on_is_never_evicted(monkeypatch) -> None:
    """Old UPLOADS_KEEP = 3: a 4th upload from anyone deleted the oldest, even the data of
    a run (which then could not resume)."""
    monkeypatch.setattr(upload_store, "UPLOADS_MAX_BYTES", 1)  # every old, unused upload must go
    trained = save_upload(lines_csv(ROW), "trained.csv")
    runs.create_run(TrainConfig(data=str(trained), epochs=1))
    _long_ago(trained, 60)  # older than UPLOADS_MAX_AGE_SECONDS too
    unused = save_upload(lines_csv(ROW, ROW), "unused.csv")
    _long_ago(unused, 2)
    others = [save_upload(lines_csv(*[ROW] * (i + 3)), f"other{i}.csv") for i in range(4)]
    assert trained.exists() and not unused.exists()
    assert all(p.exists() for p in others)  # used in the last day: another session's data
    assert len(load_dataset(trained)) == 1


def test_an_upload_in_use_by_another_session_is_kept(monkeypatch) -> None:
    monkeypatch.setattr(upload_store, "UPLOADS_MAX_BYTES", 1)
    active = save_upload(lines_csv(ROW), "active.csv")
    _long_ago(active, 3)
    data.mark_used(active)  # what ui.state.load_active_dataset does on every page run
    mtime = active.stat().st_mtime_ns
    for i in range(5):
        save_upload(lines_csv(*[ROW] * (i + 2)), f"f{i}.csv")
    assert active.exists() and active.stat().st_mtime_ns == mtime  # cache keys unchanged


def test_old_unused_uploads_go_oldest_first_within_the_size_budget(monkeypatch) -> None:
    small = len(lines_csv(ROW))
    monkeypatch.setattr(upload_store, "UPLOADS_MAX_BYTES", 3 * small)
    paths = []
    for label in range(4):  # same size, different content, last used 5, 4, 3, 2 days ago
        paths.append(save_upload(lines_csv(f"{label}{ROW[1:]}"), f"f{label}.csv"))
        _long_ago(paths[-1], 5 - label)
    save_upload(lines_csv(f"5{ROW[1:]}"), "new.csv")
    assert [p.exists() for p in paths] == [False, False, True, True]


def test_old_unused_uploads_are_evicted_beyond_the_size_budget(monkeypatch) -> None:
    monkeypatch.setattr(upload_store, "UPLOADS_MAX_BYTES", 40)
    paths = []
    for i in range(4):
        paths.append(data.save_upload(f"emotion,pixels\n{i}".encode(), f"f{i}.csv"))
        two_days_ago = time.time() - 2 * 86400 + i
        os.utime(paths[-1], (two_days_ago, two_days_ago))  # not used lately, oldest first
    data.save_upload(b"emotion,pixels\n3", "f3.csv")  # re-saving marks it used, prunes
    assert [p.exists() for p in paths] == [False, False, True, True]

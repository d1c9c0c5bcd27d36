"""fer_core.files: atomic writes of files and folders, and tail."""

from __future__ import annotations

import os
import stat

import pytest

from fer_core.files import atomic_folder, atomic_path, atomic_write, tail


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_write_replaces_text_and_bytes(tmp_path) -> None:
    target = tmp_path / "status.json"
    atomic_write(target, "first é\n")
    assert target.read_text(encoding="utf-8") == "first é\n"
    atomic_write(target, b"\x00second")
    assert target.read_bytes() == b"\x00second"
    assert os.listdir(tmp_path) == ["status.json"]  # no temporary left behind


def test_atomic_write_permissions(tmp_path) -> None:
    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "shared", "x")
        atomic_write(tmp_path / "private", "x", mode=0o600)
    finally:
        os.umask(old)
    assert _mode(tmp_path / "shared") == 0o644 and _mode(tmp_path / "private") == 0o600


def test_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch) -> None:
    target = tmp_path / "history.csv"
    target.write_text("old")

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError, match="No space"):
        atomic_write(target, "new")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["history.csv"]


def test_atomic_path_renames_only_on_success(tmp_path) -> None:
    target = tmp_path / "best.keras"
    with atomic_path(target, suffix=".keras") as tmp:
        assert tmp.parent == tmp_path and tmp.name.endswith(".keras") and not tmp.exists()
        tmp.write_text("model")
    assert target.read_text() == "model"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash while saving")
    assert target.read_text() == "model" and os.listdir(tmp_path) == ["best.keras"]


def test_atomic_folder_replaces_the_whole_folder(tmp_path) -> None:
    entry = tmp_path / "entry"
    entry.mkdir()
    (entry / "stale.npy").write_text("old")
    with atomic_folder(entry) as tmp:
        (tmp / "meta.json").write_text("{}")
    assert os.listdir(entry) == ["meta.json"]
    with pytest.raises(OSError), atomic_folder(entry) as tmp:
        (tmp / "images.npy").write_text("part")
        raise OSError("disk full")
    assert os.listdir(entry) == ["meta.json"] and os.listdir(tmp_path) == ["entry"]


def test_tail_keeps_whole_lines_only(tmp_path) -> None:
    path = tmp_path / "job.log"
    path.write_bytes(b"alpha\nbeta\ngamma\n")
    assert tail(path, max_bytes=100) == ["alpha", "beta", "gamma"]
    assert tail(path, max_bytes=100, lines=2) == ["beta", "gamma"]
    assert tail(path, max_bytes=8) == ["gamma"]  # "ta\n" is the end of a cut line
    assert tail(path, max_bytes=11) == ["beta", "gamma"]  # the cut lands on a line start
    assert tail(path, max_bytes=len(b"alpha\nbeta\ngamma\n")) == ["alpha", "beta", "gamma"]
    assert tail(tmp_path / "missing.log", max_bytes=100) == []


def test_tail_of_a_torn_multibyte_character(tmp_path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes("é1\né2\n".encode())
    assert tail(path, max_bytes=4) == ["é2"]
    assert tail(path, max_bytes=6) == ["é2"]  # the torn "é" is in the dropped piece


def test_the_only_writer_reuses_one_temporary_name(tmp_path) -> None:
    target = tmp_path / "last.keras"
    names = set()
    for content in ("a", "b"):
        with atomic_path(target, suffix=".keras", unique=False) as tmp:
            names.add(tmp.name)
            tmp.write_text(content)
    assert names == {".last.keras.tmp.keras"} and target.read_text() == "b"

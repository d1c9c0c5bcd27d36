"""fer_core.data.sources: typed paths that would block, never end or cover the whole disk are
refused quickly, and folder walks are bounded."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from child_python import REPO
from fer_core.data import load_dataset, source_signature, sources
from sample_files import png, raises_data_error

pytestmark = pytest.mark.usefixtures("fer_dirs")


# =============================================================== folder walks


def test_folder_walk_is_bounded(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(sources, "MAX_FOLDER_ENTRIES", 50)
    happy = tmp_path / "big" / "train" / "happy"
    happy.mkdir(parents=True)
    for i in range(60):
        (happy / f"{i}.png").write_bytes(b"")
    err = raises_data_error(lambda: load_dataset(tmp_path / "big"))
    assert str(err).startswith(str(tmp_path / "big")) and "more than 50" in str(err)
    assert source_signature(tmp_path / "big")  # never raises



# =========================================================== paths that block


def _load_in_subprocess(path: str, timeout: float = 30) -> str:
    """load_dataset(path) in a child process, so that a blocking read fails the test."""
    code = ("import sys; from fer_core.data import load_dataset, DataError\n"
            "try:\n    ds = load_dataset(sys.argv[1], skip_bad=True)\n"
            "    print('loaded', len(ds), ds.skipped)\n"
            "except DataError as exc:\n    print('DataError', exc)\n")
    done = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, check=True)
    return done.stdout.strip()


@pytest.mark.skipif(not os.path.exists("/proc/kmsg"), reason="no /proc/kmsg here")
def test_system_files_that_block_are_refused_at_once() -> None:
    start = time.perf_counter()
    out = _load_in_subprocess("/proc/kmsg")
    assert out.startswith("DataError /proc/kmsg:") and "system file" in out
    assert time.perf_counter() - start < 25


def test_devices_fifos_and_links_to_them_never_block(tmp_path) -> None:
    os.mkfifo(tmp_path / "pipe.csv")
    assert "not a regular file" in _load_in_subprocess(str(tmp_path / "pipe.csv"))
    assert "not a regular file" in _load_in_subprocess("/dev/zero")
    happy = tmp_path / "faces" / "train" / "happy"
    happy.mkdir(parents=True)
    (happy / "a.png").write_bytes(png(9))
    os.mkfifo(tmp_path / "pipe.png")
    (happy / "pipe.png").symlink_to(tmp_path / "pipe.png")
    if os.path.exists("/proc/kmsg"):
        (happy / "kmsg.png").symlink_to("/proc/kmsg")  # looks like a regular empty file
    assert _load_in_subprocess(str(tmp_path / "faces")).startswith("loaded 1")


def test_the_whole_disk_is_refused_quickly() -> None:
    start = time.perf_counter()
    err = raises_data_error(lambda: load_dataset("/"))
    assert str(err).startswith("/:") and time.perf_counter() - start < 20
    assert "more than 100,000 files and folders" in str(err)


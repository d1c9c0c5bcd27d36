"""Which dataset is meant, and what of a typed path may be read.

`resolve_source()` says which source is active when none is given. A path a user typed is
checked before anything is read: /proc and /sys, FIFOs, devices and empty or huge files are
refused (`check_path`), files are opened without ever blocking (`open_regular`), and a folder
walk is bounded (`walk_folder`, MAX_FOLDER_ENTRIES). `source_signature` changes whenever the
file, or any image in the folder, does.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
from pathlib import Path

from fer_core import uploads
from fer_core.data.dataset import DataError

DEMO = "demo"
DEFAULT_CSV = "data/fer2013.csv"  # relative to the working directory (the repo root)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".pgm")
MAX_FOLDER_ENTRIES = 100_000  # files and folders walked in an image folder (FER's: ~36,000)
SYSTEM_FOLDERS = ("proc", "sys")  # their files look regular (size 0) but may block or never end


def resolve_source(explicit: str | None = None) -> str:
    """The dataset to use: explicit > $FER2013_CSV > data/fer2013.csv if it exists > "demo"."""
    if explicit:
        return str(explicit)
    env = os.environ.get("FER2013_CSV", "").strip()
    if env:
        return env
    if os.path.exists(DEFAULT_CSV):
        return DEFAULT_CSV
    return DEMO


def source_signature(source: str | os.PathLike) -> str:
    """A cheap string that changes when the file changes, or any file inside the folder is
    added, removed or modified (names, sizes and mtimes; the walk is bounded); "" for a
    missing path or "demo". Never raises: a path that cannot be walked gets a fixed string
    (loading it then says why)."""
    path = Path(source).expanduser()
    try:
        if check_path(path, str(source)):
            return folder_digest(walk_folder(path, str(source)))
        st_ = path.stat()
        return f"{st_.st_size}:{st_.st_mtime_ns}"
    except (OSError, DataError) as exc:
        return "" if isinstance(exc, FileNotFoundError) else f"unreadable:{type(exc).__name__}"


def check_path(path: Path, label: str) -> bool:
    """True for a folder, False for a file that may be read; DataError for what must not be
    opened: a FIFO or device (a read would block or never end), anything under /proc or /sys
    (files that look regular and empty, but /proc/kmsg blocks), an empty or too large file."""
    real = path.resolve()
    if real.parts[1:2] and real.parts[1] in SYSTEM_FOLDERS:
        raise DataError(label, f"{real} is a system file or folder (/{real.parts[1]}), not a "
                        "dataset", count=0)
    st_ = real.stat()
    if stat.S_ISDIR(st_.st_mode):
        return True
    if not stat.S_ISREG(st_.st_mode):
        raise DataError(label, "not a regular file or folder (a pipe or device cannot hold a "
                        "dataset)", count=0)
    if st_.st_size == 0:
        raise DataError(label, "the file is empty", count=0)
    if st_.st_size > uploads.MAX_EXPANDED_BYTES:
        raise DataError(label, f"the file is {uploads.mb(st_.st_size)}, more than the "
                        f"{uploads.mb(uploads.MAX_EXPANDED_BYTES)} this loader reads", count=0)
    return False


def open_regular(path: Path, label: str) -> io.BufferedReader:
    """`path` opened for reading without ever waiting (O_NONBLOCK: a FIFO swapped in since
    the check, or a link to one), and refused unless what was opened is a regular file."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise DataError(label, "not a regular file or folder", count=0)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: Path, label: str) -> bytes:
    with open_regular(path, label) as fh:
        return fh.read(uploads.MAX_EXPANDED_BYTES + 1)


_WALKED_SUFFIXES = (*IMAGE_SUFFIXES, ".csv", ".csv.gz")  # what an image folder load reads


def walk_folder(path: Path, label: str) -> list[tuple[str, int, int]]:
    """(path relative to `path`, size, mtime_ns) of every image or CSV file below it, sorted.
    Linked folders are followed once each. DataError past MAX_FOLDER_ENTRIES entries: a FER
    image folder holds ~36,000 files, while `/` or a home folder would take minutes."""
    top = path.stat()
    files: list[tuple[str, int, int]] = []
    seen, pending, visited = 0, [""], {(top.st_dev, top.st_ino)}
    while pending:
        rel = pending.pop()
        try:
            entries = os.scandir(path / rel)
        except OSError:
            if not rel:
                raise
            continue  # an unreadable or vanished subfolder is skipped, as rglob does
        with entries:
            for entry in entries:
                seen += 1
                if seen > MAX_FOLDER_ENTRIES:
                    raise DataError(label, f"the folder holds more than {MAX_FOLDER_ENTRIES:,} "
                                    "files and folders, far more than a FER image folder "
                                    "(train/<emotion>/*.png): choose the dataset's own folder",
                                    count=0)
                _walk_entry(entry, f"{rel}/{entry.name}" if rel else entry.name, files,
                            pending, visited)
    return sorted(files)


def _walk_entry(entry: os.DirEntry, rel: str, files: list, pending: list, visited: set) -> None:
    try:
        if entry.is_dir():
            info = entry.stat()
            if (info.st_dev, info.st_ino) not in visited:  # a link loop is walked once
                visited.add((info.st_dev, info.st_ino))
                pending.append(rel)
        elif entry.name.lower().endswith(_WALKED_SUFFIXES) and entry.is_file():
            info = entry.stat()
            files.append((rel, info.st_size, info.st_mtime_ns))
    except OSError:
        pass  # vanished while walking (or a dangling link): not a file to load


def folder_digest(files: list[tuple[str, int, int]]) -> str:
    return hashlib.blake2b(json.dumps(files).encode(), digest_size=16).hexdigest()

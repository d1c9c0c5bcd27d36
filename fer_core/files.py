"""Files written atomically, the end of a file read cheaply, and a file's SHA-256.

A reader of a path written here sees the old content or the new, never half of it: the new
content goes to a hidden temporary file (or folder) beside the target, in the same folder so
the rename cannot cross file systems, and `os.replace` puts it in place. A failure removes the
temporary and leaves the old file as it was. Nothing is fsynced (a power cut may lose the
latest write, never tear it).

    atomic_write(run_dir / "status.json", text, mode=0o600)
    with atomic_path(best) as tmp:            # for writers that take a path (Keras)
        model.save(tmp)
    with atomic_folder(entry) as tmp:          # a folder of files, replaced as a whole
        np.save(tmp / "images.npy", images)
    tail(run_dir / "job.log", lines=20, max_bytes=16384)
    file_sha256(model_path)                    # hashed once per file version (size, mtime)
"""

from __future__ import annotations

import functools
import hashlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _temp_name(path: Path, suffix: str, unique: bool = True) -> Path:
    """A hidden name beside `path`; unique: one no other writer picks (pid, random token)."""
    token = f".{os.getpid()}.{secrets.token_hex(4)}" if unique else ""
    return path.with_name(f".{path.name}{token}.tmp{suffix}")


@contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str = "",
                unique: bool = True) -> Iterator[Path]:
    """A temporary path beside `path` (not created) for a writer that takes a path; renamed
    over `path` when the block ends without an exception, removed otherwise. `suffix` ends
    the temporary name (Keras only saves to names ending in `.keras`). `unique=False` is for
    the only writer of `path` (the trainer's checkpoints): one fixed temporary name, so a
    process killed mid-write leaves one stale temporary that the next write replaces, not
    one more each time."""
    path = Path(path)
    tmp = _temp_name(path, suffix, unique)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: str | os.PathLike, data: bytes | str, *, mode: int = 0o666,
                 encoding: str = "utf-8") -> None:
    """Write `data` (text is encoded with `encoding`) to `path` atomically. The temporary
    file is created exclusively with permissions `mode` (less the umask, as `open` does;
    0o600: readable by the owner only, as `tempfile.mkstemp` makes them)."""
    payload = data.encode(encoding) if isinstance(data, str) else data
    with atomic_path(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0),
                     mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)


@contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """A new empty temporary folder beside `path` to fill; when the block ends without an
    exception it replaces `path` (an old folder there is removed first), else it is removed.
    Between the removal and the rename a reader finds no folder, never a half-written one."""
    path = Path(path)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path, ignore_errors=True)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def tail(path: str | os.PathLike, *, max_bytes: int, lines: int | None = None) -> list[str]:
    """The whole lines among the last `max_bytes` bytes of a file (the last `lines` of them
    when given), decoded as UTF-8 with errors replaced; [] when it cannot be read. A line cut
    by the byte limit is left out, so a log or event file of any size costs one small read."""
    try:
        with open(path, "rb") as fh:
            start = max(0, fh.seek(0, os.SEEK_END) - max_bytes - 1)
            fh.seek(start)
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    # Read from one byte before the limit: when it ends a line, the first piece is empty;
    # otherwise it is the cut line. Either way it goes.
    found = text.splitlines()[1:] if start else text.splitlines()
    return found[-lines:] if lines else found


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (a model's identity in cache keys and on export cards),
    computed once per file version: a file rewritten in place (new size or mtime) is hashed
    again."""
    stat = Path(path).stat()
    return _sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    del size, mtime_ns  # only part of the cache key
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


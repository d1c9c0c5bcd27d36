"""Uploaded dataset files kept in `paths.uploads_dir()`, so a dataset can be reloaded by path
after the upload widget is gone (another page, a new session, resuming a run).

Uploads stay while anything may use them: evicted (oldest first) only when no run's config
names them and unused for a day, once they exceed UPLOADS_MAX_BYTES in all or are a month
old. Each can be 290 MB (Kaggle's CSV).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from fer_core import uploads
from fer_core.data.dataset import DataError
from fer_core.files import atomic_write
from fer_core.paths import uploads_dir

UPLOADS_MAX_BYTES = 4 * 2**30
UPLOADS_RECENT_SECONDS = 24 * 3600  # used this recently: kept (another session's dataset)
UPLOADS_MAX_AGE_SECONDS = 30 * 24 * 3600


def save_upload(data: bytes, name: str) -> Path:
    """Keep uploaded bytes as a file in `uploads_dir()`, named by content, and return its path.
    Raises DataError above `uploads.MAX_UPLOAD_BYTES`. The file name is reduced to safe
    characters, so nothing is written outside the folder whatever the name. Other uploads are
    evicted only when nothing uses them (see UPLOADS_MAX_BYTES)."""
    check_upload_size(len(data), f"upload:{name}")
    folder = uploads_dir()
    folder.mkdir(parents=True, exist_ok=True)
    safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in Path(name).name)[-80:]
    path = folder / f"{hashlib.blake2b(data, digest_size=8).hexdigest()}-{safe or 'data'}"
    if not path.exists():
        atomic_write(path, data)
    mark_used(path)
    _prune_uploads(folder, path)
    return path


def mark_used(path: str | os.PathLike) -> None:
    """Record that an upload (a file of uploads_dir(); anything else is left alone) is
    in use now, in its access time: the mtime, part of every cache key, is kept."""
    try:
        path = Path(path).expanduser().resolve()
        if path.parent != uploads_dir().resolve():
            return
        os.utime(path, ns=(time.time_ns(), path.stat().st_mtime_ns))
    except OSError:
        pass  # gone or read-only: eviction then goes by its mtime


def _prune_uploads(folder: Path, keep: Path) -> None:
    """Delete uploads nobody uses, oldest first, while they exceed UPLOADS_MAX_BYTES in all
    or are older than UPLOADS_MAX_AGE_SECONDS. Never `keep`, a file being written (.tmp),
    one used in the last UPLOADS_RECENT_SECONDS, or one a run's config names as its data
    (resuming the run reads it again)."""
    now, total, old = time.time(), 0, []
    for p in folder.iterdir():
        try:
            info = p.stat()
        except OSError:
            continue
        total += info.st_size
        used = max(info.st_atime, info.st_mtime)
        if p != keep and not p.name.endswith(".tmp") and now - used > UPLOADS_RECENT_SECONDS:
            old.append((used, info.st_size, p))
    if not old or (total <= UPLOADS_MAX_BYTES
                   and min(old)[0] >= now - UPLOADS_MAX_AGE_SECONDS):
        return
    in_use = _run_data_paths()
    if in_use is None:
        return
    for used, size, p in sorted(old):
        if total <= UPLOADS_MAX_BYTES and used >= now - UPLOADS_MAX_AGE_SECONDS:
            break
        if p.resolve() not in in_use:
            p.unlink(missing_ok=True)
            total -= size


def _run_data_paths() -> set[Path] | None:
    """The resolved `data` of every run's config (unreadable runs too: their config.json is
    read as plain JSON); None when the runs cannot be listed, so nothing is evicted."""
    from fer_core import runs  # runs imports config only; late, as only eviction needs it

    found = set()
    try:
        for run in runs.list_runs():
            value = run.config.data if run.config else _raw_config_data(run.dir)
            if value:
                found.add(Path(value).expanduser().resolve())
    except (OSError, ValueError):
        return None
    return found


def _raw_config_data(run_dir: Path) -> str | None:
    try:
        value = json.loads((run_dir / "config.json").read_text(encoding="utf-8")).get("data")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def check_upload_size(size: int, label: str, limit: int | None = None) -> None:
    """DataError when an upload of `size` bytes is above `limit` (default
    `uploads.MAX_UPLOAD_BYTES`)."""
    problem = uploads.upload_size_problem(size, limit)
    if problem:
        raise DataError(label, problem, count=0)


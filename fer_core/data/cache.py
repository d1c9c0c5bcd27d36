"""The on-disk parse cache: a dataset loaded once is kept as `.npy` files in
`paths.dataset_cache_dir()/<key>/`, memory-mapped read-only on the next load.

The key covers what identifies the content (a file's resolved path, size and mtime; an
upload's bytes; a folder's walk) and the options (skip_bad); the least recently used entries
beyond CACHE_KEEP are removed. Writing is atomic (`files.atomic_folder`); a failure to write
only costs speed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from fer_core.data.dataset import FerDataset, split_codes
from fer_core.files import atomic_folder
from fer_core.paths import dataset_cache_dir

CACHE_VERSION = 1  # bump when the cached arrays' meaning changes
CACHE_KEEP = 6  # datasets kept in the on-disk cache; the least recently used go first


def file_signature(path: Path) -> list:
    """What identifies a file's content cheaply: resolved path, size and mtime."""
    path = path.resolve()
    st_ = path.stat()
    return [str(path), st_.st_size, st_.st_mtime_ns]


def cache_key(**parts: object) -> str:
    """A short hex key of `parts` (JSON, with the cache version)."""
    text = json.dumps({"version": CACHE_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def cached(key: str, label: str, use_cache: bool, load: Callable[[], FerDataset]) -> FerDataset:
    """Return the cached arrays for `key`, or run `load()` and cache what it returns."""
    folder = dataset_cache_dir() / key
    if use_cache:
        try:
            meta = json.loads((folder / "meta.json").read_text())
            arrays = {n: np.load(folder / f"{n}.npy", mmap_mode="r").view(np.ndarray)
                      for n in ("images", "labels")}
            os.utime(folder / "meta.json")  # marks it recently used
            return FerDataset(
                images=arrays["images"],
                labels=arrays["labels"],
                usage=np.array(meta["split_names"], dtype="<U11")[
                    np.load(folder / "usage.npy")],
                source=label,
                synthetic=meta.get("synthetic", False),
                skipped=meta["skipped"],
                problems=tuple(meta["problems"]),
            )
        except (OSError, ValueError, KeyError):
            pass  # not cached yet (or a broken entry): load and rewrite it
    ds = load()
    if use_cache:
        _write_cache(folder, ds)
    return dataclasses.replace(ds, source=label)


def _write_cache(folder: Path, ds: FerDataset) -> None:
    """Write atomically (a temp folder renamed into place); a failure only costs speed."""
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        with atomic_folder(folder) as tmp:
            names = ds.splits()
            np.save(tmp / "images.npy", np.ascontiguousarray(ds.images))
            np.save(tmp / "labels.npy", ds.labels)
            np.save(tmp / "usage.npy", split_codes(ds.usage, names))
            meta = {"split_names": names, "skipped": ds.skipped, "problems": list(ds.problems),
                    "synthetic": ds.synthetic, "rows": len(ds), "written": time.time()}
            (tmp / "meta.json").write_text(json.dumps(meta))
    except OSError:
        return
    _prune_cache(folder.parent)


def _prune_cache(root: Path) -> None:
    entries = sorted((p for p in root.iterdir() if (p / "meta.json").exists()),
                     key=lambda p: (p / "meta.json").stat().st_mtime, reverse=True)
    for old in entries[CACHE_KEEP:]:
        shutil.rmtree(old, ignore_errors=True)

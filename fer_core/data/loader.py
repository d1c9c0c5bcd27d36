"""`load_dataset(source)`: the one entry point that turns a source ("demo", a path, uploaded
bytes) into a FerDataset, through the on-disk cache. Which reader runs is decided here;
the formats live in `csv_format` and `archives`, the path checks in `sources`.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from fer_core.data import archives, cache, demo, upload_store
from fer_core.data.dataset import DataError, FerDataset, as_data_error
from fer_core.data.sources import DEMO, check_path, folder_digest, walk_folder


def load_dataset(
    source: str | os.PathLike | bytes,
    *,
    name: str | None = None,
    skip_bad: bool = False,
    use_cache: bool = True,
) -> FerDataset:
    """Load a dataset: "demo", a .csv/.csv.gz/.zip or image-folder path, or uploaded bytes
    (with `name`, the uploaded file's name, which tells the format).

    Rows with problems raise `DataError` (naming the first bad row and counting all of them)
    unless `skip_bad`, which drops them and records how many in `skipped` and `problems`.
    A second load of the same file (same size and mtime; same bytes for uploads) comes from
    the on-disk cache (`fer_core.data.cache`). Running out of memory is a DataError too.
    """
    try:
        return _load_source(source, name, skip_bad, use_cache)
    except MemoryError as exc:
        label = f"upload:{name or 'data'}" if isinstance(source, (bytes, bytearray, memoryview)) \
            else str(source)
        raise as_data_error(label, exc) from None


def _load_source(source: str | os.PathLike | bytes, name: str | None, skip_bad: bool,
                 use_cache: bool) -> FerDataset:
    if isinstance(source, str) and source.strip().lower() == DEMO:
        # Cached like a file (keyed by demo.py itself): drawing 1,400 faces takes a second.
        key = cache.cache_key(kind="demo", signature=cache.file_signature(Path(demo.__file__)))
        return cache.cached(key, DEMO, use_cache, demo.make_demo)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        label = f"upload:{name or 'data'}"
        upload_store.check_upload_size(len(data), label)
        key = cache.cache_key(kind="bytes", digest=hashlib.blake2b(data).hexdigest(), name=name,
                              skip_bad=skip_bad)
        return cache.cached(
            key, label, use_cache, lambda: archives.load_bytes(data, name or "", label, skip_bad)
        )
    path = Path(source).expanduser()
    label = str(source)
    if not path.exists():
        hint = " (the word 'demo' selects the synthetic demo set)" if not path.suffix else ""
        raise DataError(label, f"no such file or folder{hint}", count=0)
    try:
        if check_path(path, label):
            files = walk_folder(path, label)
            key = cache.cache_key(kind="path", signature=[str(path.resolve()),
                                                          folder_digest(files)],
                                  skip_bad=skip_bad)
            return cache.cached(key, label, use_cache,
                                lambda: _load_folder(path, label, skip_bad, files))
        upload_store.mark_used(path)
        key = cache.cache_key(kind="path", signature=cache.file_signature(path),
                              skip_bad=skip_bad)
        return cache.cached(key, label, use_cache,
                            lambda: archives.load_file(path, label, skip_bad))
    except OSError as exc:  # unreadable: permissions, a vanished file, an I/O error
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(path) else ""
        raise DataError(label, f"cannot be read: {exc.strerror or exc}{where}", count=0) from None


def _load_folder(path: Path, label: str, skip_bad: bool,
                 walked: list[tuple[str, int, int]]) -> FerDataset:
    """The images among the folder's files (`walked`: `walk_folder(path)`), or its CSV."""
    images = archives.folder_images(walked)
    if images:
        return archives.load_image_folder(path, images, label, skip_bad)
    csvs = sorted(path.glob("*.csv")) + sorted(path.glob("*.csv.gz"))
    if csvs:  # a folder holding fer2013.csv: load that
        return load_dataset(csvs[0], skip_bad=skip_bad)
    raise DataError(label, "the folder holds no images (train/<class>/*.png) and no CSV",
                    count=0)

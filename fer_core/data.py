"""Loading FER2013 into uint8 arrays: Kaggle's CSV, the image-folder edition, the demo set.

`load_dataset(source)` is the one entry point; `resolve_source()` says which source is active
when none is given. Bad input raises `DataError`, whose message names the file, the row (or
image path), the column and the problem, and counts the rows affected.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import os
import re
import shutil
import stat
import tempfile
import time
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from fer_core.labels import EMOTIONS, IMG_SIZE, NUM_PIXELS, SPLITS
from fer_core.paths import REPO_ROOT

DEMO = "demo"
DEFAULT_CSV = "data/fer2013.csv"  # relative to the working directory (the repo root)
CACHE_VERSION = 1  # bump when the cached arrays' meaning changes
CACHE_KEEP = 6  # datasets kept in the on-disk cache; the least recently used go first
# Uploads stay in the cache folder while anything may use them: evicted (oldest first) only
# when no run's config names them and unused for a day, once they exceed the size in all or
# are a month old. Each can be 290 MB (Kaggle's CSV).
UPLOADS_MAX_BYTES = 4 * 2**30
UPLOADS_RECENT_SECONDS = 24 * 3600  # used this recently: kept (another session's dataset)
UPLOADS_MAX_AGE_SECONDS = 30 * 24 * 3600
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".pgm")
# Limits on what a user's file may make the loader hold in memory. FER2013's CSV is ~290 MB
# (~90 MB zipped, 35,887 images in the image-folder edition), far inside all of them.
MAX_UPLOAD_BYTES = 400 * 2**20  # an uploaded file; .streamlit/config.toml's maxUploadSize
MAX_EXPANDED_BYTES = 2**30  # a file read whole, or an archive's content once decompressed
MAX_ARCHIVE_MEMBERS = 200_000  # files in a zip or tar
MAX_COMPRESSION_RATIO = 200  # expanded/compressed size of a zip member above 1 MB: a bomb
MAX_FOLDER_ENTRIES = 100_000  # files and folders walked in an image folder (FER's: ~36,000)
SYSTEM_FOLDERS = ("proc", "sys")  # their files look regular (size 0) but may block or never end


class DataError(ValueError):
    """Bad input data. The message says where (file, row or path, column), what, and how many
    rows are affected (`count`; 0 when the whole file is unusable, e.g. empty)."""

    def __init__(
        self,
        source: str,
        problem: str,
        *,
        row: int | None = None,
        column: str | None = None,
        count: int = 1,
    ) -> None:
        self.source, self.problem, self.row, self.column, self.count = (
            source,
            problem,
            row,
            column,
            count,
        )
        where = [source]
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__(f"{', '.join(where)}: {problem}")


@dataclass(frozen=True, eq=False)
class FerDataset:
    """A loaded dataset: uint8 faces, int64 labels 0..6 and the split name of every row."""

    images: np.ndarray  # uint8 (N, 48, 48)
    labels: np.ndarray  # int64 (N,), index into EMOTIONS
    usage: np.ndarray  # str (N,), split name per row
    source: str  # path, "upload:<name>" or "demo"
    synthetic: bool  # True for the demo set: the UI must label it
    skipped: int = 0  # bad rows skipped when skip_bad=True
    problems: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.labels)

    def splits(self) -> list[str]:
        """Split names present, in SPLITS order first, then any others alphabetically."""
        present = set(np.unique(self.usage).tolist())
        return [s for s in SPLITS if s in present] + sorted(present - set(SPLITS))

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(images, labels) of one split: views when its rows are contiguous, else copies."""
        rows = np.flatnonzero(self.usage == name)
        if len(rows) == 0:
            raise KeyError(f"no split {name!r} in {self.source}; present: {self.splits()}")
        if rows[-1] - rows[0] + 1 == len(rows):
            part = slice(int(rows[0]), int(rows[-1]) + 1)
            return self.images[part], self.labels[part]
        return self.images[rows], self.labels[rows]

    def _sorted_by_split(self) -> FerDataset:
        """The same rows with each split contiguous (SPLITS order), so split() gives views;
        the order within a split is kept. Kaggle's file is already in this order."""
        rank = split_codes(self.usage, self.splits())
        if np.all(rank[:-1] <= rank[1:]):
            return self
        order = np.argsort(rank, kind="stable")
        return dataclasses.replace(
            self, images=self.images[order], labels=self.labels[order], usage=self.usage[order]
        )

    def counts(self) -> dict[str, dict[str, int]]:
        """split -> emotion name -> number of rows (every emotion listed, zeros included)."""
        out: dict[str, dict[str, int]] = {}
        for name in self.splits():
            per_class = np.bincount(self.labels[self.usage == name], minlength=len(EMOTIONS))
            out[name] = {e: int(c) for e, c in zip(EMOTIONS, per_class)}
        return out


def split_codes(usage: np.ndarray, names: list[str] | tuple[str, ...]) -> np.ndarray:
    """int8 position of each row's split in `names` (-1 when absent)."""
    codes = np.full(len(usage), -1, dtype=np.int8)
    for i, name in enumerate(names):
        codes[usage == name] = i
    return codes


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



def cache_dir() -> Path:
    """Folder of the on-disk dataset cache: $FER_CACHE_DIR, default `.cache/` in the repo."""
    return Path(os.environ.get("FER_CACHE_DIR") or REPO_ROOT / ".cache")


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
    the on-disk cache in `cache_dir()`. Running out of memory is a DataError too.
    """
    try:
        return _load_source(source, name, skip_bad, use_cache)
    except MemoryError as exc:
        label = f"upload:{name or 'data'}" if isinstance(source, (bytes, bytearray, memoryview)) \
            else str(source)
        raise as_data_error(label, exc) from None


def as_data_error(source: str, exc: BaseException) -> DataError:
    """`exc`, raised while loading `source`, as the DataError a user is shown: itself when it
    is one, else what it was by name (exhausted memory, a loader bug), never a traceback."""
    if isinstance(exc, DataError):
        return exc
    if isinstance(exc, MemoryError):
        return DataError(source, "not enough memory to load it (FER2013's 290 MB CSV needs "
                         "about 1 GB)", count=0)
    return DataError(source, f"could not be loaded: {type(exc).__name__}: {exc}", count=0)


def _load_source(source: str | os.PathLike | bytes, name: str | None, skip_bad: bool,
                 use_cache: bool) -> FerDataset:
    if isinstance(source, str) and source.strip().lower() == DEMO:
        from fer_core import demo  # demo builds on FerDataset: import late

        # Cached like a file (keyed by demo.py itself): drawing 1,400 faces takes a second.
        key = _cache_key(kind="demo", signature=_file_signature(Path(demo.__file__)))
        return _cached(key, DEMO, use_cache, demo.make_demo)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        label = f"upload:{name or 'data'}"
        check_upload_size(len(data), label)
        key = _cache_key(kind="bytes", digest=hashlib.blake2b(data).hexdigest(), name=name,
                         skip_bad=skip_bad)
        return _cached(
            key, label, use_cache, lambda: _load_bytes(data, name or "", label, skip_bad)
        )
    path = Path(source).expanduser()
    label = str(source)
    if not path.exists():
        hint = " (the word 'demo' selects the synthetic demo set)" if not path.suffix else ""
        raise DataError(label, f"no such file or folder{hint}", count=0)
    try:
        if _check_path(path, label):
            files = _walk_folder(path, label)
            key = _cache_key(kind="path", signature=[str(path.resolve()), _digest(files)],
                             skip_bad=skip_bad)
            return _cached(key, label, use_cache,
                           lambda: _load_image_folder(path, label, skip_bad, files))
        mark_used(path)
        key = _cache_key(kind="path", signature=_file_signature(path), skip_bad=skip_bad)
        return _cached(key, label, use_cache, lambda: _load_file(path, label, skip_bad))
    except OSError as exc:  # unreadable: permissions, a vanished file, an I/O error
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(path) else ""
        raise DataError(label, f"cannot be read: {exc.strerror or exc}{where}", count=0) from None


def split_dataset(
    ds: FerDataset, *, val_fraction: float = 0.1, test_fraction: float = 0.1, seed: int = 0
) -> FerDataset:
    """Split a one-split dataset (a CSV without Usage) into Training/PublicTest/PrivateTest,
    stratified by class, reproducible with `seed`; rows are reordered so splits are contiguous."""
    if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ValueError("val_fraction and test_fraction must be in [0, 1) and sum below 1")
    rng = np.random.default_rng(seed)
    usage = np.full(len(ds), SPLITS[0], dtype="<U11")
    for c in range(len(EMOTIONS)):
        rows = rng.permutation(np.flatnonzero(ds.labels == c))
        n_val, n_test = round(len(rows) * val_fraction), round(len(rows) * test_fraction)
        usage[rows[:n_val]] = SPLITS[1]
        usage[rows[n_val : n_val + n_test]] = SPLITS[2]
    return dataclasses.replace(ds, usage=usage)._sorted_by_split()


def save_upload(data: bytes, name: str) -> Path:
    """Keep uploaded bytes as a file in the cache folder (named by content), so the dataset
    can be reloaded by path after the upload widget is gone (another page, a new session).
    Raises DataError above MAX_UPLOAD_BYTES. The file name is reduced to safe characters, so
    nothing is written outside the cache folder whatever the name. Other uploads are evicted
    only when nothing uses them (see UPLOADS_MAX_BYTES)."""
    check_upload_size(len(data), f"upload:{name}")
    folder = cache_dir() / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in Path(name).name)[-80:]
    path = folder / f"{hashlib.blake2b(data, digest_size=8).hexdigest()}-{safe or 'data'}"
    if not path.exists():
        tmp = path.with_suffix(path.suffix + f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    mark_used(path)
    _prune_uploads(folder, path)
    return path


def mark_used(path: str | os.PathLike) -> None:
    """Record that an upload (a file of cache_dir()/uploads; anything else is left alone) is
    in use now, in its access time: the mtime, part of every cache key, is kept."""
    try:
        path = Path(path).expanduser().resolve()
        if path.parent != (cache_dir() / "uploads").resolve():
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
    """DataError when an upload of `size` bytes is above `limit` (default MAX_UPLOAD_BYTES)."""
    limit = MAX_UPLOAD_BYTES if limit is None else limit
    if size > limit:
        raise DataError(label, f"the upload is {_mb(size)}, more than the {_mb(limit)} allowed",
                        count=0)


def archive_problem(sizes: list[tuple[str, int, int]], *, max_members: int | None = None,
                    max_bytes: int | None = None) -> str | None:
    """Why an archive must not be opened, or None. `sizes`: (name, expanded size, compressed
    size) per member (compressed 0 when unknown). Too many members, too much content in all,
    or a member that expands far more than real data does (a zip bomb) are refused before
    anything is decompressed; zipfile never reads past a member's declared size."""
    max_members = MAX_ARCHIVE_MEMBERS if max_members is None else max_members
    max_bytes = MAX_EXPANDED_BYTES if max_bytes is None else max_bytes
    if len(sizes) > max_members:
        return f"the archive holds {len(sizes):,} files, more than the {max_members:,} allowed"
    total = sum(size for _, size, _ in sizes)
    if total > max_bytes:
        return (f"the archive expands to {_mb(total)}, more than the {_mb(max_bytes)} allowed "
                "(a zip bomb?)")
    for name, size, packed in sizes:
        if size > 2**20 and packed and size > MAX_COMPRESSION_RATIO * packed:
            return (f"{name} expands {size // packed:,} times ({_mb(packed)} to {_mb(size)}), "
                    "far more than real data (a zip bomb?)")
    return None


def _mb(size: int) -> str:
    return f"{size / 2**20:,.1f} MB"


def source_signature(source: str | os.PathLike) -> str:
    """A cheap string that changes when the file changes, or any file inside the folder is
    added, removed or modified (names, sizes and mtimes; the walk is bounded); "" for a
    missing path or "demo". Never raises: a path that cannot be walked gets a fixed string
    (loading it then says why)."""
    path = Path(source).expanduser()
    try:
        if _check_path(path, str(source)):
            return _digest(_walk_folder(path, str(source)))
        st_ = path.stat()
        return f"{st_.st_size}:{st_.st_mtime_ns}"
    except (OSError, DataError) as exc:
        return "" if isinstance(exc, FileNotFoundError) else f"unreadable:{type(exc).__name__}"


def _check_path(path: Path, label: str) -> bool:
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
    if st_.st_size > MAX_EXPANDED_BYTES:
        raise DataError(label, f"the file is {_mb(st_.st_size)}, more than the "
                        f"{_mb(MAX_EXPANDED_BYTES)} this loader reads", count=0)
    return False


def _open_regular(path: Path, label: str) -> io.BufferedReader:
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


def _read_regular(path: Path, label: str) -> bytes:
    with _open_regular(path, label) as fh:
        return fh.read(MAX_EXPANDED_BYTES + 1)


_WALKED_SUFFIXES = (*IMAGE_SUFFIXES, ".csv", ".csv.gz")  # what an image folder load reads


def _walk_folder(path: Path, label: str) -> list[tuple[str, int, int]]:
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


def _digest(files: list[tuple[str, int, int]]) -> str:
    return hashlib.blake2b(json.dumps(files).encode(), digest_size=16).hexdigest()


# --- file formats -----------------------------------------------------------------------


def _load_bytes(data: bytes, name: str, label: str, skip_bad: bool) -> FerDataset:
    """Bytes of a .csv, .csv.gz, .zip or .tar(.gz) (Kaggle ships fer2013.tar.gz)."""
    if name.lower().endswith(".zip") or data[:4] == b"PK\x03\x04":
        return _load_zip(io.BytesIO(data), label, skip_bad)
    if name.lower().endswith((".gz", ".tgz")) or data[:2] == b"\x1f\x8b":
        data = _gunzip(data, label)
    if data[257:262] == b"ustar":
        return _load_tar(data, label, skip_bad)
    return parse_csv_bytes(data, label, skip_bad=skip_bad)


def _load_file(path: Path, label: str, skip_bad: bool) -> FerDataset:
    with _open_regular(path, label) as fh:
        head = fh.read(4)
        fh.seek(0)
        if path.suffix.lower() == ".zip" or head == b"PK\x03\x04":
            return _load_zip(fh, label, skip_bad)
        return _load_bytes(fh.read(MAX_EXPANDED_BYTES + 1), path.name, label, skip_bad)


def _load_tar(data: bytes, label: str, skip_bad: bool) -> FerDataset:
    import tarfile

    try:
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            files = {m.name: m for m in tar.getmembers() if m.isfile() and not _is_junk(m.name)}
            problem = archive_problem([(n, m.size, 0) for n, m in files.items()])
            if problem:
                raise DataError(label, problem, count=0)
            csvs = sorted((n for n in files if n.lower().endswith(".csv")),
                          key=lambda n: (PurePosixPath(n).name.lower() != "fer2013.csv", n))
            if csvs:
                where = f"{label}:{csvs[0]}"
                content = tar.extractfile(files[csvs[0]]).read()
                ds = parse_csv_bytes(content, where, skip_bad=skip_bad)
                return dataclasses.replace(ds, source=label)
            images = sorted(n for n in files if n.lower().endswith(IMAGE_SUFFIXES))
            if not images:
                raise DataError(label, "the archive holds no CSV file and no images", count=0)
            return _decode_images(images, lambda n: tar.extractfile(files[n]).read(), label,
                                  skip_bad)
    except tarfile.TarError as exc:
        raise DataError(label, f"not a readable tar file ({exc})", count=0) from None


def _gunzip(data: bytes, label: str) -> bytes:
    """Decompress gzip bytes, refusing (before it is all in memory) content above
    MAX_EXPANDED_BYTES, or above 1 MB and MAX_COMPRESSION_RATIO times the compressed size:
    the limits `archive_problem` puts on zip members (FER2013's CSV packs 3.4 times)."""
    ratio_limit = max(2**20, MAX_COMPRESSION_RATIO * len(data))
    limit = min(MAX_EXPANDED_BYTES, ratio_limit)
    inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflate.decompress(data, limit + 1)
    except zlib.error as exc:
        raise DataError(label, f"not a readable gzip file ({exc})", count=0) from None
    if len(out) > limit:
        why = (f"more than {MAX_COMPRESSION_RATIO} times its {_mb(len(data))}, far more than "
               "real data" if limit == ratio_limit else "more than this loader reads")
        raise DataError(label, f"the gzip file expands to more than {_mb(limit)} ({why}; a "
                        "gzip bomb?)", count=0)
    if not inflate.eof:
        raise DataError(label, "not a readable gzip file (truncated)", count=0)
    return out


def _load_zip(file: Path | io.BytesIO, label: str, skip_bad: bool) -> FerDataset:
    try:
        with zipfile.ZipFile(file) as zf:
            return _load_zip_members(zf, label, skip_bad)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise DataError(label, f"not a readable zip file ({exc})", count=0) from None


def _load_zip_members(zf: zipfile.ZipFile, label: str, skip_bad: bool) -> FerDataset:
    """The CSV of a zip (fer2013.csv first) or its images; members are read in memory,
    never extracted, so member paths (absolute, `..`) cannot write anywhere."""
    members = [m for m in zf.infolist() if not m.is_dir() and not _is_junk(m.filename)]
    problem = archive_problem([(m.filename, m.file_size, m.compress_size) for m in members])
    if problem:
        raise DataError(label, problem, count=0)
    csvs = [m for m in members if m.filename.lower().endswith((".csv", ".csv.gz"))]
    if csvs:
        # Prefer fer2013.csv when a zip holds several CSVs (Kaggle's bundle adds others).
        csvs.sort(key=lambda m: (PurePosixPath(m.filename).name.lower() != "fer2013.csv",
                                 m.filename))
        member = csvs[0]
        data = zf.read(member)
        where = f"{label}:{member.filename}"
        if member.filename.lower().endswith(".gz"):
            data = _gunzip(data, where)
        return dataclasses.replace(parse_csv_bytes(data, where, skip_bad=skip_bad), source=label)
    images = [m.filename for m in members if m.filename.lower().endswith(IMAGE_SUFFIXES)]
    if not images:
        raise DataError(label, "the zip holds no CSV file and no images", count=0)
    return _decode_images(images, lambda p: zf.read(p), label, skip_bad)


def _load_image_folder(path: Path, label: str, skip_bad: bool,
                       walked: list[tuple[str, int, int]]) -> FerDataset:
    """The images among the folder's files (`walked`: `_walk_folder(path)`), or its CSV."""
    files = [rel for rel, _, _ in walked
             if rel.lower().endswith(IMAGE_SUFFIXES) and not _is_junk(PurePosixPath(rel).name)]
    if not files:
        csvs = sorted(path.glob("*.csv")) + sorted(path.glob("*.csv.gz"))
        if csvs:  # a folder holding fer2013.csv: load that
            return load_dataset(csvs[0], skip_bad=skip_bad)
        raise DataError(label, "the folder holds no images (train/<class>/*.png) and no CSV",
                        count=0)
    return _decode_images(files, lambda p: _read_regular(path / p, label), label, skip_bad)


def _is_junk(name: str) -> bool:
    return "__MACOSX" in name or PurePosixPath(name).name.startswith(".")


def _split_of_folders(paths: list[str]) -> tuple[list[int | None], list[str | None]]:
    """Class and split of each image path: the class is the nearest folder named like an
    emotion (any case); the split is the folder above it: train(ing) -> Training,
    test -> PublicTest (PrivateTest when a val/validation folder is PublicTest), publictest,
    privatetest, val(idation) -> PublicTest; no split folder -> Training."""
    parts = [PurePosixPath(p).parts for p in paths]
    names = {part.lower() for pp in parts for part in pp[:-1]}
    has_val = bool(names & {"val", "valid", "validation"})
    split_names = {
        "train": SPLITS[0], "training": SPLITS[0], "publictest": SPLITS[1],
        "privatetest": SPLITS[2], "val": SPLITS[1], "valid": SPLITS[1],
        "validation": SPLITS[1], "test": SPLITS[2] if has_val else SPLITS[1],
        "testing": SPLITS[2] if has_val else SPLITS[1],
    }
    classes: list[int | None] = []
    splits: list[str | None] = []
    for pp in parts:
        folders = [f.lower() for f in pp[:-1]]
        cls = next((i for i in range(len(folders) - 1, -1, -1) if folders[i] in EMOTIONS), None)
        if cls is None:
            classes.append(None)
            splits.append(folders[-1] if folders else None)
            continue
        classes.append(EMOTIONS.index(folders[cls]))
        above = folders[cls - 1] if cls > 0 else None
        splits.append(split_names.get(above, SPLITS[0]) if above in split_names or cls == 0
                      else SPLITS[0])
    return classes, splits


def _decode_images(paths: list[str], read, label: str, skip_bad: bool) -> FerDataset:
    """Decode image files (any size or colour) to 48x48 grey; class and split from folders."""
    from PIL import Image, UnidentifiedImageError

    classes, splits = _split_of_folders(paths)
    images = np.empty((len(paths), IMG_SIZE, IMG_SIZE), dtype=np.uint8)
    bad: dict[str, list[str]] = {}
    keep = np.zeros(len(paths), dtype=bool)
    for i, (path, cls) in enumerate(zip(paths, classes)):
        if cls is None:
            folder = PurePosixPath(path).parent.name or "(top level)"
            bad.setdefault(f"not in a class folder (found {folder!r}; expected one of "
                           f"{', '.join(EMOTIONS)})", []).append(path)
            continue
        try:
            with Image.open(io.BytesIO(read(path))) as img:
                gray = _gray8(img)
                if gray.size != (IMG_SIZE, IMG_SIZE):
                    gray = gray.resize((IMG_SIZE, IMG_SIZE), Image.Resampling.BILINEAR)
                images[i] = np.asarray(gray, dtype=np.uint8)
            keep[i] = True
        except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError,
                SyntaxError) as exc:
            bad.setdefault(f"unreadable image ({type(exc).__name__})", []).append(path)
    n_bad = int((~keep).sum())
    if n_bad and not skip_bad:
        problem, where = next(iter(bad.items()))
        raise DataError(label, f"{where[0]}: {problem}; {_breakdown(bad)}", count=n_bad)
    if not keep.any():
        raise DataError(label, "no readable images in class folders", count=n_bad)
    problems = tuple(f"skipped {len(v):,} files: {k} (first: {v[0]})" for k, v in bad.items())
    return FerDataset(
        images=images[keep],
        labels=np.array(classes, dtype=object)[keep].astype(np.int64),
        usage=np.array(splits, dtype=object)[keep].astype("<U11"),
        source=label,
        synthetic=False,
        skipped=n_bad,
        problems=problems,
    )._sorted_by_split()


def _gray8(img):
    """8-bit grey of any image. PIL's convert("L") clips 16-bit images to white and float
    ones (0..1) to black: 16-bit is scaled by 1/257 (65535 -> 255), 32-bit integers by their
    type's range, floats by theirs (0..1, else 0..255)."""
    from PIL import Image

    if img.mode not in ("F", "I") and not img.mode.startswith("I;16"):
        return img.convert("L")
    values = np.nan_to_num(np.asarray(img, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    top = values.max(initial=0.0)
    if img.mode == "F":
        scale = 255.0 if top <= 1.0 else 1.0
    else:
        scale = 1.0 if top <= 255 and img.mode == "I" else (
            255 / 65535 if top <= 65535 else 255 / (2**31 - 1))
    return Image.fromarray(np.clip(np.rint(values * scale), 0, 255).astype(np.uint8), "L")


def _breakdown(bad: dict[str, list]) -> str:
    total = sum(len(v) for v in bad.values())
    counts: dict[str, int] = {}
    for problem, paths in bad.items():  # "unreadable image (OSError)" -> "unreadable image"
        counts[problem.split(" (")[0]] = counts.get(problem.split(" (")[0], 0) + len(paths)
    parts = ", ".join(f"{n:,} {kind}" for kind, n in counts.items())
    return f"{total:,} bad in all ({parts}); skip bad rows to load the rest"


# --- the CSV parser ----------------------------------------------------------------------
#
# Kaggle's file is ~290 MB of text: 2,304 space-separated grey levels per row. Parsing it
# token by token in Python takes ~40 s; here each chunk of lines is parsed with whole-array
# numpy operations on the raw bytes (digits are bytes 48..57): a token ends where a digit is
# followed by a non-digit, and its value is built from the (up to three) digits before that.
# The label is the first token of each line, so a good line has exactly 1 + 2,304 tokens.
# Lines that break the fast path's assumptions are checked one by one to name the problem.

_CHUNK_BYTES = 1 << 20  # ~130 lines: the temporaries stay in cache
_PIXEL_TOKENS = NUM_PIXELS
_USAGE_NAMES = {s.lower(): s for s in SPLITS}
_BLANK_BYTES = b" \t\r"  # a line of only these is a blank line
_CHUNK_LINES = 1 << 13  # at most this many lines a chunk: bounds the per-line temporaries
_MIN_ROW_BYTES = 2 * _PIXEL_TOKENS + 1  # "0,0 0 ... 0": a shorter line cannot be a row
_ROW_FIELDS = ("start", "end", "c1", "kind", "label", "tokens", "full", "usage")
_NON_SPACE = re.compile(rb"[^ \t\n\r\x0b\x0c]")
# Problem kinds, in the order a line is blamed for them, with the column each concerns.
_KINDS = {
    "fields": (None, "wrong number of fields"),
    "label": ("emotion", "label not an integer 0-6"),
    "token": ("pixels", "non-numeric pixel values"),
    "count": ("pixels", f"pixel count other than {NUM_PIXELS:,}"),
    "range": ("pixels", "pixel values outside 0-255"),
    "usage": ("Usage", "unknown Usage value"),
}


def parse_csv_bytes(data: bytes, label: str, *, skip_bad: bool = False) -> FerDataset:
    """Parse FER2013 CSV text (`emotion,pixels[,Usage]`, header first) into a FerDataset.

    Without a Usage column every row goes to Training (see `split_dataset`).
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if not data or data.isspace():
        raise DataError(label, "the file is empty", count=0)
    if _looks_utf16(data[:4096]):
        raise DataError(label, "the file is UTF-16 text, not a CSV in UTF-8: save it as UTF-8 "
                        "(or plain ASCII) CSV", count=0)
    if b"\x00" in data[:65536]:
        raise DataError(label, "not a CSV file (binary content)", count=0)
    header_end = data.find(b"\n")
    header_end = len(data) if header_end < 0 else header_end
    try:
        header = data[:header_end].decode("utf-8").strip("\r")
    except UnicodeDecodeError:
        raise DataError(label, "not a CSV file (the first line is not text)", count=0) from None
    try:
        columns = next(csv.reader([header]), [])
    except csv.Error:  # a stray carriage return or NUL: read it as plain comma-separated
        columns = header.split(",")
    keys = [c.strip().lower() for c in columns]
    missing = [c for c in ("emotion", "pixels") if c not in keys]
    if missing:
        n_rows = max(data.count(b"\n"), 1)
        shown = ", ".join(repr(c[:24]) for c in columns[:5]) + (", ..." if len(columns) > 5 else "")
        raise DataError(
            label,
            f"missing column{'s' * (len(missing) > 1)} {' and '.join(map(repr, missing))}: "
            f"expected a header row 'emotion,pixels,Usage', found {shown or 'nothing'} "
            f"(so none of the {n_rows:,} rows can be read)",
            row=1,
            count=n_rows,
        )
    has_usage = "usage" in keys
    if keys != ["emotion", "pixels", "usage"][: len(keys)] or len(keys) < 2:
        data = _canonical_csv(data, label, columns, has_usage)
    return _parse_canonical(data, label, has_usage, skip_bad)


def _looks_utf16(head: bytes) -> bool:
    """Whether a file starts like a FER CSV saved as UTF-16 (some Windows editors do)."""
    head = head[: len(head) // 2 * 2]
    for encoding in ("utf-16", "utf-16-le", "utf-16-be"):
        try:
            text = head.decode(encoding).lower()
        except UnicodeDecodeError:
            continue
        if "emotion" in text and "pixels" in text:
            return True
    return False


def _canonical_csv(data: bytes, label: str, columns: list[str], has_usage: bool) -> bytes:
    """Rewrite a CSV whose columns are in another order (or with extra ones) as
    `emotion,pixels[,Usage]` so the fast parser applies; row numbers are kept. Done chunk by
    chunk (as the fast parser cuts them), so a file of many short lines needs little memory."""
    wanted = {c.strip().lower(): c for c in columns}
    names = [wanted["emotion"], wanted["pixels"]] + ([wanted["usage"]] if has_usage else [])
    body = data.find(b"\n") + 1
    parts = [",".join(names).encode()]
    if body:
        for lo, hi in _chunk_spans(data, np.frombuffer(data, dtype=np.uint8), body):
            piece = data[lo : hi - 1] if data[hi - 1 : hi] == b"\n" else data[lo:hi]
            parts.append(_canonical_lines(data[:body], piece, names, label))
    return b"\n".join(parts) + (b"\n" if body and data.endswith(b"\n") else b"")


def _canonical_lines(header: bytes, piece: bytes, names: list[str], label: str) -> bytes:
    """The lines of `piece` (no final newline) with the columns `names`, in that order."""
    import pandas as pd

    # Blank lines are taken out before pandas (which would read them as rows of empty
    # fields) and put back as blank lines, so the row numbers stay those of the file.
    raw = piece.split(b"\n")
    blank = [not line.strip(_BLANK_BYTES) for line in raw]
    if all(blank):
        return b"\n" * (len(raw) - 1)
    kept = header + b"\n".join(line for line, b in zip(raw, blank) if not b)
    try:
        frame = pd.read_csv(io.BytesIO(kept), usecols=names, dtype=str, keep_default_na=False,
                            skip_blank_lines=False)
    except (ValueError, pd.errors.ParserError) as exc:
        raise DataError(label, f"not a readable CSV file ({str(exc).splitlines()[0]})",
                        count=0) from None
    rows = (_csv_line(row) for row in frame[names].itertuples(index=False, name=None))
    lines = ["" if b else next(rows, "") for b in blank]
    return "\n".join([*lines, *rows]).encode()


def _csv_line(fields: tuple[str, ...]) -> str:
    """Fields joined by commas, those holding a comma quoted (the parser then names them)."""
    return ",".join(f'"{f}"' if "," in f else f for f in fields)


def _parse_canonical(data: bytes, label: str, has_usage: bool, skip_bad: bool) -> FerDataset:
    ncols = 3 if has_usage else 2
    body = data.find(b"\n") + 1
    if (body == 0 or body == len(data)
            or data.endswith(b"\n") and _NON_SPACE.search(data, body) is None):
        raise DataError(label, "no data rows after the header", count=0)
    arr = np.frombuffer(data, dtype=np.uint8)
    with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
        chunks = list(pool.map(lambda s: _parse_chunk(arr, data, s[0], s[1], ncols),
                               _chunk_spans(data, arr, body)))
    lines = {k: np.concatenate([c[k] for c in chunks]) for k in _ROW_FIELDS}
    first_line = np.cumsum([0] + [c["n_lines"] for c in chunks[:-1]])
    line_no = np.concatenate([c["line"] + n for c, n in zip(chunks, first_line)]) + 2
    kind = lines["kind"]
    # Rows whose only fault is odd separators (tabs, quotes inside) are parsed one by one.
    rescued: dict[int, np.ndarray] = {}
    for i in np.flatnonzero(kind == "token").tolist():
        row_pixels = _slow_pixels(data, lines["start"][i], lines["end"][i])
        if row_pixels is not None:
            rescued[i] = row_pixels
            kind[i] = ""
    good = kind == ""
    details = _bad_rows(data, lines, line_no, _dropped_rows(chunks, first_line), ncols)
    if all(c["pixels"] is not None for c in chunks) and not rescued:
        # Good lines are full lines: take their rows of the grids the workers cut.
        in_grid = good[lines["full"]]
        pixels = np.concatenate([c["pixels"] for c in chunks])
        images = pixels if in_grid.all() else pixels[in_grid]
        return _finish(label, images, lines["label"][good], lines["usage"][good], details,
                       skip_bad)
    matrix = _good_rows(data, chunks, lines, good, rescued)
    return _finish(label, np.ascontiguousarray(matrix[:, 1:]), matrix[:, 0],
                   lines["usage"][good], details, skip_bad)


def _chunk_spans(data: bytes, arr: np.ndarray, body: int) -> list[tuple[int, int]]:
    """Chunks of whole lines: about _CHUNK_BYTES each, and at most _CHUNK_LINES lines, so
    the per-line work of a file of short lines stays as small as that of real rows."""
    bounds = [body]
    while bounds[-1] < len(data):
        lo = bounds[-1]
        nxt = data.find(b"\n", lo + _CHUNK_BYTES)
        hi = len(data) if nxt < 0 else nxt + 1
        if data.count(b"\n", lo, hi) > _CHUNK_LINES:
            newlines = np.flatnonzero(arr[lo:hi] == 10)
            bounds.extend((newlines[_CHUNK_LINES - 1 :: _CHUNK_LINES] + lo + 1).tolist())
        if bounds[-1] != hi:
            bounds.append(hi)
    return list(zip(bounds[:-1], bounds[1:]))


def _good_rows(data: bytes, chunks: list[dict], lines: dict[str, np.ndarray], good: np.ndarray,
               rescued: dict[int, np.ndarray]) -> np.ndarray:
    """uint8 (label, 2,304 pixels) of every good line, from the tokens of the kept lines (and
    the one-by-one parse of the rescued ones)."""
    values = np.concatenate([_chunk_values(c) for c in chunks])
    fast = good.copy()
    fast[list(rescued)] = False
    if fast.all():
        matrix = values.reshape(-1, 1 + _PIXEL_TOKENS)
    else:
        matrix = values[np.repeat(fast, lines["tokens"])].reshape(-1, 1 + _PIXEL_TOKENS)
    if not rescued:
        return matrix
    full = np.empty((int(good.sum()), 1 + _PIXEL_TOKENS), dtype=np.uint8)
    full[fast[good]] = matrix
    for j, row in zip(np.flatnonzero(~fast[good]), sorted(rescued)):
        full[j, 0] = int(data[lines["start"][row] : lines["c1"][row]].strip(b' "\r'))
        full[j, 1:] = rescued[row]
    return full


def _chunk_values(chunk: dict) -> np.ndarray:
    """The tokens of a chunk's kept lines in order (rebuilt from the grid when regular)."""
    if chunk["values"] is not None:
        return chunk["values"]
    labels = chunk["first"].astype(np.uint8)[:, None]
    return np.hstack([labels, chunk["pixels"]]).ravel()


def _finish(label: str, pixels: np.ndarray, labels: np.ndarray, usage: np.ndarray,
            details: list[tuple[str, int, int, str]], skip_bad: bool) -> FerDataset:
    """Raise for bad rows (unless skip_bad) and build the dataset from the good ones.
    `details`: (kind, rows, first row, description) per problem kind, first row first."""
    n_bad = sum(n for _, n, _, _ in details)
    if details and not skip_bad:
        k, _, row, detail = details[0]
        summary = ", ".join(f"{n:,} {_KINDS[kk][1]}" for kk, n, _, _ in details)
        raise DataError(
            label,
            f"{detail}; {n_bad:,} bad rows in all ({summary}). "
            "Fix the file, or skip bad rows to load the rest",
            row=row, column=_KINDS[k][0], count=n_bad,
        )
    problems = [f"skipped {n:,} rows with {_KINDS[k][1]} (first: row {row}: {detail})"
                for k, n, row, detail in details]
    if not len(pixels):
        raise DataError(label, "no valid data rows", count=n_bad)
    return FerDataset(
        images=pixels.reshape(-1, IMG_SIZE, IMG_SIZE),
        labels=labels.astype(np.int64),
        usage=usage,
        source=label,
        synthetic=False,
        skipped=n_bad,
        problems=tuple(problems),
    )._sorted_by_split()


def _bad_rows(data: bytes, lines: dict[str, np.ndarray], line_no: np.ndarray,
              dropped: dict[str, tuple[int, int, int, int]],
              ncols: int) -> list[tuple[str, int, int, str]]:
    """(kind, rows, first row, description) per problem kind, the first bad row of the file
    first, from the kept lines and the short lines the workers only counted."""
    details = []
    for k in _KINDS:
        idx = np.flatnonzero(lines["kind"] == k)
        n, first = len(idx), None
        if len(idx):
            first = (int(line_no[idx[0]]), lines["start"][idx[0]], lines["end"][idx[0]])
        if k in dropped:
            n += dropped[k][0]
            if first is None or dropped[k][1] < first[0]:
                first = dropped[k][1:]
        if n:
            details.append((k, n, first[0], _describe(data, first[1], first[2], k, ncols)))
    return sorted(details, key=lambda d: d[2])


def _dropped_rows(chunks: list[dict],
                  first_line: np.ndarray) -> dict[str, tuple[int, int, int, int]]:
    """kind -> (rows, first row, its start, end) of the short bad lines of all chunks."""
    out: dict[str, tuple[int, int, int, int]] = {}
    for chunk, base in zip(chunks, first_line.tolist()):
        for k, (n, line, start, end) in chunk["dropped"].items():
            if k in out:
                out[k] = (out[k][0] + n, *out[k][1:])
            else:
                out[k] = (n, line + base + 2, start, end)
    return out


def _parse_chunk(arr: np.ndarray, data: bytes, lo: int, hi: int, ncols: int) -> dict:
    """Scan and judge the lines of arr[lo:hi]. Only lines long enough to be a row are kept
    (with their tokens); blank lines are dropped and short ones (always bad) only counted,
    so what is kept follows the rows a file can hold, not its number of lines."""
    s = _scan_chunk(arr, lo, hi, ncols)
    n = len(s["start"])
    tokens = s["seg"].sum(axis=1)
    values = s["values"]
    first = (values[np.minimum(s["first"], len(values) - 1)] if len(values)
             else np.zeros(n, dtype=np.uint16))
    over_line = np.searchsorted(s["first"], s["over"], side="right") - 1
    at_first = s["over"] == s["first"][over_line]
    over_label, over_pixel = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    over_label[over_line[at_first]] = True
    over_pixel[over_line[~at_first]] = True
    kind = np.full(n, "", dtype="<U6")

    def blame(mask: np.ndarray, name: str) -> None:
        kind[mask & (kind == "")] = name

    blame(s["commas"] != ncols - 1, "fields")
    blame((s["seg"][:, 0] != 1) | s["bad_label_char"] | over_label
          | (first > len(EMOTIONS) - 1), "label")
    blame(s["bad_pixel_char"], "token")
    blame(s["seg"][:, 1] != _PIXEL_TOKENS, "count")
    blame(over_pixel | s["negative_pixel"], "range")
    blank = (tokens == 0) & (s["commas"] == 0) & (s["visible"] == 0)
    long = ~blank & (s["end"] - s["start"] >= _MIN_ROW_BYTES)
    keep = np.flatnonzero(long)
    out = {"n_lines": n, "line": keep, "start": s["start"][keep] + lo,
           "end": s["end"][keep] + lo, "c1": s["c1"][keep] + lo, "kind": kind[keep],
           "label": first[keep], "tokens": tokens[keep],
           "full": tokens[keep] == 1 + _PIXEL_TOKENS}
    out["usage"] = _usage_column(data, out, s["c2"][keep] + lo, ncols)
    out["dropped"] = {}
    short = ~blank & ~long
    for k in np.unique(kind[short]).tolist():
        where = np.flatnonzero(short & (kind == k))
        i = int(where[0])
        out["dropped"][k] = (len(where), i, int(s["start"][i]) + lo, int(s["end"][i]) + lo)
    out["values"] = out["pixels"] = out["first"] = None
    if len(values) == (1 + _PIXEL_TOKENS) * int(out["full"].sum()):
        # Regular chunk: every token sits in a line of 1 + 2,304; cut the grid here, in the
        # worker thread, so the merge only concatenates.
        grid = values.reshape(-1, 1 + _PIXEL_TOKENS)
        out["first"] = grid[:, 0].copy()
        out["pixels"] = grid[:, 1:].astype(np.uint8)
    else:
        out["values"] = values[np.repeat(long, tokens)].astype(np.uint8)
    return out


def _usage_column(data: bytes, lines: dict[str, np.ndarray], c2: np.ndarray,
                  ncols: int) -> np.ndarray:
    """Split name of each kept line (Training without a Usage column); a good line with an
    unknown one is blamed for it."""
    usage = np.full(len(lines["kind"]), SPLITS[0], dtype="<U11")
    if ncols == 2:
        return usage
    names: dict[bytes, str] = {}
    for i in np.flatnonzero(lines["kind"] == "").tolist():
        raw = data[c2[i] + 1 : lines["end"][i]]
        if raw not in names:
            text = raw.strip(b' \r"').decode("utf-8", "replace").lower()
            names[raw] = _USAGE_NAMES.get(text, "")
        usage[i] = names[raw]
    lines["kind"][usage == ""] = "usage"
    return usage


def _scan_chunk(arr: np.ndarray, lo: int, hi: int, ncols: int) -> dict[str, np.ndarray]:
    """Tokenise the whole lines in arr[lo:hi] (lo >= 3, just after a newline): per line its
    span, commas, tokens per field and stray characters (positions from lo); per token its
    value (the last three digits) and which tokens are above 255."""
    ext = arr[lo - 3 : hi]
    d = ext - np.uint8(48)  # digits become 0..9, everything else >= 10 (uint8 wraps)
    dig = d < 10
    dz = d * dig  # digits, 0 elsewhere
    b, dg = ext[3:], dig[3:]
    end = np.empty_like(dg)  # a digit followed by a non-digit (or the chunk's end)
    np.greater(dg[:-1], dg[1:], out=end[:-1])
    end[-1:] = dg[-1:]
    # Value of the number ending at each byte (meaningful only at token ends), computed on
    # whole arrays, then gathered once at the token ends.
    every = np.multiply(dz[2:-1], 10, dtype=np.uint16)
    every += dz[3:]
    hundreds = np.multiply(dz[1:-2], dig[2:-1], dtype=np.uint16)
    hundreds *= 100
    every += hundreds
    token_end = np.flatnonzero(end)
    values = every.take(token_end)
    over = np.flatnonzero(values > 255)  # three digits above 255
    if np.any(dg & dig[2:-1] & dig[1:-2] & dig[:-3]):  # four digits or more in a row
        over = np.union1d(over, np.searchsorted(token_end, _long_over(b, dg, dig, end)))
    negative = b == 45  # a minus sign starting a number: a negative value, not stray text
    negative[:-1] &= dg[1:]
    negative[-1:] = False
    negative &= ~dig[2:-1]
    text_mask = b == 32
    np.logical_or(text_mask, dg, out=text_mask)
    np.logical_not(text_mask, out=text_mask)
    other = np.flatnonzero(text_mask)  # non-digit, non-space: separators and text
    kinds = b[other]
    newlines, commas = other[kinds == 10], other[kinds == 44]
    ends = newlines if len(b) and b[-1] == 10 else np.append(newlines, len(b))
    starts = np.concatenate([[0], ends[:-1] + 1])
    first = np.searchsorted(commas, starts)
    n_commas = np.searchsorted(commas, ends) - first
    ok = n_commas == ncols - 1
    padded = np.append(commas, len(b))
    c1_pos = np.where(ok, padded[np.minimum(first, len(commas))], starts)
    c2_pos = np.where(ok & (ncols == 3), padded[np.minimum(first + 1, len(commas))], ends)
    c2_pos = np.where(ok, c2_pos, starts)
    # Tokens per field, counted from the sorted token ends: label, pixels, the rest.
    at = [np.searchsorted(token_end, x) for x in (starts, c1_pos, c2_pos, ends + 1)]
    at[2] = np.where(ok, at[2], at[3]) if ncols == 3 else at[3]
    seg = np.stack([at[1] - at[0], at[2] - at[1], at[3] - at[2]], axis=1)
    # Text inside the label or pixel field (other than quotes and CR) is a bad token; so is
    # a minus sign in the label, while one before a pixel value makes it out of range.
    stray = (kinds != 10) & (kinds != 44) & (kinds != 34) & (kinds != 13)
    fields = (starts, c1_pos, c2_pos, ncols)
    bad_label_char, bad_pixel_char = _field_flags(other[stray & ~negative[other]], *fields)
    minus_label, negative_pixel = _field_flags(np.flatnonzero(negative), *fields)
    visible = other[(kinds != 10) & (kinds != 13) & (kinds != 9)]
    return {
        "start": starts, "end": ends, "c1": c1_pos, "c2": c2_pos, "commas": n_commas,
        "seg": seg, "first": at[0], "values": values, "over": over,
        "bad_label_char": bad_label_char | minus_label, "bad_pixel_char": bad_pixel_char,
        "negative_pixel": negative_pixel,
        "visible": np.searchsorted(visible, ends) - np.searchsorted(visible, starts),
    }


def _long_over(b: np.ndarray, dg: np.ndarray, dig: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Ends of the tokens of four digits or more that are above 255: leading zeros do not
    count (0255 is 255)."""
    long_at = np.flatnonzero(end & dig[2:-1] & dig[1:-2] & dig[:-3])
    token_start = np.flatnonzero(dg & ~dig[2:-1])  # a digit after a non-digit
    start = token_start[np.searchsorted(token_start, long_at, side="right") - 1]
    nonzero = np.cumsum(dg & (b != 48), dtype=np.int32)  # non-zero digits up to each byte
    lead = nonzero[long_at - 3] - nonzero[start] + (b[start] != 48)
    return long_at[lead > 0]


def _field_flags(pos: np.ndarray, starts: np.ndarray, c1: np.ndarray, c2: np.ndarray,
                 ncols: int) -> tuple[np.ndarray, np.ndarray]:
    """Per line: whether any of the byte positions `pos` is in its label / its pixel field."""
    line_of = np.searchsorted(starts, pos, side="right") - 1
    in_label = pos < c1[line_of]
    in_pixels = ~in_label & (pos < c2[line_of]) if ncols == 3 else ~in_label
    label_flags = np.zeros(len(starts), dtype=bool)
    pixel_flags = np.zeros(len(starts), dtype=bool)
    label_flags[line_of[in_label]] = True
    pixel_flags[line_of[in_pixels]] = True
    return label_flags, pixel_flags


def _line_fields(data: bytes, start: int, end: int) -> list[str]:
    text = data[start:end].decode("utf-8", "replace").rstrip("\r")
    try:
        return next(csv.reader([text]), [])
    except csv.Error:  # e.g. a stray carriage return or NUL inside the line
        return text.split(",")


def _is_number(text: str) -> bool:
    """ASCII digits only: str.isdigit() also takes '²', '①', '٣' and '𝟓', and int() some."""
    return text.isascii() and text.isdigit()


def _slow_pixels(data: bytes, start: int, end: int) -> np.ndarray | None:
    """Pixels of a line whose separators the fast path refused (tabs, ...), or None."""
    fields = _line_fields(data, start, end)
    if len(fields) < 2 or not _is_number(fields[0].strip()):
        return None
    tokens = fields[1].split()
    if len(tokens) != NUM_PIXELS or not all(_is_number(t) for t in tokens):
        return None
    pixels = np.array(tokens, dtype=np.int64)
    return pixels.astype(np.uint8) if pixels.max() <= 255 else None


def _describe(data: bytes, start: int, end: int, kind: str, ncols: int) -> str:
    """A precise description of what is wrong with a line (only called on a few lines)."""
    fields = _line_fields(data, start, end)
    if kind == "fields":
        return _describe_fields(fields, ncols)
    if kind == "label":
        return f"label {fields[0][:20]!r} is not an integer 0-6"
    tokens = fields[1].split() if len(fields) > 1 else []
    if kind == "count":
        return f"{len(tokens):,} pixel values, expected {NUM_PIXELS:,}"
    if kind in ("token", "range"):
        problems = [(pos, tok, _pixel_problem(tok)) for pos, tok in enumerate(tokens, start=1)]
        problems = [p for p in problems if p[2]]
        wanted = [p for p in problems if (p[2][0] == "token") == (kind == "token")]
        for pos, tok, (_, what) in wanted[:1] or problems[:1]:
            return f"pixel value {tok[:20]!r} at position {pos:,} {what}"
        return "pixel values are not whole numbers 0-255"
    value = fields[2].strip() if len(fields) > 2 else ""
    return f"Usage {value[:20]!r} is not one of {', '.join(SPLITS)}"


def _pixel_problem(token: str) -> tuple[str, str] | None:
    """(kind, what is wrong) with one pixel value, or None for 0..255 (leading zeros are
    fine: 0255 is 255)."""
    if _is_number(token):
        return None if int(token) <= 255 else ("range", "is outside 0-255 (above 255)")
    if token.startswith("-") and _is_number(token[1:]):
        return "range", "is outside 0-255 (negative)"
    if token.isdigit() or token.lstrip("-").isdigit():
        return "token", "is not written in the ASCII digits 0-9"
    return "token", "is not a whole number 0-255"


def _describe_fields(fields: list[str], ncols: int) -> str:
    """What is wrong with the fields of a line whose commas are not those of a FER row."""
    names = ["emotion", "pixels", "Usage"][:ncols]
    expected = ",".join(names)
    with_commas = [name for name, f in zip(names, fields) if "," in f]
    if len(fields) == ncols and with_commas:  # the commas are inside a quoted field
        if with_commas[0] == "pixels":
            return ("the pixels field contains commas: its values must be separated by "
                    f"spaces (expected {expected})")
        return f"the {with_commas[0]} field contains commas (expected {expected})"
    if len(fields) > ncols and sum(_is_number(f.strip()) for f in fields[1:]) > ncols:
        return (f"{len(fields):,} fields, expected {ncols} ({expected}): the pixel values "
                "seem to be separated by commas instead of spaces")
    return f"{len(fields):,} fields, expected {ncols} ({expected})"


# --- the on-disk cache -------------------------------------------------------------------


def _file_signature(path: Path) -> list:
    """What identifies a file's content cheaply: resolved path, size and mtime."""
    path = path.resolve()
    st_ = path.stat()
    return [str(path), st_.st_size, st_.st_mtime_ns]


def _cache_key(**parts) -> str:
    text = json.dumps({"version": CACHE_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _cached(key: str, label: str, use_cache: bool, load) -> FerDataset:
    """Return the cached arrays for `key`, or run `load()` and cache what it returns."""
    folder = cache_dir() / "datasets" / key
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
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".tmp-"))
        names = ds.splits()
        np.save(tmp / "images.npy", np.ascontiguousarray(ds.images))
        np.save(tmp / "labels.npy", ds.labels)
        np.save(tmp / "usage.npy", split_codes(ds.usage, names))
        meta = {"split_names": names, "skipped": ds.skipped, "problems": list(ds.problems),
                "synthetic": ds.synthetic, "rows": len(ds), "written": time.time()}
        (tmp / "meta.json").write_text(json.dumps(meta))
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True) if "tmp" in locals() else None
        return
    _prune_cache(folder.parent)


def _prune_cache(root: Path) -> None:
    entries = sorted((p for p in root.iterdir() if (p / "meta.json").exists()),
                     key=lambda p: (p / "meta.json").stat().st_mtime, reverse=True)
    for old in entries[CACHE_KEEP:]:
        shutil.rmtree(old, ignore_errors=True)

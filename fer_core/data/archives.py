"""FER2013 packed as files: gzip, zip and tar archives (a CSV inside, or images), image
folders, and decoding images of any size, depth or colour to 48x48 grey.

Archives are read in memory, never extracted (member paths cannot write anywhere), and are
refused before decompression when `fer_core.uploads` says they are too large or a bomb.
Class and split come from folder names (`train/happy/1.png`).
"""

from __future__ import annotations

import dataclasses
import io
import zipfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np

from fer_core import uploads
from fer_core.data import csv_format
from fer_core.data.dataset import DataError, FerDataset
from fer_core.data.sources import IMAGE_SUFFIXES, open_regular, read_regular
from fer_core.labels import EMOTIONS, IMG_SIZE, SPLITS


def load_bytes(data: bytes, name: str, label: str, skip_bad: bool) -> FerDataset:
    """Bytes of a .csv, .csv.gz, .zip or .tar(.gz) (Kaggle ships fer2013.tar.gz)."""
    if name.lower().endswith(".zip") or data[:4] == b"PK\x03\x04":
        return _load_zip(io.BytesIO(data), label, skip_bad)
    if name.lower().endswith((".gz", ".tgz")) or data[:2] == b"\x1f\x8b":
        data = _gunzip(data, label)
    if data[257:262] == b"ustar":
        return _load_tar(data, label, skip_bad)
    return csv_format.parse_csv_bytes(data, label, skip_bad=skip_bad)


def load_file(path: Path, label: str, skip_bad: bool) -> FerDataset:
    """A file checked by `sources.check_path`: a zip is read member by member, anything else
    whole (at most MAX_EXPANDED_BYTES) as `load_bytes`."""
    with open_regular(path, label) as fh:
        head = fh.read(4)
        fh.seek(0)
        if path.suffix.lower() == ".zip" or head == b"PK\x03\x04":
            return _load_zip(fh, label, skip_bad)
        return load_bytes(fh.read(uploads.MAX_EXPANDED_BYTES + 1), path.name, label, skip_bad)


def _load_tar(data: bytes, label: str, skip_bad: bool) -> FerDataset:
    import tarfile

    try:
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            files = {m.name: m for m in tar.getmembers() if m.isfile() and not _is_junk(m.name)}
            problem = uploads.archive_problem([(n, m.size, 0) for n, m in files.items()])
            if problem:
                raise DataError(label, problem, count=0)
            csvs = sorted((n for n in files if n.lower().endswith(".csv")),
                          key=lambda n: (PurePosixPath(n).name.lower() != "fer2013.csv", n))
            if csvs:
                where = f"{label}:{csvs[0]}"
                content = tar.extractfile(files[csvs[0]]).read()
                ds = csv_format.parse_csv_bytes(content, where, skip_bad=skip_bad)
                return dataclasses.replace(ds, source=label)
            images = sorted(n for n in files if n.lower().endswith(IMAGE_SUFFIXES))
            if not images:
                raise DataError(label, "the archive holds no CSV file and no images", count=0)
            return decode_images(images, lambda n: tar.extractfile(files[n]).read(), label,
                                 skip_bad)
    except tarfile.TarError as exc:
        raise DataError(label, f"not a readable tar file ({exc})", count=0) from None


def _gunzip(data: bytes, label: str) -> bytes:
    """Decompress gzip bytes, refusing (before it is all in memory) content above
    MAX_EXPANDED_BYTES, or above 1 MB and MAX_COMPRESSION_RATIO times the compressed size
    (`fer_core.uploads`): the limits `archive_problem` puts on zip members (FER2013's CSV packs
    3.4 times)."""
    ratio_limit = max(2**20, uploads.MAX_COMPRESSION_RATIO * len(data))
    limit = min(uploads.MAX_EXPANDED_BYTES, ratio_limit)
    inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflate.decompress(data, limit + 1)
    except zlib.error as exc:
        raise DataError(label, f"not a readable gzip file ({exc})", count=0) from None
    if len(out) > limit:
        why = (f"more than {uploads.MAX_COMPRESSION_RATIO} times its {uploads.mb(len(data))}, "
               "far more than real data" if limit == ratio_limit
               else "more than this loader reads")
        raise DataError(label, f"the gzip file expands to more than {uploads.mb(limit)} ({why}; "
                        "a gzip bomb?)", count=0)
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
    problem = uploads.archive_problem([(m.filename, m.file_size, m.compress_size) for m in members])
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
        ds = csv_format.parse_csv_bytes(data, where, skip_bad=skip_bad)
        return dataclasses.replace(ds, source=label)
    images = [m.filename for m in members if m.filename.lower().endswith(IMAGE_SUFFIXES)]
    if not images:
        raise DataError(label, "the zip holds no CSV file and no images", count=0)
    return decode_images(images, lambda p: zf.read(p), label, skip_bad)


def folder_images(walked: list[tuple[str, int, int]]) -> list[str]:
    """The image files among a folder's files (`walked`: `sources.walk_folder(path)`)."""
    return [rel for rel, _, _ in walked
            if rel.lower().endswith(IMAGE_SUFFIXES) and not _is_junk(PurePosixPath(rel).name)]


def load_image_folder(path: Path, files: list[str], label: str, skip_bad: bool) -> FerDataset:
    """The images `files` (paths relative to `path`, from `folder_images`) as a dataset."""
    return decode_images(files, lambda p: read_regular(path / p, label), label, skip_bad)


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


def decode_images(paths: list[str], read, label: str, skip_bad: bool) -> FerDataset:
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

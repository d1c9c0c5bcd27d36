"""Small inputs for the tests, built in memory: FER2013 CSVs (the one CSV writer of the suite),
PNGs and zips, hostile run names; a listing of a folder, to show that nothing was written
there; and the DataError a load raises.

Importable by test modules (hypothesis strategies and module constants need the bytes at
import time); `conftest.write_csv` writes the same CSVs to a test's folder.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fer_core.data import DataError
from fer_core.labels import EMOTIONS, SPLITS

HEADER = "emotion,pixels,Usage"
ROW = "3," + " ".join(["7"] * 2304) + ",Training"  # one valid data line


def faces(n: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`n` random 48x48 faces, labels cycling through the classes, and contiguous
    Training/PublicTest/PrivateTest usage."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 48, 48), dtype=np.uint8)
    images[0, 0, :4] = (0, 9, 10, 255)  # every token width, both extremes
    labels = np.arange(n) % len(EMOTIONS)
    usage = np.array(SPLITS)[np.arange(n) * 3 // n]  # contiguous Training/Public/Private
    return images, labels, usage


def csv_lines(images: np.ndarray, labels, usage, *, order=(0, 1, 2), quote=False,
              extra: bool = False) -> list[str]:
    """Header and data lines of a FER CSV with columns in `order` (0 emotion, 1 pixels,
    2 Usage; usage=None leaves Usage out), optionally quoted, optionally with an id column."""
    names = ["emotion", "pixels", "Usage"]
    cols = [c for c in order if usage is not None or c != 2]
    q = (lambda s: f'"{s}"') if quote else (lambda s: s)
    header = [q(names[c]) for c in cols] + (["id"] if extra else [])
    lines = [",".join(header)]
    for i, (img, lab) in enumerate(zip(images, labels, strict=True)):
        values = [str(int(lab)), " ".join(map(str, img.ravel().tolist())),
                  usage[i] if usage is not None else ""]
        lines.append(",".join([q(values[c]) for c in cols] + ([str(i)] if extra else [])))
    return lines


def csv_bytes(images: np.ndarray, labels, usage=None, *, eol: str = "\n") -> bytes:
    """A FER CSV (header `emotion,pixels[,Usage]`) of these faces, ending with `eol`."""
    return (eol.join(csv_lines(images, labels, usage)) + eol).encode()


def training_csv(n: int = 4) -> bytes:
    """`n` random faces, all in Training (about 9 KB a face)."""
    images = np.random.default_rng(n).integers(0, 256, (n, 48, 48), dtype=np.uint8)
    return csv_bytes(images, np.arange(n) % 7, ["Training"] * n)


def lines_csv(*lines: str, header: str = HEADER) -> bytes:
    """A CSV of the given data lines, written as they are (for damaged rows)."""
    return ("\n".join([header, *lines]) + "\n").encode()


def png(value: int = 128, size: tuple[int, int] = (48, 48)) -> bytes:
    """A grey PNG of one value."""
    buf = io.BytesIO()
    Image.new("L", size, value).save(buf, "PNG")
    return buf.getvalue()


def zip_bytes(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip of `members` (name -> content), names written as given (`..` and `/` included)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, content in members.items():
            zf.writestr(zipfile.ZipInfo(name), content, compress_type=method)
    return buf.getvalue()


def tree(folder: Path) -> dict[str, int]:
    """Every file under `folder` with its size: to show that nothing was written there."""
    return {p.relative_to(folder).as_posix(): p.stat().st_size
            for p in folder.rglob("*") if p.is_file()}


def pixels(position: int, value: str) -> str:
    """The pixels field of `ROW` with the value at `position` (1-based) replaced."""
    values = ["7"] * 2304
    values[position - 1] = value
    return " ".join(values)


def raises_data_error(fn) -> DataError:
    """The DataError that `fn()` raises (the test fails if it raises none)."""
    with pytest.raises(DataError) as err:
        fn()
    return err.value


# Run names a user could type that Markdown would render as links, images, HTML, headings.
HOSTILE_NAMES = (
    "[click me](https://evil.example/phish)",
    "![tracker](https://evil.example/pixel.png)",
    "<img src=https://evil.example/x.png> **bold** _it_ `code`",
    ":red[alarm] :material/warning: $x^2$ https://evil.example www.evil.example",
    "line one\n# heading\n> quote",
)

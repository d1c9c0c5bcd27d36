"""Loading FER2013 into uint8 arrays: Kaggle's CSV, the image-folder edition, the demo set.

`load_dataset(source)` is the one entry point; `resolve_source()` says which source is active
when none is given. Bad input raises `DataError`, whose message names the file, the row (or
image path), the column and the problem, and counts the rows affected.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from fer_core.labels import EMOTIONS, SPLITS

DEMO = "demo"
DEFAULT_CSV = "data/fer2013.csv"  # relative to the working directory (the repo root)


class DataError(ValueError):
    """Bad input data. The message says where (file, row or path, column) and what."""

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
        message = f"{', '.join(where)}: {problem}"
        if count > 1:
            message += f" ({count:,} rows affected)"
        super().__init__(message)


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

    def counts(self) -> dict[str, dict[str, int]]:
        """split -> emotion name -> number of rows (every emotion listed, zeros included)."""
        out: dict[str, dict[str, int]] = {}
        for name in self.splits():
            per_class = np.bincount(self.labels[self.usage == name], minlength=len(EMOTIONS))
            out[name] = {e: int(c) for e, c in zip(EMOTIONS, per_class)}
        return out


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


def load_dataset(
    source: str | os.PathLike | bytes,
    *,
    name: str | None = None,
    skip_bad: bool = False,
    use_cache: bool = True,
) -> FerDataset:
    """Load a dataset: "demo", a .csv/.csv.gz/.zip or image-folder path, or uploaded bytes
    (with `name`, the uploaded file's name, which tells the format)."""
    if isinstance(source, str) and source.strip().lower() == DEMO:
        from fer_core.demo import make_demo  # demo builds on FerDataset: import late

        return make_demo()
    raise DataError(str(source if not isinstance(source, bytes) else name), "CSV loading lands next")

"""The dataset types: `FerDataset` (uint8 faces, labels, split per row), `DataError` (what is
wrong with the input, where, and how many rows), and the helpers on splits.

Every loader in this package returns a FerDataset and raises DataError; nothing here reads a
file, so the demo set and the quality checks build on it without importing the loaders.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from fer_core.labels import EMOTIONS, SPLITS


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

    def rows(self, name: str) -> np.ndarray:
        """The dataset rows of one split, in order: face `i` of `split(name)` is row
        `rows(name)[i]` (how the pages name a face, `display.row_name`)."""
        rows = np.flatnonzero(self.usage == name)
        if len(rows) == 0:
            raise KeyError(f"no split {name!r} in {self.source}; present: {self.splits()}")
        return rows

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(images, labels) of one split: views when its rows are contiguous, else copies."""
        rows = self.rows(name)
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


def as_data_error(source: str, exc: BaseException) -> DataError:
    """`exc`, raised while loading `source`, as the DataError a user is shown: itself when it
    is one, else what it was by name (exhausted memory, a loader bug), never a traceback."""
    if isinstance(exc, DataError):
        return exc
    if isinstance(exc, MemoryError):
        return DataError(source, "not enough memory to load it (FER2013's 290 MB CSV needs "
                         "about 1 GB)", count=0)
    return DataError(source, f"could not be loaded: {type(exc).__name__}: {exc}", count=0)


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

"""Faces made ready to show: pixels enlarged with square pixels, float images as uint8, and
the name every page gives a face."""

from __future__ import annotations

import numpy as np


def enlarge(image: np.ndarray, factor: int = 2) -> np.ndarray:
    """Each pixel repeated `factor` times both ways (nearest neighbour: a 48x48 face shown
    larger stays sharp instead of blurred by the browser's scaling)."""
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """A float image (a mean face) rounded and clipped to 0..255."""
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def row_name(row: int) -> str:
    """A face as every page names it: its row in the whole dataset, counted from 0 (face `i`
    of a split is `FerDataset.rows(split)[i]`), so a face found on one page can be found on
    another. For Kaggle's fer2013.csv that is the file's data row: line `row + 2`."""
    return f"row {int(row)}"

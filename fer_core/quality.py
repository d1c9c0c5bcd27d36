"""Data-quality checks and per-class summaries of a FerDataset.

Exact duplicates within and across splits (FER2013 has test faces that also sit in Training,
a leak), near-blank / very low-contrast faces, the mean face and the pixel histogram of each
class. Everything works on the uint8 arrays a chunk at a time, so no float copy of the whole
set is ever made.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from fer_core.data import FerDataset
from fer_core.labels import EMOTIONS, NUM_CLASSES

CHUNK = 4096  # images per step: ~9 MB of uint8, ~38 MB as float32
LOW_CONTRAST_STD = 6.0  # grey levels; below this a face is near-blank or washed out


@dataclass(frozen=True)
class DuplicateReport:
    """Exact duplicates: same 2,304 bytes."""

    within: dict[str, int]  # split -> faces that repeat an earlier face of the same split
    across: dict[tuple[str, str], int]  # (earlier split, later split) -> later faces also in it
    conflicting: int  # groups of identical faces that carry different labels
    groups: list[np.ndarray] = field(default_factory=list)  # row indices, cross-split first

    @property
    def total(self) -> int:
        return sum(self.within.values()) + sum(self.across.values())


def image_hashes(images: np.ndarray) -> np.ndarray:
    """A 64-bit content hash per image (uint64), equal exactly when the bytes are equal
    (up to a negligible collision chance)."""
    flat = np.ascontiguousarray(images).reshape(len(images), -1)
    return np.array(
        [int.from_bytes(hashlib.blake2b(row.tobytes(), digest_size=8).digest(), "little")
         for row in flat],
        dtype=np.uint64,
    )


def find_duplicates(ds: FerDataset, *, max_groups: int = 60) -> DuplicateReport:
    """Count exact duplicates within each split and between each pair of splits."""
    hashes = image_hashes(ds.images)
    splits = ds.splits()
    within: dict[str, int] = {}
    seen: dict[str, np.ndarray] = {}
    for name in splits:
        h = hashes[ds.usage == name]
        unique = np.unique(h)
        within[name] = int(len(h) - len(unique))
        seen[name] = unique
    across: dict[tuple[str, str], int] = {}
    for i, first in enumerate(splits):
        for later in splits[i + 1 :]:
            across[(first, later)] = int(np.isin(hashes[ds.usage == later], seen[first]).sum())

    _, inverse, counts = np.unique(hashes, return_inverse=True, return_counts=True)
    dup_rows = np.flatnonzero(counts[inverse] > 1)
    order = np.argsort(inverse[dup_rows], kind="stable")
    groups = np.split(dup_rows[order], np.flatnonzero(np.diff(inverse[dup_rows][order])) + 1)
    groups = [g for g in groups if len(g) > 1]
    conflicting = sum(1 for g in groups if len(np.unique(ds.labels[g])) > 1)
    groups.sort(key=lambda g: (len(np.unique(ds.usage[g])) == 1, int(g[0])))
    return DuplicateReport(within, across, conflicting, groups[:max_groups])


def identical_groups(images: np.ndarray, rows: np.ndarray) -> list[np.ndarray]:
    """`rows` grouped by identical pixels, each group once, in the order of its first row in
    `rows` (FER2013's near-blank faces are mostly copies of a few blank images: a page shows
    each image once, with its rows)."""
    rows = np.asarray(rows, dtype=np.int64)
    if not len(rows):
        return []
    _, first, inverse = np.unique(image_hashes(images[rows]), return_index=True,
                                  return_inverse=True)
    return [rows[inverse == g] for g in np.argsort(first, kind="stable")]


def image_std(images: np.ndarray) -> np.ndarray:
    """Standard deviation of the grey levels of each image (float32, one per image)."""
    out = np.empty(len(images), dtype=np.float32)
    for start in range(0, len(images), CHUNK):
        chunk = images[start : start + CHUNK].reshape(-1, images[0].size).astype(np.float32)
        out[start : start + CHUNK] = chunk.std(axis=1)
    return out


def low_contrast(images: np.ndarray, threshold: float = LOW_CONTRAST_STD) -> np.ndarray:
    """Row indices of near-blank / very low-contrast faces, the flattest first."""
    std = image_std(images)
    rows = np.flatnonzero(std < threshold)
    return rows[np.argsort(std[rows], kind="stable")]


def mean_faces(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Mean face per class, float32 (7, 48, 48); zeros for a class with no images."""
    sums = np.zeros((NUM_CLASSES, images[0].size), dtype=np.float64)
    for start in range(0, len(images), CHUNK):
        chunk = images[start : start + CHUNK].reshape(-1, images[0].size).astype(np.float32)
        onehot = np.eye(NUM_CLASSES, dtype=np.float32)[labels[start : start + CHUNK]]
        sums += onehot.T @ chunk
    counts = np.bincount(labels, minlength=NUM_CLASSES)
    means = sums / np.maximum(counts, 1)[:, None]
    return means.reshape(NUM_CLASSES, *images.shape[1:]).astype(np.float32)


def class_histograms(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Pixel counts per grey level and class: int64 (7, 256)."""
    hist = np.zeros(NUM_CLASSES * 256, dtype=np.int64)
    for start in range(0, len(images), CHUNK):
        chunk = images[start : start + CHUNK].reshape(-1, images[0].size)
        index = labels[start : start + CHUNK, None].astype(np.int32) * 256 + chunk
        hist += np.bincount(index.ravel(), minlength=NUM_CLASSES * 256)
    return hist.reshape(NUM_CLASSES, 256)


def imbalance(counts: dict[str, int]) -> tuple[str, str, float]:
    """(largest class, smallest class, their ratio); inf when a class has no images."""
    largest = max(counts, key=counts.get)
    smallest = min(counts, key=counts.get)
    ratio = counts[largest] / counts[smallest] if counts[smallest] else float("inf")
    return largest, smallest, ratio


def quality_problems(ds: FerDataset) -> list[str]:
    """One line per finding, for the CLI and the page: duplicates, low contrast, empty or
    missing classes."""
    found: list[str] = []
    dups = find_duplicates(ds)
    for name, n in dups.within.items():
        if n:
            found.append(f"{n:,} exact duplicate images within {name}")
    for (first, later), n in dups.across.items():
        if n:
            found.append(f"{n:,} {later} images also appear in {first} (a leak between splits)")
    if dups.conflicting:
        found.append(f"{dups.conflicting:,} groups of identical images carry different labels")
    flat = low_contrast(ds.images)
    if len(flat):
        found.append(f"{len(flat):,} near-blank or very low-contrast images "
                     f"(grey-level std < {LOW_CONTRAST_STD:g})")
    for name, per_class in ds.counts().items():
        empty = [e for e in EMOTIONS if per_class[e] == 0]
        if empty:
            found.append(f"{name} has no images of {', '.join(empty)}")
    return found


def difference_hashes(images: np.ndarray) -> np.ndarray:
    """A 64-bit difference hash per image (uint64): a 9x8 area-averaged thumbnail, one bit per
    pair of neighbours in a row (is the right one brighter). Equal for the same face saved
    again with other compression, brightness or contrast, or slightly blurred or rescaled."""
    import cv2

    weights = (1 << np.arange(64, dtype=np.uint64)).reshape(8, 8)
    out = np.empty(len(images), dtype=np.uint64)
    for i, image in enumerate(images):
        small = cv2.resize(image, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
        out[i] = weights[small[:, 1:] > small[:, :-1]].sum(dtype=np.uint64)
    return out


def overlap_mask(images: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Which of `images` also appear among `others`: exactly (the same bytes) or nearly (the
    same difference hash). Near-blank faces (std < LOW_CONTRAST_STD) are matched exactly
    only: they all hash alike. Training faces found in a test split are a leak (FER2013 has
    them), which `TrainConfig.drop_test_overlap` leaves out of training."""
    if not len(images) or not len(others):
        return np.zeros(len(images), dtype=bool)
    mask = np.isin(image_hashes(images), image_hashes(others))
    textured = image_std(images) >= LOW_CONTRAST_STD
    textured_others = image_std(others) >= LOW_CONTRAST_STD
    near = np.isin(difference_hashes(images[textured]),
                   difference_hashes(others[textured_others]))
    mask[np.flatnonzero(textured)[near]] = True
    return mask

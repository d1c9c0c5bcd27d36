"""Teacher probabilities for knowledge distillation, kept in a small file instead of a live
teacher model.

A `.teacher.npz` file holds one float16 row of seven class probabilities per Training face
of one dataset (FER2013: 28,709 x 7, about 400 KB), as a strong model (the `accurate`
ensemble, with its flip TTA and temperature) predicted them, plus the SHA-256 of those
faces' pixels: a run that names the file (`TrainConfig.teacher`) trains towards a mix of
the labels and these rows, and a file made from other faces, or the same faces in another
order, is refused instead of silently teaching the wrong rows. `python -m fer_core teacher`
writes one. NumPy only.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import numpy as np

from fer_core.files import atomic_write
from fer_core.labels import NUM_CLASSES

TEACHER_SUFFIX = ".teacher.npz"
TEACHER_VERSION = 1


def faces_sha256(images: np.ndarray) -> str:
    """The SHA-256 of a face array's pixels in order (uint8, C order)."""
    return hashlib.sha256(np.ascontiguousarray(images, dtype=np.uint8).tobytes()).hexdigest()


def write_teacher(path: str | os.PathLike, probs: np.ndarray, images: np.ndarray, *,
                  model: str, data: str) -> Path:
    """Write the teacher's probabilities of `images` (float16, rows renormalised) atomically."""
    path = Path(path)
    if not path.name.endswith(TEACHER_SUFFIX):
        raise ValueError(f"{path}: a teacher file's name must end in {TEACHER_SUFFIX}")
    probs = np.asarray(probs, dtype=np.float64)
    if probs.shape != (len(images), NUM_CLASSES):
        raise ValueError(f"{len(images)} faces need ({len(images)}, {NUM_CLASSES}) "
                         f"probabilities, got {probs.shape}")
    packed = io.BytesIO()
    np.savez_compressed(packed, probs=probs.astype(np.float16),
                        faces_sha256=np.array(faces_sha256(images)),
                        model=np.array(model), data=np.array(data),
                        version=np.array(TEACHER_VERSION))
    atomic_write(path, packed.getvalue())
    return path


def read_teacher(path: str | os.PathLike, images: np.ndarray) -> np.ndarray:
    """The probabilities (float32, rows summing to 1) a teacher file holds for `images`;
    ValueError naming the file when it is unreadable or was made from other faces."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            probs = np.asarray(z["probs"], dtype=np.float32)
            sha, version = str(z["faces_sha256"]), int(z["version"])
    except FileNotFoundError:
        raise ValueError(f"teacher file {path} does not exist (write it with `python -m "
                         "fer_core teacher`)") from None
    except Exception as exc:  # noqa: BLE001 - BadZipFile, KeyError, ValueError, OSError, ...
        raise ValueError(f"teacher file {path} is not readable ({type(exc).__name__}: "
                         f"{exc})") from None
    if version != TEACHER_VERSION:
        raise ValueError(f"teacher file {path} has version {version}, not {TEACHER_VERSION}")
    if probs.shape != (len(images), NUM_CLASSES) or not np.isfinite(probs).all():
        raise ValueError(f"teacher file {path} holds {probs.shape} probabilities; the "
                         f"{len(images):,} Training faces need ({len(images)}, {NUM_CLASSES})")
    if sha != faces_sha256(images):
        raise ValueError(f"teacher file {path} was made from other Training faces (or the "
                         "same faces in another order) than this dataset's")
    return probs / np.clip(probs.sum(axis=1, keepdims=True), 1e-6, None)

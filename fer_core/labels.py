"""The FER2013 label set, image geometry and split names: the one place they are defined."""

from __future__ import annotations

from typing import Any

import numpy as np

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES: int = len(EMOTIONS)
IMG_SIZE: int = 48
NUM_PIXELS: int = IMG_SIZE * IMG_SIZE

TRAINING = "Training"
PUBLIC_TEST = "PublicTest"
PRIVATE_TEST = "PrivateTest"
SPLITS: tuple[str, ...] = (TRAINING, PUBLIC_TEST, PRIVATE_TEST)

# Kaggle's official per-class counts, used to check a user's full FER2013 file.
FER2013_COUNTS: dict[str, tuple[int, ...]] = {
    TRAINING: (3995, 436, 4097, 7215, 4830, 3171, 4965),
    PUBLIC_TEST: (467, 56, 496, 895, 653, 415, 607),
    PRIVATE_TEST: (491, 55, 528, 879, 594, 416, 626),
}

# A face whose top probability is below a threshold the user sets is shown as "uncertain"
# (with its best guess) instead of being named. At 0.4 the int8 export of the shipped model
# that the Live page runs, after the temperature its card stores, calls 9.6% of FER2013
# PublicTest faces uncertain with the mirror view (the default below) and 10.2% without; its
# top label is right for 37% (without: 31%) of those and for 74% (73%) of the others.
UNCERTAIN = "uncertain"
DEFAULT_UNCERTAIN_BELOW = 0.4
# Each face is classified with its mirror image too (`backends.with_mirror_view`, Evaluate's
# flip TTA) unless the user turns it off: the shipped int8 export scores 70.2% on PublicTest
# instead of 68.7%, and takes 0.8 ms a face instead of 0.45 ms in the Live pipeline
# (`benchmarks/live_pipeline.py [--no-mirror]`).
DEFAULT_MIRROR_VIEW = True
MIRROR_LABEL = "Classify the mirror image too"  # the box on Live and Analyse


CONFIDENCE_DECIMALS = 4  # confidences are written to tables, and compared, to this precision


def is_uncertain(confidence: Any, below: float) -> Any:
    """The one rule for "uncertain": the top probability, to the CONFIDENCE_DECIMALS a table
    keeps, is below the threshold. A float gives a bool, an array (or pandas column) an array,
    so the overlay, the CSV written beside it and a table read back from it all agree."""
    return np.round(confidence, CONFIDENCE_DECIMALS) < below


def check_uncertain_below(value: float, name: str = "uncertain_below") -> float:
    """`value` as the threshold for "uncertain"; ValueError naming `name` outside [0, 1)."""
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be from 0 to below 1, got {value}")
    return float(value)


def emotion_index(name: str) -> int:
    """Index of an emotion name, case-insensitive; raises ValueError naming the known ones."""
    key = name.strip().lower()
    if key not in EMOTIONS:
        raise ValueError(f"unknown emotion {name!r}; known: {', '.join(EMOTIONS)}")
    return EMOTIONS.index(key)

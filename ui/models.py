"""Loaded models shared by the pages: one `st.cache_resource` entry per model file version.

Evaluate (Grad-CAM) and Live (webcam, photos) pick from `fer_core.catalog` and load through
`loaded_model(ref)`, so a model open on both pages is in memory once, and a file rewritten in
place (a run's best weights improving, a re-exported default) is loaded again. A `.keras`
file gives the Keras model (Grad-CAM needs it) and its traced classifier; an `.onnx` or
`.tflite` file gives only a classifier (`fer_core.runtimes`), and `model` is None.

    ref = catalog.resolve(spec)
    loaded = loaded_model(ref)          # OSError/ValueError when the file is gone or bad
    probs = loaded.classifier.predict(faces)
    with loaded.lock:                   # Grad-CAM is not thread-safe on a shared model
        cam = gradcam(loaded.model, face)
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st

from fer_core.catalog import ModelRef
from fer_core.model_card import card_path
from fer_core.runtimes import KERAS, format_of

if TYPE_CHECKING:
    from fer_core.runtimes import FaceModel


class LoadedModel:
    """A model file shared by every session, with what the pages build on it.

    `classifier` (thread-safe, any runtime) is built on first use only: Evaluate's Grad-CAM
    never needs its warm-up. `model` is the Keras model, None for other formats. `lock`
    serialises uses that are not thread-safe (Grad-CAM's gradient tape).
    """

    def __init__(self, path: Path, model: Any) -> None:
        self.path = path
        self.model = model
        self.lock = threading.Lock()
        self._classifier: FaceModel | None = None
        self._classifier_lock = threading.Lock()

    @property
    def classifier(self) -> FaceModel:
        with self._classifier_lock:
            if self._classifier is None:
                if self.model is not None:
                    from fer_core.backends import with_stored_temperature
                    from fer_core.infer import Classifier

                    self._classifier = with_stored_temperature(  # ValueError: not a FER model
                        Classifier(self.model), self.path)
                else:
                    from fer_core.backends import open_face_model

                    self._classifier = open_face_model(self.path)
            return self._classifier


def loaded_model(ref: ModelRef) -> LoadedModel:
    """The model of `ref`, loaded once per file version (its mtime) for every session."""
    return loaded_file(ref.path)


def loaded_file(path: Path) -> LoadedModel:
    """The model file at `path` (any format), loaded once per version of the file and of its
    card (which may store a temperature)."""
    card = card_path(path)
    return _load(str(path), path.stat().st_mtime_ns,
                 card.stat().st_mtime_ns if card.exists() else 0)


@st.cache_resource(max_entries=4, show_spinner="Loading the model…")
def _load(path: str, stamp: int, card_stamp: int) -> LoadedModel:
    del stamp, card_stamp  # only part of the cache key
    if format_of(path) != KERAS:
        loaded = LoadedModel(Path(path), None)
        loaded.classifier  # noqa: B018 - open and warm up now: a bad file fails here, once
        return loaded
    from fer_core.models import load_model

    return LoadedModel(Path(path), load_model(path))

"""Loaded models shared by the pages: one `st.cache_resource` entry per model file version.

Evaluate (Grad-CAM) and Live (webcam, photos) pick from `fer_core.catalog` and load through
`loaded_model(ref)`, so a model open on both pages is in memory once, and a file rewritten in
place (a run's best weights improving, a re-exported default) is loaded again.

    ref = catalog.resolve(spec)
    loaded = loaded_model(ref)          # OSError/ValueError when the file is gone or bad
    probs = loaded.classifier.predict(faces)
    with loaded.lock:                   # Grad-CAM is not thread-safe on a shared model
        cam = gradcam(loaded.model, face)
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import streamlit as st

from fer_core.catalog import ModelRef

if TYPE_CHECKING:
    from fer_core.infer import Classifier


class LoadedModel:
    """A Keras model shared by every session, with what the pages build on it.

    `classifier` (the traced `infer.Classifier`, thread-safe) is built on first use only:
    Evaluate's Grad-CAM never needs its warm-up. `lock` serialises uses that are not
    thread-safe (Grad-CAM's gradient tape).
    """

    def __init__(self, model: Any) -> None:
        self.model = model
        self.lock = threading.Lock()
        self._classifier: Classifier | None = None
        self._classifier_lock = threading.Lock()

    @property
    def classifier(self) -> Classifier:
        with self._classifier_lock:
            if self._classifier is None:
                from fer_core.infer import Classifier

                self._classifier = Classifier(self.model)  # ValueError: not a FER model
            return self._classifier


def loaded_model(ref: ModelRef) -> LoadedModel:
    """The model of `ref`, loaded once per file version (its mtime) for every session."""
    return _load(str(ref.path), ref.path.stat().st_mtime_ns)


@st.cache_resource(max_entries=4, show_spinner="Loading the model…")
def _load(path: str, stamp: int) -> LoadedModel:
    del stamp  # only part of the cache key
    from fer_core.models import load_model

    return LoadedModel(load_model(path))

"""Model registry: builders registered by name, created by name, loaded safely from disk.

Every model takes (None, 48, 48, 1) grey levels 0..255 (uint8 or float) and scales them
itself (a `Rescaling` layer), so training, evaluation and the webcam cannot preprocess
differently. Every model ends in a 7-way softmax.
"""

from __future__ import annotations

from fer_core.models.registry import (
    ModelInfo,
    count_params,
    create_model,
    export_model,
    list_models,
    load_model,
    model_names,
    register_model,
    save_model_upload,
)

# Importing the builder modules registers them.
from fer_core.models import fernet, mini_xception, reference  # noqa: E402,F401

__all__ = [
    "ModelInfo",
    "count_params",
    "create_model",
    "export_model",
    "list_models",
    "load_model",
    "model_names",
    "register_model",
    "save_model_upload",
]

"""Where the project's files live: the repository root and the shipped default model.

Import-light (no TensorFlow), so the home page and the run folders can ask where the
default model is without loading Keras.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL_PATH = REPO_ROOT / "models" / "default.keras"
DEFAULT_MODEL_ENV = "FER_DEFAULT_MODEL"


def default_model_path() -> Path:
    """The shipped model, overridable with `FER_DEFAULT_MODEL` (tests, custom deployments)."""
    override = os.environ.get(DEFAULT_MODEL_ENV)
    return Path(override) if override else DEFAULT_MODEL_PATH

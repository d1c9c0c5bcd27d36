"""Where the project's files live: the repository root, the shipped default model, and the
folders of the on-disk cache (one function each, so every writer and reader agrees).

Import-light (no TensorFlow, no NumPy), so the home page, the run folders and `fer_core.cpu`
(which runs before TensorFlow loads) can ask where things are without loading anything.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL_PATH = REPO_ROOT / "models" / "default.keras"
DEFAULT_MODEL_ENV = "FER_DEFAULT_MODEL"
CACHE_ENV = "FER_CACHE_DIR"


def default_model_path() -> Path:
    """The shipped model, overridable with `FER_DEFAULT_MODEL` (tests, custom deployments)."""
    override = os.environ.get(DEFAULT_MODEL_ENV)
    return Path(override) if override else DEFAULT_MODEL_PATH


def cache_dir() -> Path:
    """The project's cache folder: `$FER_CACHE_DIR`, default `.cache/` in the repo."""
    return Path(os.environ.get(CACHE_ENV) or REPO_ROOT / ".cache")


def dataset_cache_dir() -> Path:
    """Parsed datasets as `.npy` files, one folder per source (`fer_core.data.cache`)."""
    return cache_dir() / "datasets"


def uploads_dir() -> Path:
    """Uploaded dataset files, kept to be reloaded by path (`fer_core.data.upload_store`)."""
    return cache_dir() / "uploads"


def uploaded_models_dir() -> Path:
    """Uploaded models (.keras, .onnx, .tflite) that passed the checks, named by content hash."""
    return cache_dir() / "models"


def eval_cache_dir() -> Path:
    """Evaluations of models that are not runs (a run keeps its own in `<run>/eval/`)."""
    return cache_dir() / "eval"


def cpu_probe_dir() -> Path:
    """The oneDNN probe's choice per CPU and TensorFlow version (`fer_core.cpu`)."""
    return cache_dir() / "cpu"

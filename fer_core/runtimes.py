"""One inference interface over three runtimes, chosen by the model file's extension.

    model = backends.open_face_model("models/default.onnx")   # .keras, .onnx or .tflite
    probs = model.predict(faces)    # (N, 48, 48[, 1]) grey levels 0..255 -> (N, 7) float32

This module holds what every back-end shares (formats, the `FaceModel` interface, input and
output checks, thread counts); `fer_core.backends` holds the ONNX Runtime and LiteRT classes
and `open_face_model`; the Keras one is `infer.Classifier`.

- `.keras`: Keras/TensorFlow, `infer.Classifier` (a traced `tf.function`);
- `.onnx`: ONNX Runtime (`onnxruntime`), CPU execution provider;
- `.tflite`: LiteRT (`ai-edge-litert`; TensorFlow's own `tf.lite.Interpreter` where it is
  missing), with its default XNNPACK delegate;
- `.ensemble.json`: several of the above averaged as one model (`fer_core.ensemble`).

Every back-end takes the same input (NHWC float32 grey levels 0..255: the models rescale
themselves, and an export keeps that first layer) and is checked the same way at warm-up
(seven probabilities summing to 1). Each is safe to share between threads.

Threads: on a small CPU the Streamlit server, OpenCV, TensorFlow and ONNX Runtime each want a
pool. `inference_threads()` (all cores, `$FER_INFER_THREADS` to change it) is what ONNX
Runtime's and LiteRT's intra-op pools get; ONNX Runtime runs no inter-op pool and its threads
sleep instead of spinning between calls (a webcam frame arrives every 33 ms, and a spinning
pool would take those cores from the server and the detector). TensorFlow keeps its own
settings (`train.py` sets them for training); OpenCV's pool is left to OpenCV.
This module imports neither TensorFlow nor any runtime.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Protocol

import numpy as np

from fer_core.labels import IMG_SIZE, NUM_CLASSES

KERAS, ONNX, TFLITE, ENSEMBLE = "keras", "onnx", "tflite", "ensemble"
FORMATS = {".keras": KERAS, ".onnx": ONNX, ".tflite": TFLITE}  # extension -> format of one file
ENSEMBLE_SUFFIX = ".ensemble.json"  # a manifest of member files (fer_core.ensemble)
RUNTIME_NAMES = {KERAS: "Keras/TensorFlow", ONNX: "ONNX Runtime", TFLITE: "LiteRT",
                 ENSEMBLE: "an ensemble of its members' runtimes"}
THREADS_ENV = "FER_INFER_THREADS"
# how far from 1 the row sums of an int8 softmax may be: seven outputs, each rounded to 1/256
QUANTIZED_SUM_TOLERANCE = 0.02


class FaceModel(Protocol):
    """What every back-end offers the Live page, photos, Evaluate and the CLI."""

    name: str
    runtime: str  # KERAS, ONNX or TFLITE

    def predict(self, faces: np.ndarray) -> np.ndarray: ...


def is_ensemble(path: str | os.PathLike) -> bool:
    """Whether `path` names an ensemble manifest (`accurate.ensemble.json`)."""
    return Path(path).name.lower().endswith(ENSEMBLE_SUFFIX)


def ensemble_name(path: str | os.PathLike) -> str:
    """`models/accurate.ensemble.json` -> `accurate`; any other file: its stem."""
    name = Path(path).name
    return name[: -len(ENSEMBLE_SUFFIX)] if is_ensemble(name) else Path(name).stem


def is_model_file_name(path: str | os.PathLike) -> bool:
    """Whether `path` is named like a model file of some format (the file may not exist)."""
    return Path(path).suffix.lower() in FORMATS or is_ensemble(path)


def format_of(path: str | os.PathLike) -> str:
    """KERAS, ONNX, TFLITE or ENSEMBLE from the file's name; ValueError for any other file."""
    if is_ensemble(path):
        return ENSEMBLE
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: a model file must end in {', '.join(FORMATS)} or "
                         f"{ENSEMBLE_SUFFIX} (not .h5, SavedModel or pickles)")
    return fmt


def missing_runtime(fmt: str) -> str | None:
    """Why models of format `fmt` cannot run here (the package to install), or None (an
    ensemble's members are checked when it is opened)."""
    if fmt == ENSEMBLE:
        return None
    needs = {KERAS: ["tensorflow"], ONNX: ["onnxruntime"],
             TFLITE: ["ai_edge_litert", "tensorflow"]}[fmt]
    if any(importlib.util.find_spec(name) is not None for name in needs):
        return None
    package = {KERAS: "tensorflow", ONNX: "onnxruntime", TFLITE: "ai-edge-litert"}[fmt]
    return f"{RUNTIME_NAMES[fmt]} is not installed (pip install {package})"


def inference_threads() -> int:
    """Intra-op threads for ONNX Runtime and LiteRT: `$FER_INFER_THREADS`, else every core."""
    value = os.environ.get(THREADS_ENV, "").strip()
    if value.isdigit() and int(value) > 0:
        return int(value)
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
               else os.cpu_count() or 1)


def as_batch(faces: np.ndarray) -> np.ndarray:
    """(N, 48, 48) or (N, 48, 48, 1) faces as the float32 NHWC batch every back-end takes."""
    faces = np.asarray(faces)
    if faces.ndim == 3:
        faces = faces[..., None]
    if faces.shape[1:] != (IMG_SIZE, IMG_SIZE, 1):
        raise ValueError(f"face crops must be (N, 48, 48[, 1]), got {faces.shape}")
    return np.ascontiguousarray(faces, dtype=np.float32)


def with_mirror_images(batch: np.ndarray) -> np.ndarray:
    """A NHWC batch followed by the mirror image of each of its faces (2N faces): both views
    of flip TTA in one call; `mean_of_views` folds the answers back."""
    return np.concatenate([batch, batch[:, :, ::-1]])


def mean_of_views(probs: np.ndarray) -> np.ndarray:
    """(2N, 7) answers for `with_mirror_images(batch)` as (N, 7): each face's mean of both."""
    half = len(probs) // 2
    return (probs[:half] + probs[half:]) / 2


def check_signature(name: str, n_inputs: int, n_outputs: int, input_shape: list) -> None:
    """ValueError unless a model file has one input of shape (N, 48, 48, 1) and one output
    (what ONNX Runtime and LiteRT report before anything runs)."""
    if n_inputs != 1 or n_outputs != 1:
        raise ValueError(f"model {name!r} has {n_inputs} inputs and {n_outputs} outputs; a FER "
                         "model has one of each")
    if len(input_shape) != 4 or list(input_shape[1:]) != [IMG_SIZE, IMG_SIZE, 1]:
        raise ValueError(f"model {name!r} takes input of shape {input_shape}; a FER model takes "
                         f"(N, {IMG_SIZE}, {IMG_SIZE}, 1) grey faces")


def check_output(probs: np.ndarray, name: str, n: int, atol: float = 1e-3) -> None:
    """ValueError unless `probs` holds seven probabilities per face for `n` faces (rows
    summing to 1 within `atol`)."""
    if probs.shape != (n, NUM_CLASSES):
        raise ValueError(f"model {name!r} gives output of shape {probs.shape[1:]} per face; "
                         f"a FER model must give {NUM_CLASSES} class probabilities")
    if not np.allclose(probs.sum(axis=1), 1.0, atol=atol) or (probs < 0).any():
        raise ValueError(f"model {name!r} does not end in a softmax: rows do not sum to 1")


def warm_up(model: FaceModel) -> None:
    """Run blank faces through a model once per small batch size and check what comes out
    (before any rescaling: a LiteRT model's raw output, with room for int8 steps)."""
    predict = getattr(model, "raw_predict", model.predict)
    for n in (1, 2, 3, 4):
        probs = predict(np.full((n, IMG_SIZE, IMG_SIZE), 128, np.uint8))
    check_output(probs, model.name, 4, atol=QUANTIZED_SUM_TOLERANCE
                 if hasattr(model, "raw_predict") else 1e-3)

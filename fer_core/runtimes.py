"""One inference interface over three runtimes, chosen by the model file's extension.

    model = open_face_model("models/default.onnx")   # .keras, .onnx or .tflite
    probs = model.predict(faces)    # (N, 48, 48[, 1]) grey levels 0..255 -> (N, 7) float32

- `.keras`: Keras/TensorFlow, `infer.Classifier` (a traced `tf.function`);
- `.onnx`: ONNX Runtime (`onnxruntime`), CPU execution provider;
- `.tflite`: LiteRT (`ai-edge-litert`; TensorFlow's own `tf.lite.Interpreter` where it is
  missing), with its default XNNPACK delegate.

Every back-end takes the same input (NHWC float32 grey levels 0..255: the models rescale
themselves, and an export keeps that first layer) and is checked the same way at warm-up
(seven probabilities summing to 1). Each is safe to share between threads.

Threads: on a small CPU the Streamlit server, OpenCV, TensorFlow and ONNX Runtime each want a
pool. `inference_threads()` (all cores, `$FER_INFER_THREADS` to change it) is what ONNX
Runtime's and LiteRT's intra-op pools get; ONNX Runtime runs no inter-op pool and its threads
sleep instead of spinning between calls (a webcam frame arrives every 33 ms, and a spinning
pool would take those cores from the server and the detector). TensorFlow keeps its own
settings (`train.py` sets them for training); OpenCV's pool is left to OpenCV.
This module imports neither TensorFlow nor a runtime until a model is opened.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import threading
from pathlib import Path
from collections.abc import Iterator
from typing import Protocol

import numpy as np

from fer_core.labels import IMG_SIZE, NUM_CLASSES

KERAS, ONNX, TFLITE = "keras", "onnx", "tflite"
FORMATS = {".keras": KERAS, ".onnx": ONNX, ".tflite": TFLITE}  # extension -> format
RUNTIME_NAMES = {KERAS: "Keras/TensorFlow", ONNX: "ONNX Runtime", TFLITE: "LiteRT"}
THREADS_ENV = "FER_INFER_THREADS"
# how far from 1 the row sums of an int8 softmax may be: seven outputs, each rounded to 1/256
QUANTIZED_SUM_TOLERANCE = 0.02


class FaceModel(Protocol):
    """What every back-end offers the Live page, photos, Evaluate and the CLI."""

    name: str
    runtime: str  # KERAS, ONNX or TFLITE

    def predict(self, faces: np.ndarray) -> np.ndarray: ...


def format_of(path: str | os.PathLike) -> str:
    """KERAS, ONNX or TFLITE from the file's extension; ValueError for any other file."""
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: a model file must end in {', '.join(FORMATS)} "
                         "(not .h5, SavedModel or pickles)")
    return fmt


def missing_runtime(fmt: str) -> str | None:
    """Why models of format `fmt` cannot run here (the package to install), or None."""
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


class OnnxFaceModel:
    """An `.onnx` FER model in ONNX Runtime (CPU). `run` is thread-safe in ONNX Runtime."""

    runtime = ONNX

    def __init__(self, source: str | os.PathLike | bytes, *, name: str = "model",
                 threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or inference_threads()
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        model = source if isinstance(source, bytes) else str(source)
        with _loading(ONNX):
            self.session = ort.InferenceSession(model, options,
                                                providers=["CPUExecutionProvider"])
        self.name = name
        self.threads = options.intra_op_num_threads
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ValueError(f"model {name!r} has {len(inputs)} inputs and {len(outputs)} "
                             "outputs; a FER model has one of each")
        shape = list(inputs[0].shape)
        if len(shape) != 4 or shape[1:] != [IMG_SIZE, IMG_SIZE, 1]:
            raise ValueError(f"model {name!r} takes input of shape {shape}; a FER model takes "
                             f"(N, {IMG_SIZE}, {IMG_SIZE}, 1) grey faces")
        self._input = inputs[0].name

    def predict(self, faces: np.ndarray) -> np.ndarray:
        batch = as_batch(faces)
        if len(batch) == 0:
            return np.zeros((0, NUM_CLASSES), np.float32)
        return np.asarray(self.session.run(None, {self._input: batch})[0], dtype=np.float32)


@contextlib.contextmanager
def _loading(fmt: str) -> Iterator[None]:
    """Whatever a runtime raises on a file it cannot load, as one ValueError saying so."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - each runtime has its own load errors
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ValueError(f"not a loadable {RUNTIME_NAMES[fmt]} model "
                         f"({type(exc).__name__}: {first[:300]})") from None


def _tflite_interpreter(source: str | os.PathLike | bytes, threads: int):
    """LiteRT's interpreter, or TensorFlow's where `ai-edge-litert` is not installed."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import fer_core.cpu  # noqa: F401  (TF flags before TensorFlow loads)
        from tensorflow.lite import Interpreter
    if isinstance(source, bytes):
        return Interpreter(model_content=source, num_threads=threads)
    return Interpreter(model_path=str(source), num_threads=threads)


class LiteRTFaceModel:
    """A `.tflite` FER model in LiteRT. An interpreter is not thread-safe: calls take a lock.
    Its input is resized to each batch size; a webcam sends the same size frame after frame,
    so the tensors are reallocated only when the number of faces changes."""

    runtime = TFLITE

    def __init__(self, source: str | os.PathLike | bytes, *, name: str = "model",
                 threads: int | None = None) -> None:
        self.threads = threads or inference_threads()
        with _loading(TFLITE):
            self.interpreter = _tflite_interpreter(source, self.threads)
        self.name = name
        inputs = self.interpreter.get_input_details()
        outputs = self.interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ValueError(f"model {name!r} has {len(inputs)} inputs and {len(outputs)} "
                             "outputs; a FER model has one of each")
        shape = [int(v) for v in inputs[0]["shape"]]
        if len(shape) != 4 or shape[1:] != [IMG_SIZE, IMG_SIZE, 1]:
            raise ValueError(f"model {name!r} takes input of shape {shape}; a FER model takes "
                             f"(N, {IMG_SIZE}, {IMG_SIZE}, 1) grey faces")
        if inputs[0]["dtype"] != np.float32:
            raise ValueError(f"model {name!r} takes {np.dtype(inputs[0]['dtype']).name} input; "
                             "export it with float32 input and output (int8 inside is fine)")
        self._input, self._output = inputs[0]["index"], outputs[0]["index"]
        self._size = -1
        self._lock = threading.Lock()

    def predict(self, faces: np.ndarray) -> np.ndarray:
        """Probabilities, each row rescaled to sum to 1: an int8 model's softmax comes out in
        steps of 1/256, so its rows sum to 1 only within about 0.01."""
        probs = self.raw_predict(faces)
        sums = probs.sum(axis=1, keepdims=True)
        return np.divide(probs, sums, out=probs, where=sums > 0)

    def raw_predict(self, faces: np.ndarray) -> np.ndarray:
        """What the interpreter outputs, as it is (`warm_up` checks this one)."""
        batch = as_batch(faces)
        if len(batch) == 0:
            return np.zeros((0, NUM_CLASSES), np.float32)
        with self._lock:
            if len(batch) != self._size:
                self.interpreter.resize_tensor_input(self._input, batch.shape, strict=False)
                self.interpreter.allocate_tensors()
                self._size = len(batch)
            self.interpreter.set_tensor(self._input, batch)
            self.interpreter.invoke()
            return np.array(self.interpreter.get_tensor(self._output), dtype=np.float32)


def open_face_model(path: str | os.PathLike, *, warmup: bool = True,
                    threads: int | None = None) -> FaceModel:
    """The back-end for `path` by its extension, warmed up and checked; ValueError when the
    file is not a FER model or its runtime is missing, OSError when it cannot be read."""
    path = Path(path)
    fmt = format_of(path)
    if (problem := missing_runtime(fmt)) is not None:
        raise ValueError(f"{path.name}: {problem}")
    if fmt == KERAS:
        from fer_core.infer import Classifier
        from fer_core.models import load_model

        return Classifier(load_model(path), warmup=warmup)
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} does not exist")
    try:
        model: FaceModel = (OnnxFaceModel if fmt == ONNX else LiteRTFaceModel)(
            path, name=path.name, threads=threads)
    except ValueError as exc:
        raise ValueError(f"{path.name}: {exc}") from None
    if warmup:
        warm_up(model)
    return model

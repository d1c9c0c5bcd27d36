"""Export a `.keras` FER model to ONNX or LiteRT (float or int8), and measure what came out.

    export_file("models/default.keras", "models/default.int8.onnx", calibration=faces)
    card = measure_export("models/default.keras", "models/default.int8.onnx", test_faces, labels)

- ONNX: Keras' own exporter (`model.export(format="onnx")`, through tf2onnx), dynamic batch.
- LiteRT: Keras' own exporter (`format="litert"`), float32 input and output.
- int8 is post-training static quantization calibrated on Training faces (the caller passes
  them: `calibration_faces`; never test faces): per-channel int8 weights, 8-bit activations.
  ONNX uses ONNX Runtime's QOperator format with `reduce_range` (7-bit weights): on CPUs
  without VNNI (AVX2 only, where this was measured) 8-bit weights overflow ONNX Runtime's
  u8s8 kernels, and on the first `default` the plain QDQ model lost 2 points of PublicTest
  accuracy (66.09% against 68.07%), the reduced one none (68.10%). LiteRT quantizes fully to
  int8 with float input and output.
Every file is written under a temporary name and renamed into place when complete.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import time
import warnings
from collections.abc import Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

import fer_core.cpu  # noqa: F401  (TF flags before TensorFlow loads)
from fer_core.files import atomic_path, file_sha256
from fer_core.labels import EMOTIONS, IMG_SIZE, NUM_CLASSES
from fer_core.backends import open_face_model
from fer_core.runtimes import KERAS, ONNX, TFLITE, format_of

CALIBRATION_FACES = 512
SPEED_BATCH = 128
SPEED_REPEATS = 20
INPUT_LAYOUT = {
    "shape": [None, IMG_SIZE, IMG_SIZE, 1], "layout": "NHWC", "dtype": "float32",
    "scaling": "grey levels 0..255 as floats; the model divides by 255 itself",
    "colour": "grayscale (BGR to gray as OpenCV's COLOR_BGR2GRAY)",
}


def calibration_faces(images: np.ndarray, labels: np.ndarray, n: int = CALIBRATION_FACES,
                      seed: int = 0) -> np.ndarray:
    """Up to `n` faces drawn evenly from each class (Training faces: the caller's promise)."""
    rng = np.random.default_rng(seed)
    per_class = max(1, n // NUM_CLASSES)
    rows = np.concatenate([
        rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in range(NUM_CLASSES)])
    return np.asarray(images)[np.sort(rows)]


def default_target(source: str | os.PathLike, fmt: str, int8: bool) -> Path:
    """Beside the source: `best.keras` -> `best.onnx` / `best.int8.tflite`."""
    source = Path(source)
    suffix = {KERAS: ".keras", ONNX: ".onnx", TFLITE: ".tflite"}[fmt]
    return source.with_name(source.stem + (".int8" if int8 else "") + suffix)


@contextlib.contextmanager
def _quiet():
    """tf2onnx and the TFLite converter print pages of progress; keep the CLI readable."""
    loggers = [logging.getLogger(n) for n in ("tf2onnx", "tensorflow", "absl")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def export_file(source: str | os.PathLike, target: str | os.PathLike, *, int8: bool = False,
                calibration: np.ndarray | None = None) -> Path:
    """Write the Keras model in `source` to `target` in the format its extension names.
    ValueError for a bad request (int8 without calibration faces, int8 .keras)."""
    from fer_core.models import export_model, load_model

    target = Path(target)
    fmt = format_of(target)
    if int8 and fmt == KERAS:
        raise ValueError("int8 applies to .onnx and .tflite exports, not .keras")
    if int8 and (calibration is None or len(calibration) == 0):
        raise ValueError("an int8 export needs Training faces to calibrate on")
    target.parent.mkdir(parents=True, exist_ok=True)
    if fmt == KERAS:
        return export_model(source, target)
    model = load_model(source)
    model(np.zeros((1, IMG_SIZE, IMG_SIZE, 1), np.float32), training=False)  # built for export
    with atomic_path(target, suffix=target.suffix) as tmp, _quiet():
        if fmt == ONNX:
            model.export(str(tmp), format="onnx", verbose=False)
            if int8:
                _quantize_onnx(tmp, calibration)
        else:
            _export_tflite(model, tmp, calibration if int8 else None)
    return target


def _export_tflite(model: Any, path: Path, calibration: np.ndarray | None) -> None:
    kwargs: dict[str, Any] = {}
    if calibration is not None:
        import tensorflow as tf

        faces = calibration.reshape(-1, 1, IMG_SIZE, IMG_SIZE, 1).astype(np.float32)
        kwargs = {"optimizations": [tf.lite.Optimize.DEFAULT],
                  "representative_dataset": lambda: ([face] for face in faces)}
    model.export(str(path), format="litert", verbose=False, **kwargs)


def _quantize_onnx(path: Path, calibration: np.ndarray) -> None:
    """Quantize the float ONNX file at `path` in place (module docstring: why QOperator)."""
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    name = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]) \
        .get_inputs()[0].name
    faces = calibration.reshape(-1, IMG_SIZE, IMG_SIZE, 1).astype(np.float32)

    class Faces(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = iter([{name: faces[i:i + 32]} for i in range(0, len(faces), 32)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._batches, None)

    prepared = path.with_name(path.name + ".pre.onnx")
    try:
        # the batch is the only unknown dimension: no symbolic shape inference (or sympy)
        quant_pre_process(str(path), str(prepared), skip_symbolic_shape=True)
        # the softmax stays float: 8-bit probabilities would not even sum to 1
        softmax = [n.name for n in onnx.load(str(prepared)).graph.node if n.op_type == "Softmax"]
        quantize_static(str(prepared), str(path), Faces(), quant_format=QuantFormat.QOperator,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        per_channel=True, reduce_range=True, nodes_to_exclude=softmax)
    finally:
        prepared.unlink(missing_ok=True)


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)


def speed(model: Any, faces: np.ndarray, *, batch: int = SPEED_BATCH,
          repeats: int = SPEED_REPEATS) -> dict[str, float]:
    """Median ms per face in a batch of `batch` and for one face alone."""
    many = np.resize(faces, (batch, *faces.shape[1:])) if len(faces) < batch else faces[:batch]
    one = faces[:1]
    model.predict(many), model.predict(one)  # warm: sizes allocated, caches filled
    return {"ms_per_face_batch": _median_ms(lambda: model.predict(many), repeats) / batch,
            "ms_single": _median_ms(lambda: model.predict(one), repeats)}


def predict_all(model: Any, images: np.ndarray, batch: int = 256) -> np.ndarray:
    return np.concatenate([model.predict(images[i:i + batch])
                           for i in range(0, len(images), batch)] or
                          [np.zeros((0, NUM_CLASSES), np.float32)])


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def measure_export(source: str | os.PathLike, target: str | os.PathLike,
                   images: np.ndarray | None, labels: np.ndarray | None, *,
                   int8: bool = False, test_name: str = "PublicTest", calibration_count: int = 0,
                   source_spec: str | None = None, run_id: str | None = None,
                   mean_with: Sequence[str | os.PathLike] = ()) -> dict[str, Any]:
    """The card of an exported file: what it is, and measured after export against its
    source (accuracy on `images`/`labels` when given, top-label agreement, ms per face).
    Paths are relative to the exported file's folder (a shipped card names `default.keras`,
    not this machine's checkout). `mean_with`: the checkpoints whose weights were averaged
    with the source's into the file (`export --weights mean`), recorded in `source`."""
    source, target = Path(source), Path(target)
    fmt = format_of(target)
    exported = open_face_model(target, temperature=False)  # as exported: a card's figures
    original = exported if fmt == KERAS else open_face_model(source, temperature=False)
    probe = images if images is not None and len(images) else \
        np.random.default_rng(0).integers(0, 256, (SPEED_BATCH, IMG_SIZE, IMG_SIZE), np.uint8)
    ours, theirs = speed(exported, probe), speed(original, probe)
    card: dict[str, Any] = {
        "file": target.name, "format": fmt, "int8": int8,
        "source": {"path": os.path.relpath(source, target.parent), "sha256": file_sha256(source),
                   "spec": source_spec, "run": run_id,
                   **({"mean_with": [{"path": os.path.relpath(m, target.parent),
                                      "sha256": file_sha256(m)} for m in mean_with]}
                      if mean_with else {})},
        "input": INPUT_LAYOUT, "output": "float32 (N, 7) softmax probabilities",
        "classes": list(EMOTIONS),
        "calibration": ({"split": "Training", "faces": calibration_count}
                        if calibration_count else None),
        "speed": {**ours, "source_ms_per_face_batch": theirs["ms_per_face_batch"],
                  "source_ms_single": theirs["ms_single"], "batch": SPEED_BATCH,
                  "repeats": SPEED_REPEATS, "threads": getattr(exported, "threads", None)},
        "publictest": None,
        "versions": {p: _version(p) for p in ("tensorflow", "keras", "onnxruntime",
                                               "ai-edge-litert", "tf2onnx")},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "size_bytes": target.stat().st_size,
    }
    if images is not None and labels is not None and len(images):
        p_ours, p_theirs = predict_all(exported, images), predict_all(original, images)
        card["publictest"] = {
            "split": test_name, "faces": int(len(labels)),
            "accuracy": float((p_ours.argmax(1) == labels).mean()),
            "source_accuracy": float((p_theirs.argmax(1) == labels).mean()),
            "top_label_agreement": float((p_ours.argmax(1) == p_theirs.argmax(1)).mean()),
            "max_probability_difference": float(np.abs(p_ours - p_theirs).max()),
        }
    return card

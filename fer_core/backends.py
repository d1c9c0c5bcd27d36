"""The ONNX Runtime and LiteRT back-ends, and `open_face_model`: a file to a `FaceModel`
(an ensemble manifest to `fer_core.ensemble`'s), with the temperature its card stores
(`model_card.stored_temperature`) applied to every answer.

What they share (formats, input and output checks, thread counts) is `fer_core.runtimes`;
the Keras back-end is `infer.Classifier`. Importing this module loads no runtime: each is
imported when a model of its format is opened.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from fer_core.calibration import with_temperature
from fer_core.labels import NUM_CLASSES
from fer_core.model_card import StoredTemperature, stored_temperature
from fer_core.runtimes import (ENSEMBLE, KERAS, ONNX, RUNTIME_NAMES, TFLITE, FaceModel,
                               as_batch, check_signature, format_of, inference_threads,
                               is_ensemble, mean_of_views, missing_runtime, warm_up,
                               with_mirror_images)


class MirroredFaceModel:
    """The mean of a model's probabilities for each face and its mirror image (flip TTA),
    both views in one call. Thread-safe when the model is."""

    def __init__(self, model: FaceModel) -> None:
        self.model, self.name, self.runtime = model, model.name, model.runtime

    def predict(self, faces: np.ndarray) -> np.ndarray:
        batch = as_batch(faces)
        if len(batch) == 0:
            return np.zeros((0, NUM_CLASSES), np.float32)
        return mean_of_views(self.model.predict(with_mirror_images(batch))).astype(np.float32)


class TemperedFaceModel:
    """A model whose probabilities pass through the temperature stored on its card for its
    views (one, or a face and its mirror when `model` is a MirroredFaceModel): the
    confidences the pages show and the "uncertain" mark read are calibrated ones. The top
    label is unchanged. Thread-safe when the model is."""

    def __init__(self, model: FaceModel, stored: StoredTemperature) -> None:
        self.model, self.stored = model, stored
        self.name, self.runtime = model.name, model.runtime
        self.temperature = stored.flip if isinstance(model, MirroredFaceModel) else stored.plain

    def predict(self, faces: np.ndarray) -> np.ndarray:
        return with_temperature(self.model.predict(faces), self.temperature)


def with_stored_temperature(model: FaceModel, path: str | os.PathLike) -> FaceModel:
    """`model` (opened from `path`) behind the temperature its card stores, if any (an
    ensemble's own temperature is in its manifest)."""
    stored = None if is_ensemble(path) else stored_temperature(path)
    return model if stored is None else TemperedFaceModel(model, stored)


def with_mirror_view(model: FaceModel) -> FaceModel:
    """`model` answering for each face and its mirror image, behind the temperature stored
    for that pair when it has one: what Evaluate's flip TTA scores, at twice the cost per
    face. A model already mirrored (an ensemble with flip TTA among them) is returned as it
    is; an ensemble without becomes one with it (its temperature after the views' mean)."""
    from fer_core.ensemble import EnsembleFaceModel

    if isinstance(model, TemperedFaceModel):
        if isinstance(model.model, MirroredFaceModel):
            return model
        return TemperedFaceModel(MirroredFaceModel(model.model), model.stored)
    if isinstance(model, EnsembleFaceModel):
        if model.tta == "flip":
            return model
        return EnsembleFaceModel(model.members, name=model.name, tta="flip",
                                 temperature=model.temperature)
    if isinstance(model, MirroredFaceModel):
        return model
    return MirroredFaceModel(model)


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
        check_signature(name, len(inputs), len(outputs), list(inputs[0].shape) if inputs else [])
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
        check_signature(name, len(inputs), len(outputs),
                        [int(v) for v in inputs[0]["shape"]] if inputs else [])
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
                    threads: int | None = None, temperature: bool = True) -> FaceModel:
    """The back-end for `path` by its extension, warmed up and checked, behind the
    temperature its card stores (unless `temperature` is False: its raw probabilities);
    ValueError when the file is not a FER model or its runtime is missing, OSError when it
    cannot be read."""
    model = _open(Path(path), warmup=warmup, threads=threads)
    return with_stored_temperature(model, path) if temperature else model


def _open(path: Path, *, warmup: bool, threads: int | None) -> FaceModel:
    fmt = format_of(path)
    if (problem := missing_runtime(fmt)) is not None:
        raise ValueError(f"{path.name}: {problem}")
    if fmt == KERAS:
        from fer_core.infer import Classifier
        from fer_core.models import load_model

        return Classifier(load_model(path), warmup=warmup)
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} does not exist")
    if fmt == ENSEMBLE:
        return _open_ensemble(path, warmup=warmup, threads=threads)
    try:
        model: FaceModel = (OnnxFaceModel if fmt == ONNX else LiteRTFaceModel)(
            path, name=path.name, threads=threads)
    except ValueError as exc:
        raise ValueError(f"{path.name}: {exc}") from None
    if warmup:
        warm_up(model)
    return model


def _open_ensemble(path: Path, *, warmup: bool, threads: int | None) -> FaceModel:
    """The ensemble a manifest describes, each member opened by its format; ValueError when
    the manifest is bad or a member is missing or not the file it records."""
    from fer_core.ensemble import EnsembleFaceModel, check_members, read_ensemble

    spec = read_ensemble(path)
    check_members(spec)
    # members' own temperatures stay out: the manifest's was fitted on their raw mean
    members = [open_face_model(member, warmup=warmup, threads=threads, temperature=False)
               for member in spec.members]
    return EnsembleFaceModel(members, name=spec.name, tta=spec.tta, temperature=spec.temperature)

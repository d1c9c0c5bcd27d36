"""Uploaded `.onnx` and `.tflite` models: untrusted files checked before they are kept.

The `.keras` path is `models.save_model_upload` (safe-mode load, cost from the layers).
Here, before any runtime sees the bytes: the size limit, the format's own marker (a LiteRT
flatbuffer says `TFL3` at byte 4; an ONNX file must parse as one), no external data files
(an ONNX file may name files to read beside it: a path a user controls), no custom operator
domains, and the largest tensor for one face within `uploads.MAX_ACTIVATION_BYTES` (from
ONNX shape inference, or LiteRT's tensor table). Then the model is opened from a hidden
temporary file and warmed up in a thread with `uploads.TRIAL_SECONDS` to answer (its seven
outputs checked), and only then renamed into place, named by the content's hash.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import numpy as np

from fer_core import uploads
from fer_core.files import atomic_path
from fer_core.paths import uploaded_models_dir
from fer_core.backends import open_face_model
from fer_core.runtimes import FORMATS, ONNX, TFLITE, missing_runtime

ONNX_DOMAINS = {"", "ai.onnx", "ai.onnx.ml", "com.microsoft"}  # what ONNX Runtime ships


def _onnx_problem(data: bytes, max_activation_bytes: int) -> str | None:
    import onnx

    try:
        model = onnx.load_model_from_string(data)
    except Exception:  # noqa: BLE001 - protobuf raises several kinds on garbage
        return "not an ONNX model file (it does not parse as one)"
    if not model.graph.node:
        return "not an ONNX model file (its graph is empty)"
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
        return "the model keeps its weights in external files; upload a self-contained .onnx"
    custom = sorted({op.domain for op in model.opset_import} - ONNX_DOMAINS)
    if custom:
        return f"the model uses custom operators ({', '.join(custom)}) this app cannot run"
    if len(model.graph.input) >= 1:
        dims = model.graph.input[0].type.tensor_type.shape.dim
        if dims:
            dims[0].ClearField("dim_param")
            dims[0].dim_value = 1
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - shapes it cannot infer are left to the timed trial
        return None
    for value in [*inferred.graph.value_info, *inferred.graph.output]:
        shape = [d.dim_value for d in value.type.tensor_type.shape.dim]
        if shape and all(v > 0 for v in shape) and math.prod(shape) * 4 > max_activation_bytes:
            return (f"one face makes a tensor of {math.prod(shape) * 4 / 2**20:,.0f} MB "
                    f"({value.name}), more than the {max_activation_bytes / 2**20:g} MB allowed")
    return None


def _tflite_problem(data: bytes) -> str | None:
    if len(data) < 8 or data[4:8] != b"TFL3":
        return "not a LiteRT/TFLite model file (no TFL3 marker)"
    return None


def _tensor_problem(model: Any, max_activation_bytes: int) -> str | None:
    """The largest tensor of a LiteRT model for one face, from its tensor table."""
    interpreter = getattr(model, "interpreter", None)
    if interpreter is None:
        return None
    for tensor in interpreter.get_tensor_details():
        size = math.prod(int(v) for v in tensor["shape"]) * np.dtype(tensor["dtype"]).itemsize
        if size > max_activation_bytes:
            return (f"one face makes a tensor of {size / 2**20:,.0f} MB ({tensor['name']}), "
                    f"more than the {max_activation_bytes / 2**20:g} MB allowed")
    return None


def _timed_open(path: Path, seconds: float) -> Any:
    try:
        return uploads.run_within(
            lambda: open_face_model(path, warmup=True, temperature=False), seconds)
    except uploads.TooSlow:
        raise ValueError(f"opening it and classifying four faces took more than {seconds:g} s; "
                         "the model is too slow") from None
    except Exception as exc:  # noqa: BLE001 - any failure of an untrusted model
        message = str(exc).removeprefix(f"{path.name}: ")
        raise ValueError(message if isinstance(exc, ValueError)
                         else f"the model fails on a face ({type(exc).__name__}: {message})"
                         ) from None


def save_upload(data: bytes, name: str, *, max_bytes: int = uploads.MAX_MODEL_UPLOAD_BYTES,
                max_activation_bytes: int = uploads.MAX_ACTIVATION_BYTES,
                seconds: float = uploads.TRIAL_SECONDS) -> Path:
    """Keep a checked `.onnx` or `.tflite` upload in `paths.uploaded_models_dir()` and return
    its path (module docstring); ValueError names the upload and what is wrong."""
    label = f"upload:{Path(name).name or 'model'}"
    fmt = FORMATS.get(Path(name).suffix.lower())
    if fmt not in (ONNX, TFLITE):
        raise ValueError(f"{label}: only .keras, .onnx and .tflite model files are accepted")
    problem = (uploads.model_size_problem(len(data), max_bytes) or missing_runtime(fmt)
               or (_onnx_problem(data, max_activation_bytes) if fmt == ONNX
                   else _tflite_problem(data)))
    if problem:
        raise ValueError(f"{label}: {problem}")
    folder = uploaded_models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    suffix = Path(name).suffix.lower()
    path = folder / f"{hashlib.blake2b(data, digest_size=8).hexdigest()}{suffix}"
    with atomic_path(path, suffix=suffix) as tmp:
        tmp.write_bytes(data)
        try:
            model = _timed_open(tmp, seconds)
            problem = _tensor_problem(model, max_activation_bytes)
        except ValueError as exc:
            raise ValueError(f"{label}: {exc}") from None
        if problem:
            raise ValueError(f"{label}: {problem}")
    return path

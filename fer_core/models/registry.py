"""The registry itself: `register_model`, `create_model`, `list_models`, `load_model`."""

from __future__ import annotations

import hashlib
import inspect
import io
import os
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fer_core.cpu  # noqa: F401  (TF flags before TensorFlow loads)
import keras
import numpy as np

from fer_core import uploads
from fer_core.files import atomic_path
from fer_core.models.cost import check_model_cost, trial_forward
from fer_core.paths import uploaded_models_dir

Builder = Callable[..., keras.Model]


@dataclass(frozen=True)
class ModelInfo:
    """What the UI shows of a registered model: name, one line, and its options' defaults."""

    name: str
    description: str
    defaults: dict[str, Any] = field(default_factory=dict)


_BUILDERS: dict[str, Builder] = {}
_INFOS: dict[str, ModelInfo] = {}


def register_model(name: str, description: str) -> Callable[[Builder], Builder]:
    """Decorator: register `builder(**options) -> keras.Model` under `name`."""

    def wrap(builder: Builder) -> Builder:
        if name in _BUILDERS:
            raise ValueError(f"model {name!r} is registered twice")
        params = inspect.signature(builder).parameters.values()
        defaults = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}
        _BUILDERS[name] = builder
        _INFOS[name] = ModelInfo(name=name, description=description, defaults=defaults)
        return builder

    return wrap


def model_names() -> list[str]:
    return sorted(_BUILDERS)


def list_models() -> list[ModelInfo]:
    return [_INFOS[name] for name in model_names()]


def create_model(name: str, **options: Any) -> keras.Model:
    """Build the registered model `name` with keyword options; unknown names and options fail loudly."""
    if name not in _BUILDERS:
        raise KeyError(f"unknown model {name!r}; registered models: {', '.join(model_names())}")
    unknown = set(options) - set(_INFOS[name].defaults)
    if unknown:
        raise TypeError(
            f"model {name!r} has no option(s) {', '.join(sorted(unknown))}; "
            f"its options: {', '.join(sorted(_INFOS[name].defaults)) or 'none'}"
        )
    return _BUILDERS[name](**options)


def count_params(model: keras.Model) -> int:
    return int(model.count_params())


def load_model(path: str | os.PathLike, *, compile: bool = False) -> keras.Model:
    """Load a native `.keras` model with Keras safe mode on (no code from `Lambda` layers)."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"{path}: only native .keras model files are accepted")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    problem = _archive_damage(path)
    if problem:
        raise ValueError(f"{path}: {problem}")
    try:
        return keras.saving.load_model(path, compile=compile, safe_mode=True)
    except Exception as exc:  # Keras raises many types for corrupt or foreign files
        raise ValueError(f"{path}: not a loadable Keras model ({type(exc).__name__}: {exc})") from exc


def _archive_damage(path: Path) -> str | None:
    """Why `path` is not an intact `.keras` zip archive (empty, truncated, a member failing
    its CRC check, no config.json), or None. Keras itself calls all of these "File not
    found" or a bare zip error."""
    try:
        size = path.stat().st_size
        if size == 0:
            return "the model file is empty (0 bytes): not a valid .keras zip archive"
        if not zipfile.is_zipfile(path):
            return (f"the model file is damaged or truncated ({size:,} bytes): not a valid "
                    ".keras zip archive")
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
            names = set(zf.namelist())
    except OSError as exc:
        return f"the model file cannot be read: {exc.strerror or exc}"
    except (zipfile.BadZipFile, EOFError, zlib.error, ValueError) as exc:
        return f"the model file is damaged or truncated ({exc}): not a valid .keras zip archive"
    if bad is not None:
        return f"the model file is damaged: {bad!r} in the archive fails its CRC check"
    if "config.json" not in names:
        return "not a Keras model file (no config.json in the .keras archive)"
    return None


def export_model(src: str | os.PathLike, dst: str | os.PathLike, *,
                 mean_with: Sequence[str | os.PathLike] = ()) -> Path:
    """Write the model in `src` to `dst` as a native `.keras` file without optimizer state
    (about half the size of a training checkpoint), atomically; returns `dst`.

    With `mean_with` (checkpoints of the same architecture, e.g. a run's best and last), the
    weights written are the element-wise mean of all of them: averaging checkpoints from the
    low-learning-rate end of a run lands nearer the middle of the basin than either one.
    """
    dst = Path(dst)
    if dst.suffix != ".keras":
        raise ValueError(f"{dst}: the exported file must end in .keras")
    model = load_model(src)
    if mean_with:
        weights = [model.get_weights()]
        for other in mean_with:
            other_weights = load_model(other).get_weights()
            if [w.shape for w in other_weights] != [w.shape for w in weights[0]]:
                raise ValueError(f"{other}: not the same architecture as {src}; cannot average")
            weights.append(other_weights)
        model.set_weights([np.mean(ws, axis=0) for ws in zip(*weights, strict=True)])
    dst.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dst, suffix=".keras") as tmp:
        model.save(tmp)
    return dst


def save_model_upload(data: bytes, name: str, *,
                      max_bytes: int = uploads.MAX_MODEL_UPLOAD_BYTES) -> Path:
    """Keep an uploaded model file (untrusted) in `paths.uploaded_models_dir()` and return its
    path.

    The bytes must be a native `.keras` archive of at most `max_bytes`, not a zip bomb, and
    load under safe mode (no code from `Lambda` layers); it is loaded from a hidden
    temporary file and only renamed into place once it did. A model that loads can still
    be a compute bomb, so its cost per face is bounded from its layers' shapes
    (`cost.check_model_cost`) and one face is run with a time limit (`cost.trial_forward`)
    first. ValueError says what is wrong.
    The stored name comes from the content's hash, never from `name`.
    """
    label = f"upload:{Path(name).name or 'model'}"
    if not name.lower().endswith(".keras"):
        raise ValueError(f"{label}: only native .keras model files are accepted "
                         "(not .h5, SavedModel or pickles)")
    problem = uploads.model_size_problem(len(data), max_bytes)
    if problem:
        raise ValueError(f"{label}: {problem}")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = set(zf.namelist())
            problem = uploads.archive_problem(
                [(i.filename, i.file_size, i.compress_size) for i in zf.infolist()],
                max_members=uploads.MAX_MODEL_ARCHIVE_MEMBERS,
                max_bytes=uploads.MODEL_EXPANSION * max_bytes)
    except zipfile.BadZipFile:
        raise ValueError(f"{label}: not a Keras model file (a .keras file is a zip archive)") \
            from None
    if problem:
        raise ValueError(f"{label}: {problem}")
    if "config.json" not in names:
        raise ValueError(f"{label}: not a Keras model file (no config.json in the archive)")
    folder = uploaded_models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.blake2b(data, digest_size=8).hexdigest()}.keras"
    with atomic_path(path, suffix=".keras") as tmp:
        try:
            tmp.write_bytes(data)
            model = load_model(tmp)
            check_model_cost(model)  # from the layers' shapes, before anything runs
            trial_forward(model)
        except ValueError as exc:
            raise ValueError(f"{label}: {str(exc).removeprefix(f'{tmp}: ')}") from None
    return path

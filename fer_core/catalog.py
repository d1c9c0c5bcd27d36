"""The model catalog: which models can be picked, and where each one's file is.

A model spec is one of
- a run id: that run's best weights (`weights/best.keras`),
- `default`: the shipped model (`paths.default_model_path()`, `$FER_DEFAULT_MODEL`),
- the name of a shipped ensemble (`accurate`: `accurate.ensemble.json` beside the default
  model; `fer_core.ensemble`),
- the path of a model file: native `.keras`, `.onnx` or `.tflite` (an exported model, a
  checked upload) or an ensemble manifest; `fer_core.runtimes` runs each format.

`resolve(spec)` turns a spec into a `ModelRef`; `choices(...)` lists the selectable ones,
the pages' different rules as its arguments; `upload(data, name)` checks a user's file and
makes it a choice. Import-light (no TensorFlow), so a page can list its models before Keras
loads; a model is loaded by whoever needs it (`ui.models` on the pages).

    ref = resolve("default")            # ModelRef(spec="default", state="shipped", ...)
    picks = choices(finished_only=True, default_first=True)   # the Live page's rule
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from fer_core import runs
from fer_core.model_card import carded_files
from fer_core.paths import default_model_path
from fer_core.runtimes import (
    ENSEMBLE_SUFFIX,
    FORMATS,
    ensemble_name,
    is_model_file_name,
)

DEFAULT = "default"
SHIPPED = "shipped"  # state of the default model
FILE = "file"  # state of a model given by its path
UPLOADED = "uploaded"  # state of a checked upload
_LISTED = 8  # known specs named in an "unknown model" error


class ModelSpecError(runs.RunError):
    """A spec names no usable model file; the message says what was tried and what exists."""


@dataclass(frozen=True)
class ModelRef:
    """A model that can be picked: what to call it, where its file is, where it came from."""

    spec: str  # what resolve() accepts back: a run id, "default" or the file's path
    label: str  # one line for a picker
    path: Path  # the model file: .keras, .onnx or .tflite
    state: str  # a run's state (finished, running, failed, ...), else SHIPPED, FILE, UPLOADED
    run_id: str | None = None
    run_dir: Path | None = None
    architecture: str | None = None  # the registry name, when the run's config says it
    trained_on: str | None = None  # the run's dataset (its config's `data`), when known
    # whether the run left out Training faces found in test splits (None: not a run)
    dropped_test_overlap: bool | None = None


def resolve(spec: str | os.PathLike, runs_dir: str | os.PathLike | None = None) -> ModelRef:
    """The model a spec names (module docstring); ModelSpecError says what was tried."""
    text = str(spec).strip()
    if text == DEFAULT:
        return _default()
    manifest = default_model_path().parent / f"{text}{ENSEMBLE_SUFFIX}"
    if text and os.sep not in text and manifest.is_file():
        return _shipped_ensemble(manifest)
    if is_model_file_name(text) or os.sep in text:
        return _file(Path(text).expanduser())
    root = runs.runs_root(runs_dir)
    if text and not text.startswith(".") and (root / text).is_dir():
        return checkpoint(text, "best", runs_dir=root)
    known = [ref.spec for ref in choices(root)]
    listed = ", ".join(known[:_LISTED]) + (f" and {len(known) - _LISTED} more"
                                           if len(known) > _LISTED else "")
    raise ModelSpecError(
        f"unknown model {text!r}: not a run id in {root}, not a model file, and not "
        f"'{DEFAULT}'; models here: {listed or 'none (no run has weights, no default shipped)'}"
    )


def checkpoint(run: str | os.PathLike | runs.RunInfo, weights: str = "best",
               runs_dir: str | os.PathLike | None = None) -> ModelRef:
    """A run's `best` or `last` weights; RunError when there is no such run or file yet."""
    if weights not in ("best", "last"):
        raise ValueError(f"weights must be 'best' or 'last', not {weights!r}")
    info = runs.get_run(run, runs_dir)
    path = info.best_model_path if weights == "best" else info.last_model_path
    if path is None:
        raise ModelSpecError(f"run {info.id!r} has no {weights} weights yet (state "
                             f"{info.state}, {info.epoch} epoch(s) done)")
    return _from_run(info, path, weights)


def choices(runs_dir: str | os.PathLike | None = None, *, finished_only: bool = False,
            default_first: bool = False, exports: bool = False) -> list[ModelRef]:
    """Every model that can be picked: runs with best weights (newest first) and the shipped
    default when it exists.

    `finished_only` leaves out runs still running, stopped or failed (whose best weights
    may be from an early epoch); `default_first` puts the default before the runs instead of
    after them; `exports` lists after each model its `.onnx`/`.tflite` exports that carry a
    card (`fer_core.model_card`). Unreadable run folders are never listed.
    """
    found = [
        _from_run(info, info.best_model_path)
        for info in runs.list_runs(runs_dir)
        if info.readable and info.best_model_path is not None
        and (info.state == "finished" or not finished_only)
    ]
    shipped = [_default()] if default_model_path().is_file() else []
    shipped += shipped_ensembles()
    found = [*shipped, *found] if default_first else [*found, *shipped]
    if exports:
        found = [item for ref in found for item in (ref, *exports_beside(ref))]
    return found


def exports_beside(ref: ModelRef) -> list[ModelRef]:
    """The exported files with a card beside a `.keras` model (`best.int8.onnx` beside
    `best.keras`), as choices of their own."""
    return [ModelRef(spec=str(path.resolve()), label=f"{ref.label} · {path.name}",
                     path=path.resolve(), state=FILE, run_id=ref.run_id, run_dir=ref.run_dir,
                     architecture=ref.architecture, trained_on=ref.trained_on,
                     dropped_test_overlap=ref.dropped_test_overlap)
            for path, _, _ in carded_files(ref.path)]


def upload(data: bytes, name: str) -> ModelRef:
    """A user's model file (.keras, .onnx or .tflite), checked (format, size, load, cost per
    face) and kept in the cache folder (`models.save_model_upload` for Keras,
    `runtime_uploads.save_upload` for the others); ValueError says why it cannot be used."""
    if Path(name).suffix.lower() == ".keras":
        from fer_core.models import save_model_upload

        path = save_model_upload(data, name)
    else:
        from fer_core.runtime_uploads import save_upload

        path = save_upload(data, name)
    return ModelRef(spec=str(path), label=f"uploaded {Path(name).name}", path=path,
                    state=UPLOADED)


def config_path_for(model_path: Path) -> Path:
    """`models/default.keras` -> `models/default.config.json`: the TrainConfig an exported
    `.keras` file was made with (`python -m fer_core export` writes it)."""
    return model_path.with_name(f"{model_path.stem}.config.json")


def _default() -> ModelRef:
    path = default_model_path()
    if not path.is_file():
        raise ModelSpecError(f"no default model shipped yet: {path} does not exist")
    # the dataset it was trained on, as its exported config records it
    trained_on = (runs.read_json_dict(config_path_for(path)) or {}).get("data")
    return ModelRef(spec=DEFAULT, label="default (the shipped model)", path=path, state=SHIPPED,
                    trained_on=trained_on)


def shipped_ensembles() -> list[ModelRef]:
    """The ensembles shipped beside the default model (`models/accurate.ensemble.json` ->
    spec `accurate`), by name; an unreadable manifest is still listed (opening it says why)."""
    return [_shipped_ensemble(path)
            for path in sorted(default_model_path().parent.glob(f"*{ENSEMBLE_SUFFIX}"))
            if ensemble_name(path) not in ("", DEFAULT) and path.is_file()]


def _shipped_ensemble(path: Path) -> ModelRef:
    name = ensemble_name(path)
    manifest = runs.read_json_dict(path) or {}
    members = manifest.get("members")
    count = f"{len(members)} models" if isinstance(members, list) else "models"
    tta = " with flip TTA" if manifest.get("tta", "flip") == "flip" else ""
    return ModelRef(spec=name, label=f"{name} (shipped ensemble of {count}{tta})",
                    path=path.resolve(), state=SHIPPED, architecture="ensemble",
                    trained_on=manifest.get("data"))


def _file(path: Path) -> ModelRef:
    if not path.is_file():
        raise ModelSpecError(f"model file {path} does not exist")
    if not is_model_file_name(path):
        raise ModelSpecError(f"{path}: a model file must end in {', '.join(FORMATS)} or "
                             f"{ENSEMBLE_SUFFIX}")
    path = path.resolve()
    return ModelRef(spec=str(path), label=path.name, path=path, state=FILE)


def _from_run(info: runs.RunInfo, path: Path, weights: str = "best") -> ModelRef:
    architecture = info.config.model if info.config else None
    unnamed = info.name == info.id  # the label says the id once, not as name and id
    # an id from `runs.new_run_id` names the model already
    notes = [] if unnamed and architecture and architecture in info.id else [architecture or "?"]
    if info.state != "finished":
        notes.append(info.state)
    if weights != "best":  # a run id means its best weights: the others go by their path
        notes.append(f"{weights} weights")
    label = " · ".join([f"run {info.name}", *notes]) + ("" if unnamed else f" ({info.id})")
    return ModelRef(spec=info.id if weights == "best" else str(path), label=label, path=path,
                    state=info.state, run_id=info.id, run_dir=info.dir,
                    architecture=architecture,
                    trained_on=info.config.data if info.config else None,
                    dropped_test_overlap=info.config.drop_test_overlap if info.config else None)

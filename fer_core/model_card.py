"""The card beside every exported model file, and which file a page runs a model from.

`models/default.int8.onnx` has `models/default.int8.onnx.card.json` beside it: the source
`.keras` file (and its SHA-256), the format, the input layout and scaling, the class order,
the PublicTest accuracy of the exported file measured after export next to the source's,
the agreement of their top labels, and ms per face for both, measured in the same run on the
exporting machine (`fer_core.export` writes it).

`fastest_export(keras_path)` is how the Live page picks a runtime automatically: among the
exports beside a `.keras` file whose card names that very file (same SHA-256, so a stale
export of older weights is never used), whose runtime is installed here and whose accuracy
is within `MAX_ACCURACY_DROP` points of the source's, the one fastest for a single face (a
webcam frame holds one to three), if it beat the Keras model on its card. None means: run
the `.keras` file itself.

A card may also store the model's temperature (`python -m fer_core calibrate`): one for one
view per face and one for its mean with the mirror view (Evaluate's TTA, and the Live page,
photos and Analyse unless the user unticks it), fitted on PublicTest, with the SHA-256 of the
file it was fitted for, so new weights in the same file never inherit it. TensorFlow-free.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fer_core.files import atomic_write, file_sha256
from fer_core.runtimes import FORMATS, KERAS, RUNTIME_NAMES, missing_runtime

CARD_SUFFIX = ".card.json"
CARD_VERSION = 1
MAX_ACCURACY_DROP = 0.3  # points of PublicTest accuracy an export may lose and still be picked


def card_path(model_path: str | os.PathLike) -> Path:
    """`models/default.onnx` -> `models/default.onnx.card.json`."""
    path = Path(model_path)
    return path.with_name(path.name + CARD_SUFFIX)


def write_card(model_path: str | os.PathLike, card: dict[str, Any]) -> Path:
    path = card_path(model_path)
    atomic_write(path, json.dumps({"version": CARD_VERSION, **card}, indent=2) + "\n")
    return path


def read_card(model_path: str | os.PathLike) -> dict[str, Any] | None:
    """The card of a model file, or None (no card, unreadable, another version)."""
    try:
        card = json.loads(card_path(model_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return card if isinstance(card, dict) and card.get("version") == CARD_VERSION else None


@dataclass(frozen=True)
class Export:
    """An exported file fit to stand in for its source, with what its card measured."""

    path: Path
    format: str
    int8: bool
    accuracy: float | None
    source_accuracy: float | None
    agreement: float | None
    ms_single: float
    source_ms_single: float

    @property
    def label(self) -> str:
        kind = RUNTIME_NAMES[self.format] + (" int8" if self.int8 else "")
        return f"{kind} ({self.path.name})"

    @property
    def speedup(self) -> float:
        return self.source_ms_single / self.ms_single if self.ms_single else 0.0


def carded_files(keras_path: str | os.PathLike) -> list[tuple[Path, str, dict[str, Any]]]:
    """(path, format, card) of every `.onnx`/`.tflite` file with a card beside a `.keras`
    model (`best.int8.onnx` beside `best.keras`), whatever the card says."""
    keras_path = Path(keras_path)
    if keras_path.suffix != ".keras" or not keras_path.is_file():
        return []
    found = []
    for path in sorted(keras_path.parent.glob(f"{keras_path.stem}.*")):
        fmt = FORMATS.get(path.suffix.lower())
        card = read_card(path) if fmt not in (None, KERAS) else None
        if card is not None:
            found.append((path, fmt, card))
    return found


def exports_made_from(keras_path: str | os.PathLike) -> list[tuple[Path, str, dict[str, Any]]]:
    """`carded_files` whose card names this very file as its source (same SHA-256): exports
    of these weights, whatever else the card says."""
    found = carded_files(keras_path)
    if not found:
        return []
    try:
        sha = file_sha256(keras_path)
    except OSError:
        return []
    return [(path, fmt, card) for path, fmt, card in found
            if isinstance(card.get("source"), dict) and card["source"].get("sha256") == sha]


def exports_of(keras_path: str | os.PathLike) -> list[Export]:
    """Exports beside `keras_path` made from this very file, runnable here, accurate enough
    (module docstring); fastest for one face first."""
    found = []
    for path, fmt, card in exports_made_from(keras_path):
        if missing_runtime(fmt) is not None:
            continue
        try:
            test, speed = card.get("publictest") or {}, card["speed"]
            export = Export(path=path, format=fmt, int8=bool(card.get("int8")),
                            accuracy=test.get("accuracy"),
                            source_accuracy=test.get("source_accuracy"),
                            agreement=test.get("top_label_agreement"),
                            ms_single=float(speed["ms_single"]),
                            source_ms_single=float(speed["source_ms_single"]))
        except (KeyError, TypeError, ValueError, OSError):
            continue
        if export.accuracy is None or export.source_accuracy is None:
            continue  # never measured against the source: not picked automatically
        if (export.source_accuracy - export.accuracy) * 100 > MAX_ACCURACY_DROP:
            continue
        found.append(export)
    return sorted(found, key=lambda e: e.ms_single)


def fastest_export(keras_path: str | os.PathLike) -> Export | None:
    """The export to run instead of `keras_path`, or None to run the Keras model."""
    found = [e for e in exports_of(keras_path) if e.ms_single < e.source_ms_single]
    return found[0] if found else None


def runtime_file(model_path: str | os.PathLike) -> Path:
    """The file that runs a model: its fastest export, else the file itself (the Live page's
    Automatic runtime; `analyze` and the benchmarks use it too)."""
    export = fastest_export(model_path)
    return export.path if export is not None else Path(model_path)


@dataclass(frozen=True)
class StoredTemperature:
    """The temperatures a card stores for its model file: `plain` for one view per face,
    `flip` for the mean of a face and its mirror (Evaluate's TTA; the pages' default)."""

    plain: float
    flip: float
    fitted_on: str


def _positive(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0)


def stored_temperature(model_path: str | os.PathLike) -> StoredTemperature | None:
    """The temperature stored on a model file's card, or None: no card, none stored, a
    malformed entry, or one fitted for other weights (its SHA-256 is not this file's)."""
    card = read_card(model_path)
    entry = card.get("temperature") if card else None
    if not isinstance(entry, dict) or not all(_positive(entry.get(k)) for k in ("plain", "flip")):
        return None
    try:
        if entry.get("sha256") != file_sha256(model_path):
            return None
    except OSError:
        return None
    return StoredTemperature(float(entry["plain"]), float(entry["flip"]),
                             str(entry.get("fitted_on", "")))


def store_temperature(model_path: str | os.PathLike, plain: float, flip: float, *,
                      fitted_on: str, sha256: str | None = None,
                      measured: dict[str, Any] | None = None) -> Path:
    """Record a model file's temperatures on its card (a card is started if it has none),
    with the SHA-256 of the weights they were fitted for (`sha256`, taken before predicting,
    so a file rewritten meanwhile is not stamped; default: the file's now); `measured` (the
    data, ECE and log-loss before and after) is kept beside."""
    if not (_positive(plain) and _positive(flip)):
        raise ValueError(f"temperatures must be positive numbers, got {plain!r} and {flip!r}")
    path = Path(model_path)
    card = read_card(path) or {"file": path.name, "format": FORMATS.get(path.suffix.lower())}
    card.pop("version", None)
    card["temperature"] = {"plain": round(float(plain), 4), "flip": round(float(flip), 4),
                           "fitted_on": fitted_on, "sha256": sha256 or file_sha256(path),
                           **(measured or {})}
    return write_card(path, card)

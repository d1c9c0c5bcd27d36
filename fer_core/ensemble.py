"""Ensembles: several FER model files run as one model, with flip test-time augmentation and
a temperature, described by a small JSON manifest beside the member files.

`models/accurate.ensemble.json` is the shipped `accurate` model:

    {"version": 1, "name": "accurate",
     "members": [{"file": "accurate-1.keras", "sha256": "..."}, ...],
     "tta": "flip", "temperature": 0.93, "fitted_on": "PublicTest of ...", ...}

Member files are named relative to the manifest's folder and may be of any format
(`.keras`, `.onnx`, `.tflite`); each one's SHA-256 is recorded, and a member whose file
changed is refused (the manifest's figures were measured on those very files). The
prediction is the mean of every member's probabilities over every view of the face (the
face, and with `tta="flip"` its mirror image), then softmax(log p / T) with the manifest's
temperature, fitted by log-loss on the split named in `fitted_on`.

`backends.open_face_model(path)` opens a manifest's members (each by its format) into an
`EnsembleFaceModel`, a `runtimes.FaceModel`, so the Live page, photos, Evaluate, Analyse and
the CLI run an ensemble as they run any model file. `write_ensemble` is what `python -m fer_core ensemble` writes. Importing
this module loads neither TensorFlow nor any runtime.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fer_core.calibration import with_temperature
from fer_core.files import atomic_write, file_sha256
from fer_core.labels import NUM_CLASSES
from fer_core.runtimes import (
    ENSEMBLE,
    ENSEMBLE_SUFFIX,
    FORMATS,
    FaceModel,
    as_batch,
    ensemble_name,
    is_ensemble,
    mean_of_views,
    with_mirror_images,
)

MANIFEST_VERSION = 1
TTA_MODES: tuple[str, ...] = ("none", "flip")
MAX_MEMBERS = 16


@dataclass(frozen=True)
class EnsembleSpec:
    """A manifest, read and checked: where each member is and how the outputs combine."""

    path: Path
    name: str
    members: tuple[Path, ...]
    sha256: tuple[str | None, ...]  # recorded per member; None: not recorded (not checked)
    tta: str = "flip"
    temperature: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict)  # what else the manifest records


def _problem(path: Path, where: str, what: str) -> ValueError:
    return ValueError(f"{path}: {where} {what}")


def read_ensemble(path: str | os.PathLike) -> EnsembleSpec:
    """The manifest at `path`, checked; ValueError names the file and the field at fault,
    OSError when it cannot be read."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise _problem(path, "the manifest", "is not UTF-8 JSON") from None
    except json.JSONDecodeError as exc:
        raise _problem(path, "the manifest", f"is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise _problem(path, "the manifest", "must be a JSON object")
    if data.get("version") != MANIFEST_VERSION:
        raise _problem(path, "field 'version'", f"must be {MANIFEST_VERSION}, got "
                                                 f"{data.get('version')!r}")
    members = data.get("members")
    if not isinstance(members, list) or not 1 <= len(members) <= MAX_MEMBERS:
        raise _problem(path, "field 'members'", f"must list 1 to {MAX_MEMBERS} model files")
    files, hashes = [], []
    for i, member in enumerate(members):
        entry = {"file": member} if isinstance(member, str) else member
        name = entry.get("file") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name.strip():
            raise _problem(path, f"members[{i}]", "must name a model file ('file')")
        relative = Path(name)
        if relative.is_absolute() or ".." in relative.parts:
            raise _problem(path, f"members[{i}]", f"{name!r} must be a file beside the manifest")
        if relative.suffix.lower() not in FORMATS:
            raise _problem(path, f"members[{i}]", f"{name!r} must end in "
                                                  f"{', '.join(FORMATS)}")
        sha = entry.get("sha256")
        if sha is not None and not isinstance(sha, str):
            raise _problem(path, f"members[{i}].sha256", "must be a hex string")
        files.append(path.parent / relative)
        hashes.append(sha)
    tta = data.get("tta", "flip")
    if tta not in TTA_MODES:
        raise _problem(path, "field 'tta'", f"must be one of {', '.join(TTA_MODES)}, got {tta!r}")
    temperature = data.get("temperature", 1.0)
    if (isinstance(temperature, bool) or not isinstance(temperature, (int, float))
            or not math.isfinite(temperature) or temperature <= 0):
        raise _problem(path, "field 'temperature'", f"must be a positive number, got "
                                                    f"{temperature!r}")
    known = {"version", "name", "members", "tta", "temperature"}
    return EnsembleSpec(path=path, name=str(data.get("name") or ensemble_name(path)),
                        members=tuple(files), sha256=tuple(hashes), tta=tta,
                        temperature=float(temperature),
                        extra={k: v for k, v in data.items() if k not in known})


def write_ensemble(path: str | os.PathLike, members: list[str | os.PathLike], *,
                   tta: str = "flip", temperature: float = 1.0,
                   extra: dict[str, Any] | None = None) -> EnsembleSpec:
    """Write a manifest naming `members` (files in the manifest's folder) with their SHA-256,
    atomically; returns it as read back. ValueError for a member elsewhere or missing."""
    path = Path(path)
    if not is_ensemble(path):
        raise ValueError(f"{path}: an ensemble manifest's name must end in {ENSEMBLE_SUFFIX}")
    folder = path.parent.resolve()
    entries = []
    for member in members:
        member = Path(member)
        if member.resolve().parent != folder:
            raise ValueError(f"{member}: an ensemble member must be a file in {folder}, beside "
                             "the manifest (export it there with `export --to`)")
        if not member.is_file():
            raise ValueError(f"{member}: no such model file")
        entries.append({"file": member.name, "sha256": file_sha256(member)})
    data = {"version": MANIFEST_VERSION, "name": ensemble_name(path), "members": entries,
            "tta": tta, "temperature": round(float(temperature), 4), **(extra or {})}
    atomic_write(path, json.dumps(data, indent=2) + "\n")
    return read_ensemble(path)


def model_fingerprint(path: str | os.PathLike) -> str:
    """A model's content hash: the file's SHA-256, or for an ensemble one over its manifest
    and every member file (so a changed member changes it); the evaluation cache's key."""
    if not is_ensemble(path):
        return file_sha256(path)
    spec = read_ensemble(path)
    digest = hashlib.sha256(Path(path).read_bytes())
    for member in spec.members:
        digest.update(file_sha256(member).encode())
    return digest.hexdigest()


class EnsembleFaceModel:
    """Members' probabilities averaged over the views of each face, then the temperature.
    Thread-safe when its members are (every back-end is)."""

    runtime = ENSEMBLE

    def __init__(self, members: list[FaceModel], *, name: str = "ensemble", tta: str = "flip",
                 temperature: float = 1.0) -> None:
        if not members:
            raise ValueError("an ensemble needs at least one member")
        if tta not in TTA_MODES:
            raise ValueError(f"tta must be one of {', '.join(TTA_MODES)}, got {tta!r}")
        self.members, self.name, self.tta, self.temperature = list(members), name, tta, temperature

    def predict(self, faces: np.ndarray) -> np.ndarray:
        batch = as_batch(faces)
        if len(batch) == 0:
            return np.zeros((0, NUM_CLASSES), np.float32)
        if self.tta == "flip":  # one call per member for both views: half the calls
            batch = with_mirror_images(batch)
        total = np.zeros((len(batch), NUM_CLASSES), np.float64)
        for member in self.members:
            total += member.predict(batch)
        if self.tta == "flip":
            total = mean_of_views(total)
        probs = total / total.sum(axis=1, keepdims=True)
        if self.temperature != 1.0:
            return with_temperature(probs, self.temperature)
        return probs.astype(np.float32)


def check_members(spec: EnsembleSpec) -> None:
    """ValueError unless every member exists and is the file the manifest records."""
    for member, sha in zip(spec.members, spec.sha256):
        if not member.is_file():
            raise ValueError(f"{spec.path.name}: member {member.name} does not exist")
        if sha is not None and file_sha256(member) != sha:
            raise ValueError(f"{spec.path.name}: member {member.name} is not the file this "
                             "ensemble was built and measured with (its SHA-256 differs); "
                             "rebuild it with `python -m fer_core ensemble`")

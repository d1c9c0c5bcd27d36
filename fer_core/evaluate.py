"""Judge a model on a split: batched predictions, metrics, confusion, TTA, comparison, mistakes.

Conventions, so no metric divides by zero:
- precision of a class the model never predicts is 0.0; recall of a class absent from the
  labels is 0.0; F1 is 0.0 when precision + recall is 0.
- macro-F1 averages F1 over the classes that occur in the labels or in the predictions (as
  scikit-learn does), so a split without "disgust" that the model also never calls "disgust"
  is not marked down for it; such a class keeps 0.0 in the per-class table with support 0.
- a row of the row-normalised confusion matrix whose class has no support is all zeros.

An ensemble is scored as it runs (its views averaged, then its stored temperature), but from
the mean of its members' raw probabilities per view, so one evaluation also gives what it
scores without its mirror view and its calibration before and after its own temperature. A
model file whose card stores a temperature (`model_card.stored_temperature`) is scored after
it too: the one for one view without TTA, the one for the two views' mean with it.

Predictions are cached so reopening a result is instant: for a run in `runs/<id>/eval/`,
for any other model (a .keras path, `default`) under `.cache/eval/<model hash>/`. Each entry
is `<split>.json` (metrics and the key) plus `<split>.npz` (probabilities, with and without
the horizontal flip; an ensemble's before its temperature). The key hashes the model file
and the images and labels, so a changed model or data invalidates it.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fer_core import catalog
from fer_core.calibration import (
    Calibration,
    calibrate,
    measure_temperature,
    with_temperature,
)
from fer_core.backends import MirroredFaceModel, TemperedFaceModel
from fer_core.ensemble import EnsembleFaceModel, model_fingerprint, read_ensemble
from fer_core.files import atomic_write
from fer_core.labels import EMOTIONS, NUM_CLASSES
from fer_core.model_card import StoredTemperature, stored_temperature
from fer_core.paths import eval_cache_dir
from fer_core.runtimes import is_ensemble

BATCH_SIZE = 256
CACHE_VERSION = 2  # 2: an ensemble's cached probabilities are its members' mean per view


@dataclass(frozen=True)
class ClassMetrics:
    """Precision, recall, F1 and support of one class; `predicted` counts predictions of it."""

    name: str
    precision: float
    recall: float
    f1: float
    support: int
    predicted: int


@dataclass(frozen=True)
class Metrics:
    """Everything derived from a confusion matrix (rows: true class, columns: predicted)."""

    accuracy: float
    macro_f1: float
    per_class: tuple[ClassMetrics, ...]
    confusion: np.ndarray

    @property
    def confusion_normalized(self) -> np.ndarray:
        return normalize_rows(self.confusion)

    def to_dict(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "per_class": {
                c.name: {
                    "precision": c.precision,
                    "recall": c.recall,
                    "f1": c.f1,
                    "support": c.support,
                    "predicted": c.predicted,
                }
                for c in self.per_class
            },
            "confusion": self.confusion.tolist(),
        }


@dataclass(frozen=True)
class EvalResult(Metrics):
    """Metrics of one model on one set of faces, with the probabilities they came from.

    With `tta` the probabilities are the mean over each face and its mirror image, and
    `accuracy_without_tta` keeps the plain accuracy so both can be shown; `tta_built_in` says
    the model (an ensemble) averages the two views itself, whatever was asked.
    `stored_temperature` is the temperature the model applies itself (an ensemble's, fitted
    when it was built, or the one its card stores for this view): `probs` are after it.
    """

    probs: np.ndarray = field(default_factory=lambda: np.zeros((0, NUM_CLASSES), np.float32))
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    tta: bool = False
    accuracy_without_tta: float | None = None
    tta_built_in: bool = False
    stored_temperature: float | None = None
    probs_before_temperature: np.ndarray | None = None

    @property
    def predictions(self) -> np.ndarray:
        return self.probs.argmax(axis=1)

    @property
    def probs_as_trained(self) -> np.ndarray:
        """`probs` without the model's stored temperature (`probs` itself when it has none):
        the probabilities it was applied to where kept, else `probs` scaled back (exact to
        float32 rounding, which can move a face across a reliability bin's edge)."""
        if self.stored_temperature is None:
            return self.probs
        if self.probs_before_temperature is not None:
            return self.probs_before_temperature
        return with_temperature(self.probs, 1.0 / self.stored_temperature)

    def calibration(self) -> Calibration | None:
        """The ECE and log-loss before and after a temperature (None without faces).

        A model with a stored temperature is measured before and after that one: on any
        split but the one it was fitted on, that is an honest test of it. Any other model gets
        a temperature fitted on these faces: on a validation split that is how one is chosen;
        elsewhere it says how far the confidences are off."""
        if not len(self.labels):
            return None
        if self.stored_temperature is None:
            return calibrate(self.probs, self.labels)
        return measure_temperature(self.probs_as_trained, self.labels, self.stored_temperature,
                                   stored=True)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["n"] = int(len(self.labels))
        out["tta"] = self.tta
        out["tta_built_in"] = self.tta_built_in
        if self.tta:
            out["accuracy_without_tta"] = self.accuracy_without_tta
        cal = self.calibration()
        out["calibration"] = None if cal is None else cal.to_dict()
        return out


@dataclass(frozen=True)
class Mistake:
    """One misclassified face: its index in the evaluated arrays and the model's top-3."""

    index: int
    true: int
    predicted: int
    confidence: float
    top3: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class Comparison:
    """Result B minus result A: metric differences and the normalised-confusion difference."""

    a: EvalResult
    b: EvalResult
    accuracy_diff: float
    macro_f1_diff: float
    f1_diff: dict[str, float]
    recall_diff: dict[str, float]
    precision_diff: dict[str, float]
    confusion_diff: np.ndarray


# --- metrics (pure numpy) -------------------------------------------------------------------


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray,
                     num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Counts (num_classes, num_classes), rows = true class, columns = predicted class."""
    labels = np.asarray(labels, dtype=np.int64).ravel()
    predictions = np.asarray(predictions, dtype=np.int64).ravel()
    if labels.shape != predictions.shape:
        raise ValueError(f"{len(labels)} labels but {len(predictions)} predictions")
    for what, arr in (("labels", labels), ("predictions", predictions)):
        if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
            raise ValueError(f"{what} must lie in 0..{num_classes - 1}, "
                             f"got {arr.min()}..{arr.max()}")
    flat = np.bincount(labels * num_classes + predictions, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes).astype(np.int64)


def normalize_rows(cm: np.ndarray) -> np.ndarray:
    """Each row divided by its sum (the class's support); rows with no support stay zero."""
    cm = np.asarray(cm, dtype=np.float64)
    support = cm.sum(axis=1, keepdims=True)
    return np.divide(cm, support, out=np.zeros_like(cm), where=support > 0)


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=np.asarray(den) > 0)


def metrics_from_confusion(cm: np.ndarray, class_names: tuple[str, ...] = EMOTIONS) -> Metrics:
    """Accuracy, macro-F1 and per-class precision/recall/F1/support (conventions: module doc)."""
    cm = np.asarray(cm, dtype=np.int64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] != len(class_names):
        raise ValueError(f"confusion must be {len(class_names)}x{len(class_names)}, got {cm.shape}")
    tp = np.diag(cm)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    precision = _safe_div(tp, predicted)
    recall = _safe_div(tp, support)
    f1 = _safe_div(2 * precision * recall, precision + recall)
    total = int(cm.sum())
    accuracy = float(tp.sum() / total) if total else 0.0
    present = (support > 0) | (predicted > 0)
    macro_f1 = float(f1[present].mean()) if present.any() else 0.0
    per_class = tuple(
        ClassMetrics(name, float(precision[i]), float(recall[i]), float(f1[i]),
                     int(support[i]), int(predicted[i]))
        for i, name in enumerate(class_names)
    )
    return Metrics(accuracy, macro_f1, per_class, cm)


def result_from_probs(probs: np.ndarray, labels: np.ndarray, *, tta: bool = False,
                      accuracy_without_tta: float | None = None, tta_built_in: bool = False,
                      stored_temperature: float | None = None,
                      probs_before_temperature: np.ndarray | None = None) -> EvalResult:
    """Wrap probabilities (N, 7) and labels (N,) into an `EvalResult`."""
    probs = np.asarray(probs, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.int64)
    m = metrics_from_confusion(confusion_matrix(labels, probs.argmax(axis=1), probs.shape[1]))
    return EvalResult(m.accuracy, m.macro_f1, m.per_class, m.confusion, probs=probs,
                      labels=labels, tta=tta, accuracy_without_tta=accuracy_without_tta,
                      tta_built_in=tta_built_in, stored_temperature=stored_temperature,
                      probs_before_temperature=probs_before_temperature)


# --- predictions ----------------------------------------------------------------------------


def _classifier(model: Any) -> Any:
    """The model's `infer.Classifier` (one traced function, shared with the Live page's
    code path), built once per model and kept on it; a `runtimes.FaceModel` (an ONNX or
    LiteRT file, or a Classifier already) is used as it is."""
    if getattr(model, "runtime", None) is not None:
        return model
    classifier = getattr(model, "_fer_classifier", None)
    if classifier is None:
        from fer_core.infer import Classifier

        classifier = Classifier(model, warmup=False)
        try:
            model._fer_classifier = classifier
        except AttributeError:  # pragma: no cover - a model that refuses attributes
            pass
    return classifier


def predict_probs(model: Any, images: np.ndarray, *, flip: bool = False,
                  batch_size: int = BATCH_SIZE) -> np.ndarray:
    """Softmax outputs (N, 7) for uint8 faces (N, 48, 48) or (N, 48, 48, 1), in batches.

    `flip` mirrors each face left-right first (for test-time augmentation).
    """
    x = np.asarray(images)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise ValueError(f"images must be (N, H, W) or (N, H, W, 1), got shape {x.shape}")
    if flip:
        x = x[:, :, ::-1, :]
    out = np.zeros((len(x), NUM_CLASSES), dtype=np.float32)
    classifier = _classifier(model) if len(x) else None
    for start in range(0, len(x), batch_size):
        out[start:start + batch_size] = classifier.predict(x[start:start + batch_size])
    return out


@dataclass(frozen=True)
class _Combine:
    """How a model's answer is made from its probabilities per view: averaged with the
    mirror view by the model itself (an ensemble with flip TTA), then a stored temperature:
    an ensemble's, or the one a model file's card stores for one view (`temperature`) or
    for the mean of both (`flip_temperature`)."""

    built_in_flip: bool = False
    temperature: float | None = None
    flip_temperature: float | None = None

    @classmethod
    def of(cls, ensemble: Any) -> _Combine:
        """What an ensemble (its manifest's `EnsembleSpec` or its `EnsembleFaceModel`) applies."""
        temperature = ensemble.temperature if ensemble.temperature != 1.0 else None
        return cls(ensemble.tta == "flip", temperature, temperature)

    @classmethod
    def stored(cls, stored: StoredTemperature | None) -> _Combine:
        """What a single model file's card makes it apply (nothing without a temperature)."""
        return cls() if stored is None else cls(False, stored.plain, stored.flip)

    def temperature_for(self, tta: bool) -> float | None:
        return self.flip_temperature if tta else self.temperature


def _combine_of(path: str | Path) -> _Combine:
    """What a model file applies itself: an ensemble manifest its views and temperature,
    any other file the temperature its card stores."""
    if is_ensemble(path):
        return _Combine.of(read_ensemble(path))
    return _Combine.stored(stored_temperature(path))


def _per_view(model: Any) -> tuple[Any, _Combine]:
    """A model that answers for one view at a time, without a temperature, and how to
    combine its answers into the model's own: an ensemble becomes the mean of its members,
    a model behind its card's temperature the model itself, a mirrored one (the pages') its
    model with both views built in; any other is used as it is."""
    if isinstance(model, TemperedFaceModel):
        if isinstance(model.model, MirroredFaceModel):
            flip = model.stored.flip
            return model.model.model, _Combine(True, flip, flip)
        return model.model, _Combine.stored(model.stored)
    if isinstance(model, MirroredFaceModel):
        return model.model, _Combine(built_in_flip=True)
    if not isinstance(model, EnsembleFaceModel):
        return model, _Combine()
    return EnsembleFaceModel(model.members, name=model.name, tta="none"), _Combine.of(model)


def _combined(plain: np.ndarray, flipped: np.ndarray | None, labels: np.ndarray, *,
              tta: bool, how: _Combine) -> EvalResult:
    """The result of per-view probabilities: with `tta` (or a model that mirrors faces itself)
    the mean of both views, then the model's stored temperature for that view."""
    labels = np.asarray(labels, dtype=np.int64)
    tta = tta or how.built_in_flip
    probs, acc_plain = plain, None
    if tta:
        acc_plain = float((plain.argmax(axis=1) == labels).mean()) if len(labels) else 0.0
        probs = (plain + flipped) / 2
    temperature, before = how.temperature_for(tta), None
    if temperature is not None:
        before, probs = probs, with_temperature(probs, temperature)
    return result_from_probs(probs, labels, tta=tta, accuracy_without_tta=acc_plain,
                             tta_built_in=how.built_in_flip, stored_temperature=temperature,
                             probs_before_temperature=before)


def evaluate_model(model: Any, images: np.ndarray, labels: np.ndarray, *, tta: bool = False,
                   batch_size: int = BATCH_SIZE) -> EvalResult:
    """Predict and score (no cache). With `tta`, average each face with its mirror image;
    an ensemble that does so itself always does, and reports its plain accuracy too."""
    model, how = _per_view(model)
    plain = predict_probs(model, images, batch_size=batch_size)
    flipped = (predict_probs(model, images, flip=True, batch_size=batch_size)
               if tta or how.built_in_flip else None)
    return _combined(plain, flipped, labels, tta=tta, how=how)


# --- comparison and mistakes ----------------------------------------------------------------


def compare(a: EvalResult, b: EvalResult) -> Comparison:
    """B minus A, metric by metric; positive means B is better (or predicts that cell more)."""
    def diff(attr: str) -> dict[str, float]:
        return {ca.name: getattr(cb, attr) - getattr(ca, attr)
                for ca, cb in zip(a.per_class, b.per_class)}

    return Comparison(
        a=a, b=b,
        accuracy_diff=b.accuracy - a.accuracy,
        macro_f1_diff=b.macro_f1 - a.macro_f1,
        f1_diff=diff("f1"), recall_diff=diff("recall"), precision_diff=diff("precision"),
        confusion_diff=b.confusion_normalized - a.confusion_normalized,
    )


def top_mistakes(result: EvalResult, true_class: int, predicted_class: int,
                 k: int = 24) -> list[Mistake]:
    """Faces of `true_class` predicted as `predicted_class`, most confident first.

    With true == predicted this lists the most confident correct answers of that class.
    """
    preds = result.predictions
    idx = np.flatnonzero((result.labels == true_class) & (preds == predicted_class))
    conf = result.probs[idx, predicted_class]
    order = idx[np.argsort(-conf, kind="stable")][:k]
    out = []
    for i in order:
        top = np.argsort(-result.probs[i], kind="stable")[:3]
        out.append(Mistake(
            index=int(i), true=int(true_class), predicted=int(predicted_class),
            confidence=float(result.probs[i, predicted_class]),
            top3=tuple((EMOTIONS[j], float(result.probs[i, j])) for j in top),
        ))
    return out


# --- cache ----------------------------------------------------------------------------------


def data_hash(images: np.ndarray, labels: np.ndarray) -> str:
    """SHA-256 over the images' and labels' bytes and shapes."""
    h = hashlib.sha256()
    images = np.ascontiguousarray(images, dtype=np.uint8)
    labels = np.ascontiguousarray(labels, dtype=np.int64)
    h.update(repr((images.shape, labels.shape)).encode())
    h.update(images.tobytes())
    h.update(labels.tobytes())
    return h.hexdigest()


def split_key(name: str) -> str:
    """A file-name-safe cache name for a split or an uploaded file ("my data.csv" -> "my_data")."""
    stem = re.sub(r"\.(csv|zip|gz)$", "", str(name), flags=re.IGNORECASE)
    stem = re.sub(r"\.(csv|zip|gz)$", "", stem, flags=re.IGNORECASE)
    key = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._")
    return key[:80] or "split"


def entry_name(source: str, split: str) -> str:
    """Cache entry name of a split of a dataset source: the split name itself, prefixed with
    the file's name for an upload ("upload:faces.csv", "all" -> "faces_all")."""
    if str(source).startswith("upload:"):
        return split_key(f"{split_key(str(source)[len('upload:'):])}_{split}")
    return split_key(split)


def eval_folder(ref: catalog.ModelRef) -> Path:
    """Where a model's evaluations are cached: its run's `eval/` folder, else
    `<cache>/eval/<model sha[:16]>/` (the shipped models, a file's path; an ensemble's hash
    covers its members' files)."""
    if ref.run_dir is not None:
        return Path(ref.run_dir) / "eval"
    return eval_cache_dir() / model_fingerprint(ref.path)[:16]


def _cache_paths(eval_dir: Path, split: str) -> tuple[Path, Path]:
    key = split_key(split)
    return eval_dir / f"{key}.json", eval_dir / f"{key}.npz"


def _read_cache(eval_dir: Path, split: str, key: str, n: int) -> dict[str, np.ndarray] | None:
    """The cached probabilities of an entry, or None (a miss) when anything about it is off:
    no entry, another key or version, or an unreadable file of any kind (empty, truncated,
    garbage, a folder, arrays of the wrong shape). A damaged cache is recomputed, never fatal."""
    meta_path, arr_path = _cache_paths(eval_dir, split)
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("key") != key or meta.get("version") != CACHE_VERSION:
            return None
        with np.load(arr_path, allow_pickle=False) as z:
            arrays = {name: np.asarray(z[name]) for name in z.files}
    except Exception:  # noqa: BLE001 - EOFError, BadZipFile, zlib.error, UnicodeError, ...
        return None
    probs = {name: a for name, a in arrays.items() if name in ("probs", "probs_flip")}
    if "probs" not in probs or any(a.shape != (n, NUM_CLASSES) or not np.isfinite(a).all()
                                   for a in probs.values()):
        return None
    return probs


def _write_cache(eval_dir: Path, split: str, key: str, meta: dict[str, Any],
                 arrays: dict[str, np.ndarray]) -> bool:
    """Write arrays then metadata, each atomically (temporary file + rename), so a reader
    never sees half an entry. Best effort: a cache that cannot be written (a full disk,
    `eval/` being a file, no permission) is skipped and False returned; the caller still
    has its result."""
    meta_path, arr_path = _cache_paths(eval_dir, split)
    text = json.dumps({"version": CACHE_VERSION, "key": key, **meta}, indent=1)
    try:
        eval_dir.mkdir(parents=True, exist_ok=True)
        packed = io.BytesIO()
        np.savez_compressed(packed, **arrays)
        atomic_write(arr_path, packed.getvalue(), mode=0o600)  # owner-only, as run files are
        atomic_write(meta_path, text, mode=0o600)
    except (OSError, ValueError):
        return False
    return True


def evaluate_cached(spec: str | catalog.ModelRef, images: np.ndarray, labels: np.ndarray, *,
                    split: str, tta: bool = False, model: Any = None,
                    source: str = "") -> EvalResult:
    """`evaluate_model` for a model (a catalog ModelRef, or a spec it resolves: run id,
    .keras path, `default`) with a disk cache.

    `split` names the cache entry (a split name or an uploaded file's name). `model` may be
    the already loaded model of `spec`; it is loaded only on a cache miss otherwise. The plain
    and flipped probabilities are stored separately, so switching TTA on later only runs the
    flipped pass. An ensemble that mirrors faces itself is always scored with both views.
    """
    ref = spec if isinstance(spec, catalog.ModelRef) else catalog.resolve(spec)
    folder = eval_folder(ref)
    key = f"{model_fingerprint(ref.path)}:{data_hash(images, labels)}"
    how = _combine_of(ref.path)
    tta = tta or how.built_in_flip
    cached = _read_cache(folder, split, key, len(labels)) or {}
    plain = cached.get("probs")
    flipped = cached.get("probs_flip")
    if plain is None or (tta and flipped is None):
        if model is None:
            from fer_core.backends import open_face_model

            model = open_face_model(ref.path, warmup=False)
        model, _ = _per_view(model)
        if plain is None:
            plain = predict_probs(model, images)
        if tta and flipped is None:
            flipped = predict_probs(model, images, flip=True)
        arrays = {"probs": plain, "labels": np.asarray(labels, dtype=np.int64)}
        if flipped is not None:
            arrays["probs_flip"] = flipped
        meta: dict[str, Any] = {
            "model": str(ref.path), "spec": ref.spec, "run": ref.run_id, "split": split,
            "source": source, "n": int(len(labels)),
            "metrics": _combined(plain, flipped, labels, tta=False, how=how).to_dict(),
        }
        if flipped is not None and not how.built_in_flip:
            meta["metrics_tta"] = _combined(plain, flipped, labels, tta=True, how=how).to_dict()
        _write_cache(folder, split, key, meta, arrays)
    return _combined(plain, flipped, labels, tta=tta, how=how)

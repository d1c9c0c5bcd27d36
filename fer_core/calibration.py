"""How far a model's confidence can be trusted: reliability bins, expected calibration error
(ECE) and temperature scaling. NumPy only.

A model is calibrated when, of the faces it names with 70% confidence, about 70% are right.
The reliability bins group faces by their top probability and compare each group's mean
confidence with its accuracy; the ECE is the face-weighted mean gap (Guo et al., 2017, "On
Calibration of Modern Neural Networks", 15 equal-width bins).

Temperature scaling divides the logits by one number T fitted to minimise the negative log-
likelihood on held-out faces: T > 1 softens over-confident probabilities, T < 1 sharpens
timid ones (label smoothing, as in our recipes, makes a network timid). The top label never
changes, so accuracy stays the same. The models output probabilities, not logits; dividing
log-probabilities by T is the same thing, since softmax is unchanged by a constant per face.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

BINS = 15
_T_RANGE = (0.05, 20.0)  # temperatures searched by `fit_temperature`
_EPS = 1e-12


@dataclass(frozen=True)
class Reliability:
    """Per confidence bin: its edges, mean confidence, accuracy and face count; and the ECE."""

    edges: np.ndarray  # (bins + 1,)
    confidence: np.ndarray  # (bins,), NaN for an empty bin
    accuracy: np.ndarray  # (bins,), NaN for an empty bin
    counts: np.ndarray  # (bins,)
    ece: float


@dataclass(frozen=True)
class Calibration:
    """A temperature and what it changes on some faces: fitted on those very faces, or
    (`stored`) the one a model applies itself, fitted when it was built."""

    temperature: float
    faces: int
    ece_before: float
    ece_after: float
    nll_before: float
    nll_after: float
    stored: bool = False

    def to_dict(self) -> dict[str, float | int | bool]:
        return {"temperature": self.temperature, "temperature_stored": self.stored,
                "faces": self.faces,
                "ece_before": self.ece_before, "ece_after": self.ece_after,
                "nll_before": self.nll_before, "nll_after": self.nll_after}


def _check(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if probs.ndim != 2 or len(probs) != len(labels):
        raise ValueError(f"need probabilities (N, classes) and N labels, got {probs.shape} "
                         f"and {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= probs.shape[1]):
        raise ValueError(f"labels must be class indices 0..{probs.shape[1] - 1}")
    return probs, labels


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = BINS) -> Reliability:
    """Bin faces by their top probability (equal-width bins over 0..1)."""
    probs, labels = _check(probs, labels)
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    edges = np.linspace(0.0, 1.0, bins + 1)
    top = probs.max(axis=1) if len(probs) else np.zeros(0)
    right = (probs.argmax(axis=1) == labels).astype(np.float64) if len(probs) else np.zeros(0)
    which = np.clip(np.searchsorted(edges, top, side="left") - 1, 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    conf_sum = np.bincount(which, weights=top, minlength=bins)
    right_sum = np.bincount(which, weights=right, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.where(counts > 0, conf_sum / np.maximum(counts, 1), np.nan)
        accuracy = np.where(counts > 0, right_sum / np.maximum(counts, 1), np.nan)
    total = counts.sum()
    ece = float(np.abs(conf_sum - right_sum).sum() / total) if total else 0.0
    return Reliability(edges, confidence, accuracy, counts, ece)


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = BINS) -> float:
    """ECE: the face-weighted mean |confidence - accuracy| over the reliability bins."""
    return reliability(probs, labels, bins).ece


def with_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """The probabilities a temperature gives: softmax(log(p) / T), float32."""
    if not temperature > 0 or not math.isfinite(temperature):
        raise ValueError(f"temperature must be a positive number, got {temperature}")
    logp = np.log(np.clip(np.asarray(probs, dtype=np.float64), _EPS, None)) / temperature
    logp -= logp.max(axis=1, keepdims=True)
    out = np.exp(logp)
    return (out / out.sum(axis=1, keepdims=True)).astype(np.float32)


def negative_log_likelihood(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean -log p(true class)."""
    probs, labels = _check(probs, labels)
    if not len(labels):
        return 0.0
    return float(-np.log(np.clip(probs[np.arange(len(labels)), labels], _EPS, None)).mean())


def fit_temperature(probs: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood of `labels`.

    The likelihood is smooth and has one minimum in log T, so a golden-section search over
    log T in `_T_RANGE` finds it to about 1e-4 in 40 steps.
    """
    probs, labels = _check(probs, labels)
    if not len(labels):
        raise ValueError("fitting a temperature needs at least one face")
    logp = np.log(np.clip(probs, _EPS, None))
    rows = np.arange(len(labels))

    def nll(log_t: float) -> float:
        z = logp / math.exp(log_t)
        z -= z.max(axis=1, keepdims=True)
        return float((np.log(np.exp(z).sum(axis=1)) - z[rows, labels]).mean())

    lo, hi = math.log(_T_RANGE[0]), math.log(_T_RANGE[1])
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(a), nll(b)
    for _ in range(40):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(b)
    return float(math.exp((lo + hi) / 2))


def calibrate(probs: np.ndarray, labels: np.ndarray, bins: int = BINS) -> Calibration:
    """Fit a temperature on these faces and measure ECE and NLL before and after it."""
    return measure_temperature(probs, labels, fit_temperature(probs, labels), bins)


def measure_temperature(probs: np.ndarray, labels: np.ndarray, temperature: float,
                        bins: int = BINS, *, stored: bool = False) -> Calibration:
    """ECE and NLL of `probs` before and after a given temperature (one fitted elsewhere,
    such as the one an ensemble stores, measured on these faces)."""
    scaled = with_temperature(probs, temperature)
    return Calibration(
        temperature=float(temperature), faces=int(len(labels)),
        ece_before=expected_calibration_error(probs, labels, bins),
        ece_after=expected_calibration_error(scaled, labels, bins),
        nll_before=negative_log_likelihood(probs, labels),
        nll_after=negative_log_likelihood(scaled, labels), stored=stored,
    )

"""What the Evaluate page shows of an evaluation, as plain data: the per-class table, the
A/B comparison tables (where each model fails), the commonest mistake of a class, the cell a
click on the confusion heatmap picked, what a score on the demo set means, and the calibration
figures. The figures themselves are in `fer_core.charts`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fer_core.calibration import Calibration, Reliability, reliability, with_temperature
from fer_core.data import DEMO
from fer_core.evaluate import Comparison, EvalResult
from fer_core.labels import EMOTIONS
from fer_core.model_card import stored_temperature
from fer_core.runtimes import is_ensemble


def per_class_table(result: EvalResult) -> pd.DataFrame:
    """One row per class: precision, recall, F1, support and how often it was predicted."""
    rows = [{"class": c.name, "precision": c.precision, "recall": c.recall, "f1": c.f1,
             "support": c.support, "predicted": c.predicted} for c in result.per_class]
    return pd.DataFrame(rows).set_index("class")


def comparison_tables(cmp: Comparison) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(accuracy and macro-F1 of A, B and B - A; per class F1 of both and the differences
    of F1, recall and precision)."""
    a, b = cmp.a, cmp.b
    summary = pd.DataFrame({
        "A": [a.accuracy, a.macro_f1],
        "B": [b.accuracy, b.macro_f1],
        "B - A": [cmp.accuracy_diff, cmp.macro_f1_diff],
    }, index=["accuracy", "macro-F1"])
    per_class = pd.DataFrame({
        "F1 A": [c.f1 for c in a.per_class],
        "F1 B": [c.f1 for c in b.per_class],
        "F1 B - A": list(cmp.f1_diff.values()),
        "recall B - A": list(cmp.recall_diff.values()),
        "precision B - A": list(cmp.precision_diff.values()),
    }, index=list(EMOTIONS))
    return summary, per_class


def failure_table(cmp: Comparison) -> pd.DataFrame:
    """Where each model fails, class by class: the class its faces are most often mistaken
    for by A and by B, and the share of the class's faces that goes there (row-normalised
    confusion)."""
    rows = {}
    for i, name in enumerate(EMOTIONS):
        row = {}
        for tag, result in (("A", cmp.a), ("B", cmp.b)):
            wrong = commonest_mistake(result.confusion, i)
            row[f"{tag} mistaken for"] = EMOTIONS[wrong]
            row[f"{tag} share"] = float(result.confusion_normalized[i, wrong])
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def views_note(a: EvalResult, b: EvalResult) -> str:
    """What the comparison says when A and B saw different views of the faces ("" when they
    saw the same): one averages each face with its mirror image and the other does not."""
    if a.tta == b.tta:
        return ""
    mirrored, plain = ("A", "B") if a.tta else ("B", "A")
    return (f"{mirrored} averages each face with its mirror image and {plain} does not: turn on "
            "test-time augmentation above to compare like with like.")


def no_gradcam_reason(model_path) -> str:
    """Why Grad-CAM cannot explain a model file that is not a `.keras` model."""
    if is_ensemble(model_path):
        return (f"{model_path.name} is an ensemble: its answer is the mean of several networks, "
                "each looking at its own places; pick one network (a run, or default) to see "
                "where it looked")
    return (f"{model_path.name} is an exported file without gradients; pick the .keras model "
            "it was exported from")


def commonest_mistake(confusion: np.ndarray, true_class: int) -> int:
    """The class that faces of `true_class` are most often wrongly predicted as."""
    wrong = np.asarray(confusion[true_class]).copy()
    wrong[true_class] = -1
    return int(wrong.argmax())


def clicked_cell(points: Sequence[dict] | None) -> tuple[str, str] | None:
    """(true, predicted) class names of the first point of a plotly selection on the
    confusion heatmap (rows are true, columns predicted); None for anything else."""
    if not points:
        return None
    cell = points[0].get("y"), points[0].get("x")
    return cell if all(name in EMOTIONS for name in cell) else None


def overlap_note(overlap: int, faces: int, split: str, *, run_dropped: bool | None) -> str:
    """What the Evaluate page says about test faces also in Training ("" when none are):
    `run_dropped` is whether the model's run left them out of training (None: not a run)."""
    if overlap <= 0 or faces <= 0:
        return ""
    seen = ("its run left them out of training (drop_test_overlap), so the model never saw "
            "them" if run_dropped else
            "a model trained on this Training split has seen them, so its accuracy on them "
            "flatters it" + ("; train with *Drop Training faces found in test splits* to "
                              "leave them out" if run_dropped is False else ""))
    return (f"{overlap:,} of these {faces:,} {split} faces ({overlap / faces:.1%}) also appear "
            f"in Training, exactly or nearly: {seen}.")


def demo_set_note(trained_on: str | None) -> str:
    """What an accuracy measured on the synthetic demo set means, for a model trained on
    `trained_on` (a run's `data`, or what the shipped model's config records; None when
    unknown)."""
    if trained_on == DEMO:
        return ("Measured on the synthetic demo set, which this run was trained on too: "
                "generated cartoon faces whose expression is drawn to show the class. The score "
                "says how well the run learned the demo set, not how it does on real faces.")
    return ("Measured on the synthetic demo set: generated cartoon faces, not photos. A model "
            "trained on real faces (FER2013, like the shipped default) does not transfer to "
            "them and scores near chance here (1 in 7, about 14%), whatever it scores on real "
            "faces. Choose FER2013 on the Dataset page to measure that.")


def calibration_curves(result: EvalResult) -> tuple[Calibration, dict[str, Reliability]] | None:
    """The Calibration tab's figures: the result's calibration (`EvalResult.calibration`: the
    model's own temperature, else one fitted on these faces) and the reliability bins before
    and after that temperature (None without faces)."""
    cal = result.calibration()
    if cal is None:
        return None
    if cal.stored:
        return cal, {"before its temperature": reliability(result.probs_as_trained,
                                                           result.labels),
                     f"its temperature {cal.temperature:.2f}": reliability(result.probs,
                                                                           result.labels)}
    scaled = with_temperature(result.probs, cal.temperature)
    return cal, {"as trained": reliability(result.probs, result.labels),
                 f"temperature {cal.temperature:.2f}": reliability(scaled, result.labels)}


def _ensemble_spec(model_path):
    """The manifest of an ensemble file, or None (another model, or a manifest that cannot be
    read: the page says why elsewhere, when it loads the model)."""
    if not is_ensemble(model_path):
        return None
    from fer_core.ensemble import read_ensemble

    try:
        return read_ensemble(model_path)
    except (OSError, ValueError):
        return None


def stored_temperature_note(model_path) -> str:
    """What the Calibration tab says of a model that applies a temperature of its own (an
    ensemble's manifest records one; a model file's card may store one, `python -m fer_core
    calibrate`); "" for any other model."""
    spec = _ensemble_spec(model_path)
    if spec is not None:
        name, fitted = spec.name, spec.extra.get("fitted_on", "PublicTest")
        what = f"its own temperature, {spec.temperature:.2f}, fitted on {fitted} when it was built"
    elif (stored := stored_temperature(model_path)) is not None:
        name, fitted = Path(model_path).name, stored.fitted_on or "PublicTest"
        what = (f"the temperature its card stores, fitted on {fitted}: {stored.plain:.2f} for "
                f"one view of each face and {stored.flip:.2f} for a face averaged with its "
                "mirror image (TTA here; the Live page, photos and Analyse by default)")
    else:
        return ""
    return (f"{name} applies {what}: the figures here are its probabilities before and after "
            f"it. On {fitted} they flatter it (it was fitted there); any other split tests it.")


def gradcam_caption(probs: np.ndarray, cls: int, model_path) -> str:
    """The Grad-CAM image's caption: the class and its probability for this one view (Grad-CAM
    explains one image), after the temperature the model's card stores for one view."""
    stored = stored_temperature(model_path)
    if stored is not None:
        probs = with_temperature(np.asarray(probs)[None], stored.plain)[0]
    return f"Grad-CAM for {EMOTIONS[cls]} (p = {float(probs[cls]):.0%})"


def builtin_flip_note(model_path) -> str:
    """Why the page's test-time-augmentation toggle does nothing for this model (an ensemble
    that averages each face with its mirror image itself); "" for any other model."""
    spec = _ensemble_spec(model_path)
    if spec is None or spec.tta != "flip":
        return ""
    return (f"{spec.name} already averages each face with its mirror image, whether the toggle "
            "is on or not; its accuracy without the mirror view is shown beside it.")


def calibration_note(cal: Calibration, split: str) -> str:
    """What the Calibration tab's figures mean, in a sentence or two."""
    if cal.stored:
        better = cal.ece_after <= cal.ece_before
        return (f"Its temperature of {cal.temperature:.2f} moves the expected calibration error "
                f"on these {cal.faces:,} faces of {split} from {cal.ece_before:.3f} to "
                f"{cal.ece_after:.3f} and the log-loss from {cal.nll_before:.3f} to "
                f"{cal.nll_after:.3f}: it {'helps' if better else 'does not help'} here. It "
                "changes no top label.")
    if abs(cal.temperature - 1.0) < 0.1:
        way = "close to calibrated as trained"
    elif cal.temperature > 1.0:
        way = "over-confident: its probabilities are too sharp"
    else:
        way = "timid: its probabilities are too flat (label smoothing does this)"
    return (f"The model is {way}. A temperature of {cal.temperature:.2f}, fitted on these "
            f"{cal.faces:,} faces of {split} to minimise the log-loss ({cal.nll_before:.3f} → "
            f"{cal.nll_after:.3f}), moves the expected calibration error from "
            f"{cal.ece_before:.3f} to {cal.ece_after:.3f} and changes no top label. Fit "
            "the temperature on PublicTest (the split models are chosen on), never on the split "
            "that judges them.")


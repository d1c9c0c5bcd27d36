"""`python -m fer_core calibrate MODEL --data PATH [--json]`.

Fits a model file's temperatures on PublicTest of `--data` by log-loss and stores them on
its card (`model_card.store_temperature`), so the pages and commands that open the file
(`backends.open_face_model`, the pages' shared models, Evaluate) show calibrated confidences:
one temperature for one view of each face and one for the mean with its mirror image
(Evaluate's TTA, and the Live page, photos and Analyse unless the user unticks it). MODEL is a `.keras`, `.onnx` or `.tflite` file,
a run id or `default`; a `.keras` file's exports (the carded `.onnx`/`.tflite` files beside it
made from these very weights) are fitted too, each on its own outputs, and one whose runtime
is missing here is named, not skipped in silence. An ensemble fits its temperature when it is
built (`ensemble`). Predictions go through the evaluation cache (a run's in its folder), so a
model evaluated before costs nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fer_core.labels import PUBLIC_TEST


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a model file (.keras, .onnx, .tflite), a run id or "
                                      "'default'")
    parser.add_argument("--data", required=True,
                        help=f"dataset whose {PUBLIC_TEST} the temperatures are fitted on")
    parser.add_argument("--json", action="store_true",
                        help="print what was stored, one JSON object per file")
    parser.add_argument("--runs-dir", type=Path, help="runs folder (default $FER_RUNS_DIR or ./runs)")


def calibrate_file(ref, images, labels, *, source: str) -> dict:
    """Fit and store the temperatures of one model file (a `catalog.ModelRef`) on these
    faces; what was stored. The figures are measured at the temperatures as stored."""
    from fer_core import evaluate
    from fer_core.calibration import fit_temperature, measure_temperature
    from fer_core.files import file_sha256
    from fer_core.model_card import store_temperature

    sha = file_sha256(ref.path)  # the weights predicted with, even if the file changes
    split = evaluate.entry_name(source, PUBLIC_TEST)
    views = {"plain": evaluate.evaluate_cached(ref, images, labels, split=split, source=source),
             "flip": evaluate.evaluate_cached(ref, images, labels, split=split, tta=True,
                                              source=source)}
    fitted, measured = {}, {"data": source, "faces": int(len(labels))}
    for view, result in views.items():
        fitted[view] = round(fit_temperature(result.probs_as_trained, labels), 4)
        cal = measure_temperature(result.probs_as_trained, labels, fitted[view])
        measured |= {f"{view}_{k}": round(getattr(cal, k), 4)
                     for k in ("ece_before", "ece_after", "nll_before", "nll_after")}
    store_temperature(ref.path, fitted["plain"], fitted["flip"], fitted_on=PUBLIC_TEST,
                      sha256=sha, measured=measured)
    return {"file": str(ref.path), **fitted, **measured}


def files_to_fit(ref) -> tuple[list, list[str]]:
    """The model's file and every export made from it (refs), and why any export is left."""
    from fer_core import catalog, model_card
    from fer_core.runtimes import missing_runtime

    refs, left = [ref], []
    for path, fmt, _ in model_card.exports_made_from(ref.path):
        if (problem := missing_runtime(fmt)) is not None:
            left.append(f"{path.name}: {problem}")
            continue
        refs.append(catalog.resolve(str(path)))
    return refs, left


def run(args: argparse.Namespace) -> int:
    from fer_core import catalog, model_card
    from fer_core.data import DataError, load_dataset
    from fer_core.runtimes import is_ensemble

    try:
        ref = catalog.resolve(args.model, args.runs_dir)
        if is_ensemble(ref.path):
            raise ValueError("an ensemble's temperature is fitted when it is built "
                             "(`python -m fer_core ensemble`)")
        dataset = load_dataset(args.data)
        if PUBLIC_TEST not in dataset.splits():
            raise ValueError(f"{args.data} has no {PUBLIC_TEST} split to fit on")
        images, labels = dataset.split(PUBLIC_TEST)
        refs, left = files_to_fit(ref)
        stored = [calibrate_file(r, images, labels, source=dataset.source) for r in refs]
    except (ValueError, KeyError, OSError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for row in stored:
        if args.json:
            print(json.dumps(row))
            continue
        print(f"{row['file']}: temperature {row['plain']:.3f} for one view (ECE "
              f"{row['plain_ece_before']:.4f} -> {row['plain_ece_after']:.4f}), "
              f"{row['flip']:.3f} with flip TTA (ECE {row['flip_ece_before']:.4f} -> "
              f"{row['flip_ece_after']:.4f}), fitted on {len(labels):,} {PUBLIC_TEST} faces of "
              f"{dataset.source}; stored on {model_card.card_path(row['file']).name}")
    for why in left:
        print(f"not fitted: {why}; run this command where it is installed", file=sys.stderr)
    return 0

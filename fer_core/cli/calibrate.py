"""`python -m fer_core calibrate MODEL --data PATH [--json]`.

Fits a model file's temperatures on PublicTest of `--data` by log-loss and stores them on
its card (`model_card.store_temperature`), so every page and command that opens the file
shows calibrated confidences: one temperature for one view of each face (the Live page,
photos, Analyse) and one for the mean with its mirror image (Evaluate's TTA). MODEL is a
`.keras`, `.onnx` or `.tflite` file, a run id or `default`; a `.keras` file's exports (the
`.onnx`/`.tflite` files beside it made from it, `model_card.exports_of`) are fitted too, each
on its own outputs. An ensemble fits its temperature when it is built (`ensemble`).
Predictions go through the evaluation cache, so a model evaluated before costs nothing.
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


def calibrate_file(path: Path, images, labels, *, source: str) -> dict:
    """Fit and store the temperatures of one model file on these faces; what was stored."""
    from fer_core import catalog, evaluate
    from fer_core.calibration import calibrate
    from fer_core.model_card import store_temperature

    ref = catalog.resolve(str(path))
    split = evaluate.entry_name(source, PUBLIC_TEST)
    plain = evaluate.evaluate_cached(ref, images, labels, split=split, source=source)
    both = evaluate.evaluate_cached(ref, images, labels, split=split, tta=True, source=source)
    fits = {view: calibrate(result.probs_as_trained, labels)
            for view, result in (("plain", plain), ("flip", both))}
    measured = {f"{view}_{k}": round(getattr(cal, k), 4) for view, cal in fits.items()
                for k in ("ece_before", "ece_after", "nll_before", "nll_after")}
    store_temperature(path, fits["plain"].temperature, fits["flip"].temperature,
                      fitted_on=PUBLIC_TEST, measured={"faces": int(len(labels)), **measured})
    return {"file": str(path), "plain": round(fits["plain"].temperature, 4),
            "flip": round(fits["flip"].temperature, 4), **measured}


def run(args: argparse.Namespace) -> int:
    from fer_core import catalog, model_card
    from fer_core.data import DataError, load_dataset
    from fer_core.runtimes import is_ensemble

    try:
        ref = catalog.resolve(args.model)
        if is_ensemble(ref.path):
            raise ValueError("an ensemble's temperature is fitted when it is built "
                             "(`python -m fer_core ensemble`)")
        dataset = load_dataset(args.data)
        if PUBLIC_TEST not in dataset.splits():
            raise ValueError(f"{args.data} has no {PUBLIC_TEST} split to fit on")
        images, labels = dataset.split(PUBLIC_TEST)
        files = [Path(ref.path), *(e.path for e in model_card.exports_of(ref.path))]
        stored = [calibrate_file(f, images, labels, source=dataset.source) for f in files]
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
              f"{row['flip_ece_after']:.4f}), fitted on {len(labels):,} {PUBLIC_TEST} faces; "
              f"stored on {model_card.card_path(row['file']).name}")
    return 0

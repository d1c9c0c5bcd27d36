"""`python -m fer_core ensemble MANIFEST --members FILE [FILE ...] --data PATH [--tta flip|none]`.

Builds an ensemble (`fer_core.ensemble`): measures every member on PublicTest of `--data`
(plain and with flip TTA, through the evaluation cache), averages them, fits the temperature
on those faces by log-loss (unless `--no-temperature`), and writes MANIFEST
(`models/accurate.ensemble.json` is the shipped `accurate`) with the members' SHA-256 and
the figures it measured. Members must already be files beside the manifest: `python -m
fer_core export RUN --to models/accurate-2.keras --weights mean` puts a run there.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from fer_core.ensemble import TTA_MODES
from fer_core.labels import NUM_CLASSES, PUBLIC_TEST


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("manifest", type=Path, help="the manifest to write, e.g. "
                                                    "models/accurate.ensemble.json")
    parser.add_argument("--members", type=Path, nargs="+", required=True,
                        help="model files (.keras, .onnx, .tflite) in the manifest's folder")
    parser.add_argument("--data", required=True,
                        help="dataset whose PublicTest the members are measured and the "
                             "temperature fitted on")
    parser.add_argument("--tta", choices=TTA_MODES, default="flip",
                        help="views of each face averaged (default flip: the face and its "
                             "mirror image)")
    parser.add_argument("--no-temperature", action="store_true",
                        help="keep temperature 1 instead of fitting one")
    parser.add_argument("--json", action="store_true", help="print the manifest as JSON")


def _member_probs(path: Path, images, labels, source: str):
    """(plain, flip-TTA) probabilities of one member on the faces, through the eval cache,
    before any temperature of its own (the ensemble runs its members raw)."""
    from fer_core import catalog, evaluate

    ref = catalog.resolve(str(path))
    split = evaluate.entry_name(source, PUBLIC_TEST)
    plain = evaluate.evaluate_cached(ref, images, labels, split=split, source=source)
    tta = evaluate.evaluate_cached(ref, images, labels, split=split, tta=True, source=source)
    return plain.probs_as_trained, tta.probs_as_trained


def measure(members: list[Path], images, labels, source: str, *, tta: str,
            fit: bool) -> dict:
    """The figures a manifest records: each member's accuracy, the ensemble's (plain and with
    its views), its temperature and calibration before and after it."""
    import numpy as np

    from fer_core.calibration import calibrate, measure_temperature

    plain_sum = np.zeros((len(labels), NUM_CLASSES))
    view_sum = np.zeros((len(labels), NUM_CLASSES))
    rows = []
    for path in members:
        plain, flipped_mean = _member_probs(path, images, labels, source)
        plain_sum += plain
        view_sum += flipped_mean if tta == "flip" else plain
        rows.append({"file": path.name,
                     "accuracy": round(float((plain.argmax(1) == labels).mean()), 4),
                     "accuracy_tta": round(float((flipped_mean.argmax(1) == labels).mean()), 4)})
    probs = view_sum / len(members)
    cal = calibrate(probs, labels) if fit else measure_temperature(probs, labels, 1.0)
    return {
        "temperature": cal.temperature,
        "publictest": {
            "faces": len(labels),
            "accuracy": round(float((probs.argmax(1) == labels).mean()), 4),
            "accuracy_without_tta": round(float((plain_sum.argmax(1) == labels).mean()), 4),
            "ece_before": round(cal.ece_before, 4),
            "ece_after": round(cal.ece_after, 4),
            "nll_before": round(cal.nll_before, 4),
            "nll_after": round(cal.nll_after, 4),
            "members": rows,
        },
    }


def run(args: argparse.Namespace) -> int:
    from fer_core.data import DataError, load_dataset
    from fer_core.ensemble import write_ensemble

    try:
        dataset = load_dataset(args.data)
        if PUBLIC_TEST not in dataset.splits():
            raise ValueError(f"{args.data} has no {PUBLIC_TEST} split to measure the members on")
        images, labels = dataset.split(PUBLIC_TEST)
        figures = measure(args.members, images, labels, dataset.source, tta=args.tta,
                          fit=not args.no_temperature)
        extra = {"data": dataset.source, "fitted_on": PUBLIC_TEST,
                 "built": time.strftime("%Y-%m-%d"), "publictest": figures["publictest"]}
        spec = write_ensemble(args.manifest, args.members, tta=args.tta,
                              temperature=figures["temperature"], extra=extra)
    except (ValueError, OSError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(args.manifest.read_text(encoding="utf-8").strip())
        return 0
    test = figures["publictest"]
    print(f"wrote {args.manifest}: {len(spec.members)} members, tta {spec.tta}, "
          f"temperature {spec.temperature:.3f} (fitted on {PUBLIC_TEST})")
    for row in test["members"]:
        print(f"  {row['file']}: {row['accuracy']:.2%} plain, {row['accuracy_tta']:.2%} flip TTA")
    print(f"ensemble on {PUBLIC_TEST} ({test['faces']:,} faces): {test['accuracy']:.2%} "
          f"({test['accuracy_without_tta']:.2%} without TTA); ECE {test['ece_before']:.4f} -> "
          f"{test['ece_after']:.4f}, NLL {test['nll_before']:.4f} -> {test['nll_after']:.4f} "
          "with the temperature")
    return 0

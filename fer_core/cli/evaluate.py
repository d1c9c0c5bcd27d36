"""`python -m fer_core evaluate MODEL --data PATH --split NAME [--tta] [--json]`.

MODEL is a run id, a model file (.keras, .onnx, .tflite, .ensemble.json), `default` or
`accurate`. An ensemble that averages each face with its mirror image itself is always scored
so, and its accuracy without the mirror view is printed beside it. Uses the same cached
implementation as the Evaluate page (`fer_core.catalog` to find the model,
`fer_core.evaluate.evaluate_cached`), so both read and write the same files.
"""

from __future__ import annotations

import argparse
import json
import sys

from fer_core.labels import EMOTIONS, PUBLIC_TEST

ALL = "all"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="run id, a model file (.keras, .onnx, .tflite, "
                                      ".ensemble.json), 'default' or 'accurate'")
    parser.add_argument("--data", default=None,
                        help="dataset: FER CSV (.csv/.gz/.zip), image folder or 'demo' "
                             "(default: $FER2013_CSV, data/fer2013.csv, else demo)")
    parser.add_argument("--split", default=PUBLIC_TEST,
                        help=f"split to evaluate (default {PUBLIC_TEST}); '{ALL}' for every row")
    parser.add_argument("--tta", action="store_true",
                        help="test-time augmentation: average each face with its mirror image")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object (accuracy, macro_f1, per_class, confusion, "
                             "calibration)")


def _print_table(result, header: str) -> None:
    print(header)
    line = f"accuracy {result.accuracy:.4f}  macro-F1 {result.macro_f1:.4f}"
    if result.tta:
        how = "its own flip TTA" if result.tta_built_in else "TTA on"
        line += f"  ({how}; without TTA accuracy {result.accuracy_without_tta:.4f})"
    print(line)
    cal = result.calibration()
    if cal is not None:
        which = ("its stored temperature" if cal.stored
                 else "a temperature fitted on these faces")
        print(f"calibration: ECE {cal.ece_before:.4f}, NLL {cal.nll_before:.4f}; with {which} "
              f"(T = {cal.temperature:.3f}) ECE {cal.ece_after:.4f}, NLL {cal.nll_after:.4f}")
    print(f"{'class':<10}{'precision':>10}{'recall':>8}{'f1':>8}{'support':>9}")
    for c in result.per_class:
        print(f"{c.name:<10}{c.precision:>10.3f}{c.recall:>8.3f}{c.f1:>8.3f}{c.support:>9d}")
    print("confusion (rows: true, columns: predicted)")
    width = max(9, len(str(int(result.confusion.max()))) + 1)
    print(" " * 10 + "".join(f"{e[:width - 1]:>{width}}" for e in EMOTIONS))
    for name, row in zip(EMOTIONS, result.confusion):
        print(f"{name:<10}" + "".join(f"{int(v):>{width}d}" for v in row))


def run(args: argparse.Namespace) -> int:
    from fer_core import catalog, evaluate
    from fer_core.data import DataError, load_dataset, resolve_source

    try:  # before the data loads: a mistyped model fails at once
        model = catalog.resolve(args.model)
    except ValueError as exc:
        print(f"error: model {args.model!r}: {exc}", file=sys.stderr)
        return 2
    source = resolve_source(args.data)
    try:
        dataset = load_dataset(source)
    except (DataError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.split == ALL:
        images, labels = dataset.images, dataset.labels
    elif args.split in dataset.splits():
        images, labels = dataset.split(args.split)
    else:
        print(f"error: {source}: no split {args.split!r}; present: "
              f"{', '.join(dataset.splits()) or 'none'} (or '{ALL}')", file=sys.stderr)
        return 2
    try:
        result = evaluate.evaluate_cached(
            model, images, labels, split=evaluate.entry_name(dataset.source, args.split),
            tta=args.tta, source=dataset.source,
        )
    except (KeyError, FileNotFoundError, ValueError) as exc:
        print(f"error: model {args.model!r}: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"model": args.model, "data": dataset.source, "split": args.split,
                          "synthetic": dataset.synthetic, **result.to_dict()}))
    else:
        note = " (synthetic demo faces)" if dataset.synthetic else ""
        _print_table(result, f"model {args.model} on {dataset.source}{note}, split "
                             f"{args.split}: {len(labels):,} faces")
    return 0

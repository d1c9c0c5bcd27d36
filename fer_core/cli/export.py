"""`python -m fer_core export MODEL [--format keras|onnx|tflite] [--int8] [--to FILE]`.

MODEL is a run id, `default` or a `.keras` file (`fer_core.catalog`). `.keras` (the default
format) writes a run's best or last weights, or the mean of both (`--weights mean`), without
optimizer state, and beside it `<name>.config.json`: the run's TrainConfig with model options
equal to the builder's defaults left out; without `--to` the target is the app's `default`
model. `.onnx` and `.tflite` (`fer_core.export`) go beside the source unless `--to` says
otherwise (`best.keras` -> `best.int8.onnx`); `--int8` quantizes, calibrated on Training faces
of `--data`.

Every export writes `<file>.card.json` (`fer_core.model_card`): the exported file is loaded
back and measured against its source on PublicTest of `--data` (default: the dataset the
model was trained on) for accuracy, top-label agreement and ms per face.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fer_core import catalog, runs
from fer_core.config import changed_options
from fer_core.labels import PUBLIC_TEST, TRAINING
from fer_core.paths import DEFAULT_MODEL_PATH
from fer_core.runtimes import FORMATS, KERAS, format_of


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="run id, 'default' or a .keras file")
    parser.add_argument("--format", choices=sorted(set(FORMATS.values())),
                        help="keras, onnx or tflite (default: from --to's extension, else keras)")
    parser.add_argument("--int8", action="store_true",
                        help="int8 post-training quantization (onnx, tflite), calibrated on "
                             "Training faces of --data")
    parser.add_argument("--weights", choices=("best", "last", "mean"), default="best",
                        help="a run's checkpoint best on validation, the last one, or the mean "
                             "of both (mean: .keras only; default best)")
    parser.add_argument("--to", type=Path,
                        help=f"target file (default: {DEFAULT_MODEL_PATH} for .keras, beside "
                             "the source for .onnx/.tflite)")
    parser.add_argument("--data", help="dataset to measure (PublicTest) and calibrate "
                                       "(Training) on (default: the one the model was trained on)")
    parser.add_argument("--json", action="store_true", help="print the card as one JSON object")
    parser.add_argument("--runs-dir", type=Path, help="runs folder (default $FER_RUNS_DIR or ./runs)")


def _target(args: argparse.Namespace, ref: catalog.ModelRef) -> tuple[Path, str]:
    fmt = args.format or (format_of(args.to) if args.to else KERAS)
    if args.to is not None and format_of(args.to) != fmt:
        raise ValueError(f"--to {args.to} does not end in the extension of format {fmt}")
    if args.int8 and fmt == KERAS:
        raise ValueError("--int8 applies to onnx and tflite exports, not keras")
    if args.weights == "mean" and fmt != KERAS:
        raise ValueError("--weights mean writes a .keras file; export that file to "
                         f"{fmt} afterwards")
    if args.to is not None:
        return args.to, fmt
    if fmt == KERAS:
        if ref.state == catalog.SHIPPED:
            raise ValueError("the default model is already the shipped .keras file; give --to")
        return DEFAULT_MODEL_PATH, fmt
    from fer_core.export import default_target

    return default_target(ref.path, fmt, args.int8), fmt


def _load_splits(source: str | None, int8: bool):
    """(test images, test labels, Training images, labels) of `source`; absent splits None."""
    from fer_core.data import load_dataset

    if source is None:
        if int8:
            raise ValueError("an int8 export needs --data (Training faces to calibrate on)")
        return None, None, None, None
    dataset = load_dataset(source)
    splits = dataset.splits()
    test = dataset.split(PUBLIC_TEST) if PUBLIC_TEST in splits else (None, None)
    train = dataset.split(TRAINING) if TRAINING in splits else (None, None)
    if int8 and train[0] is None:
        raise ValueError(f"{source} has no {TRAINING} split to calibrate the int8 export on")
    return (*test, *train)


def _summary(card: dict, target: Path, what: str) -> str:
    lines = [(f"exported {what} to {target} "
              f"({target.stat().st_size / 2**20:.1f} MB) and {target.name}.card.json")]
    test = card.get("publictest")
    if test:
        diff = (test["accuracy"] - test["source_accuracy"]) * 100
        lines.append(f"{test['split']} accuracy {test['accuracy']:.2%} (source "
                     f"{test['source_accuracy']:.2%}, {diff:+.2f} points); top label the same "
                     f"on {test['top_label_agreement']:.2%} of {test['faces']:,} faces")
    else:
        lines.append("accuracy not measured: no PublicTest split in the data (give --data)")
    speed = card["speed"]
    lines.append(f"{speed['ms_single']:.2f} ms for one face (source {speed['source_ms_single']:.2f}),"
                 f" {speed['ms_per_face_batch']:.2f} ms a face in a batch of {speed['batch']} "
                 f"(source {speed['source_ms_per_face_batch']:.2f})")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from fer_core.data import DataError
    from fer_core.export import calibration_faces, export_file, measure_export
    from fer_core.model_card import stored_temperature, write_card

    try:
        ref = catalog.resolve(args.model, args.runs_dir)
        if ref.run_id is not None and args.weights != "best":
            ref = catalog.checkpoint(ref.run_id, "last" if args.weights == "last" else "best",
                                     args.runs_dir)
        if format_of(ref.path) != KERAS:
            raise ValueError(f"{ref.path.name}: exports start from a .keras model")
        target, fmt = _target(args, ref)
        if target.resolve() == ref.path.resolve():
            raise ValueError(f"{target} is the model being exported; choose another --to")
        info = runs.get_run(ref.run_id, args.runs_dir) if ref.run_id else None
        if fmt == KERAS and info is not None and info.config is None:
            raise runs.RunError(f"run {info.id} has no readable config.json to export "
                                f"({info.problem})")
        test_x, test_y, train_x, train_y = _load_splits(args.data or ref.trained_on, args.int8)
        calibration = calibration_faces(train_x, train_y) if args.int8 else None
        mean_with = []
        if fmt == KERAS and args.weights == "mean":
            from fer_core.models import export_model

            mean_with = [catalog.checkpoint(info, "last").path]
            export_model(catalog.checkpoint(info, "best").path, target, mean_with=mean_with)
        else:
            export_file(ref.path, target, int8=args.int8, calibration=calibration)
        if fmt == KERAS and info is not None:
            from fer_core.models import list_models

            defaults = {m.name: m.defaults for m in list_models()}.get(info.config.model, {})
            config = info.config.replace(
                model_kwargs=changed_options(info.config.model_kwargs, defaults))
            runs.write_json(catalog.config_path_for(target), config.to_dict())
        card = measure_export(ref.path, target, test_x, test_y, int8=args.int8,
                              calibration_count=0 if calibration is None else len(calibration),
                              source_spec=ref.spec, run_id=ref.run_id, mean_with=mean_with)
        write_card(target, card)
    except (ValueError, OSError, DataError) as exc:  # RunError, bad models, data, disk errors
        print(f"error: {exc}", file=sys.stderr)
        return 2
    what = f"{args.weights} weights of run {ref.run_id}" if ref.run_id else ref.spec
    print(json.dumps(card) if args.json else _summary(card, target, what))
    if stored_temperature(ref.path) is not None:  # an export's outputs need their own fit
        print(f"note: {ref.path.name} stores a temperature and {target.name} none yet: "
              f"`python -m fer_core calibrate {target} --data ...` fits one",
              file=sys.stderr)
    return 0

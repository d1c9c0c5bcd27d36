"""Command line: `python -m fer_core {inspect,train,sweep,runs,evaluate,calibrate,ensemble,teacher,export,analyze,cpu} ...`.

Each sub-command lives in `fer_core/cli/<name>.py` with `add_arguments(parser)` and
`run(args) -> int`; this module only wires them into one argparse program.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

import fer_core  # noqa: F401  (CPU flags before TensorFlow loads)
from fer_core.tf_quiet import quiet_tensorflow_import

COMMANDS: dict[str, str] = {
    "inspect": "rows per split and class of a dataset, and the problems found",
    "train": "train a model into a new run folder (or resume one)",
    "runs": "list the runs in the runs folder",
    "evaluate": "metrics and confusion matrix of a run or model on a split",
    "calibrate": "fit a model file's temperatures on PublicTest and store them on its card",
    "sweep": "search hyperparameters: an Optuna study whose trials are runs (one or many "
             "machines)",
    "ensemble": "build an ensemble of model files (flip TTA, a fitted temperature) with its "
                "measured figures",
    "teacher": "a teacher's probabilities of every Training face, for distillation",
    "export": "write a model as .keras, .onnx or .tflite (float or int8) with a measured card",
    "analyze": "emotions of every face in a video, image, folder or zip of images, as a CSV",
    "cpu": "whether TensorFlow's oneDNN kernels are on here and why; --probe measures it",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fer_core", description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's own log lines (device probing, CUDA, oneDNN)")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in COMMANDS.items():
        module = importlib.import_module(f"fer_core.cli.{name}")
        module.add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.verbose:  # before any command imports TensorFlow, which reads it once
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
    else:
        quiet_tensorflow_import()
    module = importlib.import_module(f"fer_core.cli.{args.command}")
    return int(module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())

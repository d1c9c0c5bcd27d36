"""`python -m fer_core teacher MODEL --data PATH [--out FILE]`: a teacher file for distillation.

MODEL (a run id, `default`, `accurate` or a model file) predicts every Training face of
`--data` as the app would run it (an ensemble with its flip TTA and temperature), and the
probabilities are written as a `.teacher.npz` file (`fer_core.teacher`; default: beside the
model, `models/accurate.teacher.npz`). A run then distils it with `--teacher FILE
--distill-weight W` (the `distill` preset names the shipped one).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from fer_core.labels import TRAINING


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="run id, 'default', a shipped ensemble or a model file")
    parser.add_argument("--data", required=True, help="dataset whose Training faces it predicts")
    parser.add_argument("--out", type=Path,
                        help="the .teacher.npz file to write (default: beside the model, "
                             "named after it)")


def default_out(model_path: Path) -> Path:
    """`models/accurate.ensemble.json` -> `models/accurate.teacher.npz`."""
    from fer_core.runtimes import ensemble_name
    from fer_core.teacher import TEACHER_SUFFIX

    return model_path.parent / f"{ensemble_name(model_path)}{TEACHER_SUFFIX}"


def run(args: argparse.Namespace) -> int:
    from fer_core import catalog
    from fer_core.data import DataError, load_dataset

    try:
        ref = catalog.resolve(args.model)
        dataset = load_dataset(args.data)
        if TRAINING not in dataset.splits():
            raise ValueError(f"{args.data} has no {TRAINING} split to predict")
        images, labels = dataset.split(TRAINING)
        from fer_core.backends import open_face_model
        from fer_core.evaluate import predict_probs
        from fer_core.teacher import write_teacher

        model = open_face_model(ref.path)
        start = time.monotonic()
        probs = predict_probs(model, images)
        out = args.out or default_out(ref.path)
        write_teacher(out, probs, images, model=ref.spec, data=dataset.source)
    except (ValueError, OSError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    agree = float((probs.argmax(axis=1) == labels).mean())
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KB): {ref.spec}'s probabilities of "
          f"{len(images):,} {TRAINING} faces in {time.monotonic() - start:.0f} s; its top label "
          f"is the face's label on {agree:.2%} of them, mean top probability "
          f"{float(probs.max(axis=1).mean()):.3f}")
    return 0

"""`python -m fer_core analyze INPUT --out FILE.csv [--annotated OUT.mp4] [--model M]
[--every N] [--no-mirror] [--json]`: emotions of every face in a video, an image, a folder or
a zip of images (`fer_core.analyze`), one CSV row per face per analysed frame.

MODEL is a run id, `default` or a model file (`fer_core.catalog`); a `.keras` model runs on
its fastest measured export, as on the Live page (`model_card.fastest_export`). `--json`
prints the summary as one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fer_core.labels import DEFAULT_MIRROR_VIEW


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="video (mp4, webm, mov, avi, mkv), image, "
                                                  "folder of images or .zip of images")
    parser.add_argument("--out", type=Path, required=True, help="the CSV to write")
    parser.add_argument("--annotated", type=Path,
                        help="also write the video with boxes and labels (H.264 mp4, no audio)")
    parser.add_argument("--model", default="default", help="run id, model file or 'default'")
    parser.add_argument("--every", type=int, default=1,
                        help="analyse every Nth video frame (default 1: all of them)")
    parser.add_argument("--uncertain-below", type=float, default=None, metavar="P",
                        help="show faces whose top probability is below P as uncertain "
                        "(default 0.4; 0: name every face): grey in the annotated video, "
                        "'uncertain' in the summary's shares, and flagged in the CSV's "
                        "'uncertain' column (its 'label' stays the top emotion)")
    parser.add_argument("--mirror", action=argparse.BooleanOptionalAction,
                        default=DEFAULT_MIRROR_VIEW,
                        help="classify each face with its mirror image too (flip TTA; default "
                        "on: 1.5 points more accurate on FER2013 PublicTest for twice the "
                        "classification time); --no-mirror: one view per face")
    parser.add_argument("--json", action="store_true",
                        help="print the summary as one JSON object on the last line")


def run(args: argparse.Namespace) -> int:
    from fer_core.analyze import analyze_file, open_classifier
    from fer_core.detect import FaceDetector
    from fer_core.labels import DEFAULT_UNCERTAIN_BELOW, check_uncertain_below

    if args.every < 1:
        print("error: --every must be 1 or more", file=sys.stderr)
        return 2
    try:
        uncertain_below = check_uncertain_below(
            DEFAULT_UNCERTAIN_BELOW if args.uncertain_below is None else args.uncertain_below,
            "--uncertain-below")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        classifier = open_classifier(args.model, mirror=args.mirror)
        summary = analyze_file(args.input, args.out, classifier, FaceDetector(),
                               annotated=args.annotated, every=args.every,
                               uncertain_below=uncertain_below)
    except (ValueError, OSError) as exc:  # AnalysisError, bad models, disk errors
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = summary.to_json() | {"mirror": args.mirror}
    for problem in summary.problems[:10]:
        print(f"warning: {problem}", file=sys.stderr)
    if args.json:
        print(json.dumps(out))
    else:
        share = ", ".join(f"{e} {v:.0%}" for e, v in out["emotion_share"].items() if v)
        print(f"{out['frames']} frame(s) analysed in {out['seconds']:.1f} s "
              f"({out['frames_per_second']:.0f} frames/s): {out['faces']} face(s) in "
              f"{out['frames_with_faces']} frame(s), {out['distinct_face_ids']} distinct, "
              f"{out['frames_without_faces']} frame(s) without a face"
              + (f"; {share}" if share else "")
              + ("; STOPPED early" if out["stopped"] else ""))
        print(f"rows: {args.out}" + (f"; annotated video: {args.annotated}"
                                     if args.annotated else ""))
    return 0

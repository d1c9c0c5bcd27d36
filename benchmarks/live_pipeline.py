"""How fast the Live page processes webcam frames: median and p95 per-frame time.

Runs `fer_core.infer.process_frame`, the function the Live page's frame callback calls, with
the page's default settings (tracker on, full scan every few frames, smoothing) on a short
640x480 "video" of 1 and of 3 real faces (scikit-image's astronaut portrait pasted on a photo,
moving a few pixels a frame), and splits each frame's time into detection and classification.

    python benchmarks/live_pipeline.py [--model default|RUN_ID|path.keras] [--runtime auto|keras]
                                       [--frames 150] [--no-mirror] [--json]

Each face is classified with its mirror image too, as the page does by default
(`fer_core.labels.DEFAULT_MIRROR_VIEW`); `--no-mirror` times one view per face.

With --json the last line is one JSON object:
{"1": {"median_ms": .., "p95_ms": ..}, "3": {"median_ms": .., "p95_ms": ..}} (plus the split).
Goals on a 2-core CPU: median under 33 ms with 3 faces, classification under 2 ms per face.
Without a trained default model the registry's `fernet` is built untrained: speed does not
depend on the weights.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import fer_core  # noqa: E402, F401  (CPU flags before TensorFlow loads)
from face_frames import face_frame  # noqa: E402
from fer_core.catalog import ModelSpecError, resolve  # noqa: E402
from fer_core.detect import FaceDetector  # noqa: E402
from fer_core.infer import (  # noqa: E402
    DEFAULT_RESCAN_EVERY,
    DEFAULT_SMOOTHING,
    Classifier,
    FaceTracker,
    StreamMonitor,
    process_frame,
)
from fer_core.backends import open_face_model, with_mirror_view  # noqa: E402
from fer_core.labels import DEFAULT_MIRROR_VIEW  # noqa: E402
from fer_core.model_card import runtime_file  # noqa: E402
from fer_core.models import create_model  # noqa: E402
from fer_core.runtimes import FaceModel  # noqa: E402

FALLBACK_MODEL = "fernet"


def load_classifier(spec: str, runtime: str = "auto") -> tuple[FaceModel, str]:
    """The model a spec names; with `runtime` "auto", the file the Live page's Automatic
    runtime runs (its fastest measured export, `model_card.fastest_export`), else Keras."""
    try:
        path = resolve(spec).path
    except ModelSpecError as exc:
        if spec != "default":
            raise SystemExit(f"error: {exc}") from exc
        print(f"note: {exc}; timing an untrained {FALLBACK_MODEL!r} instead", file=sys.stderr)
        return Classifier(create_model(FALLBACK_MODEL)), f"{FALLBACK_MODEL} (untrained)"
    if runtime == "auto":
        path = runtime_file(path)
    return open_face_model(path), str(path)


def video(n_faces: int, frames: int) -> list[np.ndarray]:
    """`frames` frames of the face picture drifting left and right by up to 12 pixels."""
    base = face_frame(n_faces)
    shifts = np.round(12 * np.sin(np.linspace(0, 4 * np.pi, frames))).astype(int)
    return [np.roll(base, int(s), axis=1) for s in shifts]


def time_stream(
    n_faces: int, classifier: FaceModel, frames: int, rescan_every: int
) -> dict[str, float]:
    detector = FaceDetector()
    tracker = FaceTracker()
    clip = video(n_faces, frames)
    for frame in clip[:10]:  # warm caches; not timed
        process_frame(frame, detector, classifier, tracker=tracker)
    tracker.reset()
    monitor = StreamMonitor()
    total, detect, classify, found, scans = [], [], [], [], []
    for frame in clip:
        start = time.perf_counter()
        _, faces = process_frame(
            frame, detector, classifier, tracker=tracker, smoothing=DEFAULT_SMOOTHING,
            rescan_every=rescan_every, monitor=monitor,
        )
        total.append((time.perf_counter() - start) * 1e3)
        timing = monitor.last_timing()
        detect.append(timing.detect_ms)
        classify.append(timing.classify_ms)
        found.append(len(faces))
        scans.append(timing.full_scan)
    if monitor.snapshot()["errors"]:
        raise SystemExit(f"error: frames failed: {monitor.snapshot()['last_error']}")
    return {
        "median_ms": float(np.median(total)),
        "p95_ms": float(np.percentile(total, 95)),
        "detect_median_ms": float(np.median(detect)),
        "detect_p95_ms": float(np.percentile(detect, 95)),
        "classify_median_ms": float(np.median(classify)),
        "classify_p95_ms": float(np.percentile(classify, 95)),
        "classify_per_face_ms": float(np.median(classify)) / max(1.0, float(np.median(found))),
        "faces_found_median": float(np.median(found)),
        "full_scan_share": float(np.mean(scans)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default", help="default, a run id or a .keras file")
    parser.add_argument("--runtime", choices=("auto", "keras"), default="auto",
                        help="auto: the file the Live page runs (fastest measured export); "
                             "keras: the .keras model")
    parser.add_argument("--frames", type=int, default=150, help="timed frames per face count")
    parser.add_argument(
        "--rescan-every", type=int, default=DEFAULT_RESCAN_EVERY,
        help="full-frame face scan every N frames (1: every frame, no re-finding)",
    )
    parser.add_argument("--mirror", action=argparse.BooleanOptionalAction,
                        default=DEFAULT_MIRROR_VIEW,
                        help="classify each face with its mirror image too (flip TTA), as the "
                        "pages do by default; --no-mirror: one view per face")
    parser.add_argument("--json", action="store_true", help="last line: results as JSON")
    args = parser.parse_args(argv)

    classifier, model_name = load_classifier(args.model, args.runtime)
    if args.mirror:
        classifier = with_mirror_view(classifier)
    print(f"model: {model_name}{' with its mirror view' if args.mirror else ''}; "
          f"{args.frames} frames of 640x480; "
          f"full scan every {args.rescan_every} frame(s)")
    results: dict[str, dict[str, float]] = {}
    for n_faces in (1, 3):
        r = time_stream(n_faces, classifier, args.frames, args.rescan_every)
        results[str(n_faces)] = {k: round(v, 2) for k, v in r.items()}
        print(
            f"{n_faces} face(s): frame median {r['median_ms']:.1f} ms, p95 {r['p95_ms']:.1f} ms | "
            f"detect median {r['detect_median_ms']:.1f} ms (p95 {r['detect_p95_ms']:.1f}) | "
            f"classify median {r['classify_median_ms']:.1f} ms "
            f"(p95 {r['classify_p95_ms']:.1f}, {r['classify_per_face_ms']:.2f} ms/face) | "
            f"faces found {r['faces_found_median']:.0f}, full scans {r['full_scan_share']:.0%}"
        )
    three = results["3"]
    print(
        f"goals: 3-face median {three['median_ms']:.1f} ms "
        f"({'met' if three['median_ms'] < 33 else 'NOT met'}: < 33 ms); classification "
        f"{three['classify_per_face_ms']:.2f} ms/face "
        f"({'met' if three['classify_per_face_ms'] < 2 else 'NOT met'}: < 2 ms)"
    )
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

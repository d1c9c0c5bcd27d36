"""How fast a recorded video is analysed: frames per second of `fer_core.analyze.analyze_file`.

Writes a 640x480 H.264 clip of the test faces (1 and 3 real faces, drifting a few pixels a
frame, 30 fps) and analyses it as `python -m fer_core analyze` does (the default model on
the runtime the Live page picks, each face with its mirror image, the Live page's detector
settings), `--runs` times each;
the figure is frames analysed per second including decoding and CSV writing, median of the
runs, with the same clip's decode-only rate as the baseline measured in the same run.

    python benchmarks/analyze_speed.py [--frames 300] [--runs 3] [--annotated] [--no-mirror] [--json]

Goals on 2 cores (issue 14): >= 150 frames/s with 1 face, >= 80 with 3. The `fer` package's
video analysis could not be compared here: `pip install fer` (25.10.3) would pull torch 2.2.2
with its CUDA wheels (`facenet-pytorch`), moviepy 1.0.3 and downgrade NumPy to 1.26.4, which
the app's TensorFlow 2.21 stack cannot run with (`pip install --dry-run fer`, 2026-12-02).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import fer_core  # noqa: E402, F401  (CPU flags before TensorFlow loads)
from face_frames import face_frame  # noqa: E402
from fer_core import catalog, model_card  # noqa: E402
from fer_core.analyze import analyze_file, iter_frames  # noqa: E402
from fer_core.backends import open_face_model, with_mirror_view  # noqa: E402
from fer_core.detect import FaceDetector  # noqa: E402
from fer_core.labels import DEFAULT_MIRROR_VIEW  # noqa: E402

GOALS = {1: 150.0, 3: 80.0}


def write_clip(path: Path, n_faces: int, frames: int, fps: int = 30) -> Path:
    import av

    base = face_frame(n_faces)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = 640, 480, "yuv420p"
        for i in range(frames):
            image = np.roll(base, round(6 * np.sin(i / 8)), axis=1)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--annotated", action="store_true", help="also write the annotated mp4")
    parser.add_argument("--mirror", action=argparse.BooleanOptionalAction,
                        default=DEFAULT_MIRROR_VIEW,
                        help="classify each face with its mirror image too (flip TTA), as the "
                        "pages do by default; --no-mirror: one view per face")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    path = model_card.runtime_file(catalog.resolve("default").path)
    classifier = open_face_model(path)
    if args.mirror:
        classifier = with_mirror_view(classifier)
    print(f"model: {path.name}{' with its mirror view' if args.mirror else ''}; {args.frames} frames of 640x480 H.264 at 30 fps; "
          f"median of {args.runs} runs" + ("; annotated video written" if args.annotated else ""))
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for n in (1, 3):
            clip = write_clip(folder / f"clip{n}.mp4", n, args.frames)
            decode = []
            rates, faces = [], 0
            for _ in range(args.runs):
                start = time.perf_counter()
                count = sum(1 for _ in iter_frames(clip))
                decode.append(count / (time.perf_counter() - start))
                summary = analyze_file(
                    clip, folder / "rows.csv", classifier, FaceDetector(),
                    annotated=folder / "annotated.mp4" if args.annotated else None)
                rates.append(summary.frames_per_second)
                faces = summary.faces / max(1, summary.frames)
            fps = statistics.median(rates)
            results[n] = {"frames_per_second": round(fps, 1),
                          "decode_only_fps": round(statistics.median(decode), 1),
                          "faces_per_frame": round(faces, 2), "goal": GOALS[n]}
            print(f"{n} face(s): {fps:6.1f} frames/s analysed (decode alone "
                  f"{statistics.median(decode):6.1f}; {faces:.2f} faces found a frame) -> goal "
                  f">= {GOALS[n]:.0f}: {'met' if fps >= GOALS[n] else 'NOT met'}")
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Face detectors for the Live page compared: full-scan cost and faces found on real faces.

Each candidate is a `fer_core.detect.FaceDetector` setting (cascade file, detection width,
scale factor). For each it prints:
- ms per full scan of a 640x480 webcam frame with 1 and 3 faces (median CPU time of --repeat
  scans, and wall time), the cost the Live page pays every few frames;
- recall on real faces: FER2013 PublicTest faces (real people, all seven expressions, many
  poses), each upscaled to a webcam-sized face (120-200 px) and placed at a random spot of a
  640x480 photo background; a face counts as found when a box overlaps it (IoU >= 0.3);
- false faces per frame on the background alone, and on the frames with faces.

    python benchmarks/face_detectors.py [--faces 600] [--repeat 30] [--data PATH] [--json]

Without the shared FER2013 file (`--data`, default ../shared/fer2013/fer2013.csv.gz or
$FER2013_CSV) the recall column is left out.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from face_frames import _sources, face_frame  # noqa: E402
from fer_core.detect import Box, FaceDetector, iou  # noqa: E402

# (label, cascade file, detect width, scale factor); the first is the Live page's default.
CANDIDATES = [
    ("default 320px x1.1", "haarcascade_frontalface_default.xml", 320, 1.1),
    ("default 320px x1.2", "haarcascade_frontalface_default.xml", 320, 1.2),
    ("default 240px x1.1", "haarcascade_frontalface_default.xml", 240, 1.1),
    ("default 480px x1.1", "haarcascade_frontalface_default.xml", 480, 1.1),
    ("default 640px x1.1", "haarcascade_frontalface_default.xml", 640, 1.1),
    ("alt2 320px x1.1", "haarcascade_frontalface_alt2.xml", 320, 1.1),
]
DEFAULT_DATA = ROOT.parent / "shared" / "fer2013" / "fer2013.csv.gz"


def timed_scans(detector: FaceDetector, gray: np.ndarray, repeat: int) -> tuple[float, float]:
    """Median CPU and wall ms of one full scan."""
    detector.detect(gray)
    cpu, wall = [], []
    for _ in range(repeat):
        c, w = time.process_time(), time.perf_counter()
        detector.detect(gray)
        cpu.append((time.process_time() - c) * 1e3)
        wall.append((time.perf_counter() - w) * 1e3)
    return statistics.median(cpu), statistics.median(wall)


def real_face_scenes(faces: np.ndarray, seed: int = 0) -> list[tuple[np.ndarray, Box]]:
    """Each 48x48 face upscaled to 120-200 px at a random place of a 640x480 background."""
    rng = np.random.default_rng(seed)
    _, background = _sources()
    back = cv2.cvtColor(cv2.resize(background, (640, 480), interpolation=cv2.INTER_AREA),
                        cv2.COLOR_BGR2GRAY)
    scenes = []
    for face in faces:
        side = int(rng.integers(120, 201))
        x, y = int(rng.integers(0, 640 - side)), int(rng.integers(0, 480 - side))
        scene = back.copy()
        scene[y : y + side, x : x + side] = cv2.resize(face, (side, side),
                                                       interpolation=cv2.INTER_CUBIC)
        scenes.append((scene, Box(x, y, side, side)))
    return scenes


def recall(detector: FaceDetector, scenes: list[tuple[np.ndarray, Box]]) -> tuple[float, float]:
    """Share of faces found, and false boxes per scene."""
    found = false = 0
    for scene, truth in scenes:
        boxes = detector.detect(scene)
        hits = [b for b in boxes if iou(b, truth) >= 0.3]
        found += bool(hits)
        false += len(boxes) - len(hits)
    return found / len(scenes), false / len(scenes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faces", type=int, default=600)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--data", default=os.environ.get("FER2013_CSV", str(DEFAULT_DATA)))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    scenes = None
    if Path(args.data).is_file():
        from fer_core.data import load_dataset

        images, _ = load_dataset(args.data).split("PublicTest")
        pick = np.random.default_rng(1).choice(len(images), min(args.faces, len(images)),
                                               replace=False)
        scenes = real_face_scenes(np.asarray(images[np.sort(pick)]))
    else:
        print(f"note: {args.data} not found; no recall figures", file=sys.stderr)
    gray = {n: cv2.cvtColor(face_frame(n), cv2.COLOR_BGR2GRAY) for n in (0, 1, 3)}

    rows = {}
    for label, cascade, width, scale in CANDIDATES:
        detector = FaceDetector(scale, 5, 40, detect_width=width, cascade=cascade)
        row = {}
        for n in (1, 3):
            row[f"cpu_ms_{n}"], row[f"wall_ms_{n}"] = timed_scans(detector, gray[n], args.repeat)
            row[f"found_{n}"] = len(detector.detect(gray[n]))
        row["false_on_background"] = len(detector.detect(gray[0]))
        if scenes:
            row["recall"], row["false_per_scene"] = recall(detector, scenes)
        rows[label] = row

    yunet = hasattr(cv2, "FaceDetectorYN")
    shipped = sorted(p.name for p in Path(cv2.data.haarcascades).glob("*.onnx"))
    print(f"YuNet: cv2.FaceDetectorYN {'exists' if yunet else 'is missing'}; model files shipped "
          f"with opencv-python-headless {cv2.__version__}: {shipped or 'none'} (the ONNX model "
          "comes from opencv_zoo, a download), so it is not compared here")

    print(f"\nFull scans of a 640x480 frame (median of {args.repeat}); recall on "
          f"{len(scenes) if scenes else 0} FER2013 PublicTest faces placed in photos")
    print(f"{'detector':<20} {'1 face CPU':>10} {'3 faces CPU':>11} {'wall':>7} {'found 1/3':>9} "
          f"{'recall':>7} {'false/scene':>11}")
    for label, r in rows.items():
        rec = f"{r['recall']:.1%}" if "recall" in r else "-"
        fps = f"{r['false_per_scene']:.3f}" if "false_per_scene" in r else "-"
        print(f"{label:<20} {r['cpu_ms_1']:>8.1f}ms {r['cpu_ms_3']:>9.1f}ms {r['wall_ms_3']:>5.1f}ms "
              f"{r['found_1']:>5}/{r['found_3']:<3} {rec:>7} {fps:>11}")
    if args.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()

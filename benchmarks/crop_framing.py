"""Does the pipeline crop a detected face the way FER2013 framed its faces?

Each FER2013 PublicTest face is upscaled (4x, to 192 px) and set in a larger image whose
border continues its edge pixels; the Live page's detector (`fer_core.detect.FaceDetector`)
looks for it, and the box nearest the centre is cropped by `fer_core.infer.crop_faces` with
each margin in turn. Printed: how often a face is found, the detected box's side and centre
against the FER2013 image's, and per margin the model's PublicTest accuracy on the crops and
how often its top label is the one it gives the original 48x48 face (the framing it was
trained on). The margin that keeps the most labels is the framing the model expects; the
pipeline's default is `fer_core.infer.CROP_MARGIN`.

    python benchmarks/crop_framing.py [--model default] [--margins 0 0.05 0.1 0.2] [--data PATH]

Needs the shared FER2013 file (`--data`, default ../shared/fer2013/fer2013.csv.gz).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import fer_core  # noqa: E402,F401  (CPU flags before TensorFlow loads)
from fer_core import catalog  # noqa: E402
from fer_core.backends import open_face_model  # noqa: E402
from fer_core.data import load_dataset  # noqa: E402
from fer_core.detect import Box, FaceDetector  # noqa: E402
from fer_core.infer import CROP_MARGIN, crop_faces  # noqa: E402
from fer_core.labels import IMG_SIZE  # noqa: E402
from fer_core.model_card import runtime_file  # noqa: E402

UPSCALE = 4  # a 192-pixel face, as a face near a webcam
BORDER = 96  # pixels of continued edge around it, room for the detector and wide crops


def embed(face: np.ndarray) -> np.ndarray:
    """A 48x48 face upscaled and set in a larger image that continues its edges."""
    big = cv2.resize(face, (IMG_SIZE * UPSCALE,) * 2, interpolation=cv2.INTER_CUBIC)
    return cv2.copyMakeBorder(big, BORDER, BORDER, BORDER, BORDER, cv2.BORDER_REPLICATE)


def central_box(boxes: list[Box], side: int) -> Box | None:
    """The box whose centre is nearest the image's (the embedded face), or None."""
    centre = side / 2
    return min(boxes, key=lambda b: abs(b.x + b.w / 2 - centre) + abs(b.y + b.h / 2 - centre),
               default=None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--margins", type=float, nargs="+",
                        default=[0.0, 0.025, 0.05, 0.1, 0.15, 0.2])
    parser.add_argument("--data", default=str(ROOT.parent / "shared/fer2013/fer2013.csv.gz"))
    args = parser.parse_args()
    if not Path(args.data).is_file():
        print(f"{args.data} not found: this benchmark needs FER2013's PublicTest faces")
        return 1

    images, labels = load_dataset(args.data).split("PublicTest")
    faces = images.reshape(-1, IMG_SIZE, IMG_SIZE)
    path = runtime_file(catalog.resolve(args.model).path)  # what the Live page would run
    model = open_face_model(path)
    direct = model.predict(faces).argmax(1)
    detector = FaceDetector()

    start = time.perf_counter()
    found, boxes = [], []
    for i, face in enumerate(faces):
        image = embed(face)
        box = central_box(detector.detect(image), image.shape[0])
        if box is not None:
            found.append(i)
            boxes.append(box)
    seconds = time.perf_counter() - start
    found = np.array(found)
    side = IMG_SIZE * UPSCALE
    ratio = np.array([max(b.w, b.h) / side for b in boxes])
    dx = np.array([(b.x + b.w / 2 - BORDER - side / 2) / side for b in boxes])
    dy = np.array([(b.y + b.h / 2 - BORDER - side / 2) / side for b in boxes])
    print(f"model: {path.name}; {len(faces)} PublicTest faces, each {UPSCALE}x upscaled; "
          f"detection {seconds:.0f} s")
    print(f"found: {len(found)} ({len(found) / len(faces):.1%}); detected box side / FER2013 "
          f"image side: median {np.median(ratio):.3f} (p10 {np.percentile(ratio, 10):.3f}, "
          f"p90 {np.percentile(ratio, 90):.3f}); centre offset x {np.median(dx):+.3f}, "
          f"y {np.median(dy):+.3f} of the side")
    truth, original = labels[found], direct[found]
    print(f"the original 48x48 faces of those: accuracy {(original == truth).mean():.2%}")
    print(f"{'margin':>7} {'crop / image':>12} {'accuracy':>9} {'same label':>11}")
    for margin in args.margins:
        crops = np.concatenate([crop_faces(embed(faces[i]), [b], margin)
                                for i, b in zip(found, boxes, strict=True)])
        predicted = model.predict(crops).argmax(1)
        mark = "  (pipeline default)" if margin == CROP_MARGIN else ""
        print(f"{margin:7.3f} {np.median(ratio) * (1 + 2 * margin):12.2f} "
              f"{(predicted == truth).mean():9.2%} {(predicted == original).mean():11.2%}{mark}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

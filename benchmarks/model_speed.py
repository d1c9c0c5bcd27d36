"""ms per face of shipped models as the app runs them, side by side in one run.

Opens each model spec through `backends.open_face_model` (an ensemble with its members, flip
views and temperature; a `.keras` model as the Keras classifier; `--runtime-file` runs a
model's fastest carded export instead, as the Live page's Automatic does) and times the
median of `--repeats` calls for one face, four faces (a webcam frame) and a batch of 128, on
PublicTest faces when the data is there (random faces otherwise). Ratios are to the first
model named.

    python benchmarks/model_speed.py [--models default accurate] [--repeats 30] [--data PATH]
                                     [--runtime-file] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

import fer_core  # noqa: E402, F401  (CPU flags before TensorFlow loads)
from fer_core import catalog, model_card  # noqa: E402
from fer_core.backends import open_face_model  # noqa: E402
from classify_speed import BATCHES, load_faces, median_ms  # noqa: E402

REAL_CSV = ROOT.parent / "shared/fer2013/fer2013.csv.gz"


def faces(data: str | None, n: int) -> np.ndarray:
    """`n` PublicTest faces of `data` (default: the shared FER2013), else random ones."""
    test = load_faces(data or (str(REAL_CSV) if REAL_CSV.exists() else None))[0]
    if test is None:
        return np.random.default_rng(0).integers(0, 256, (n, 48, 48), dtype=np.uint8)
    return test[:n]


def time_model(model, images: np.ndarray, repeats: int) -> dict[int, float]:
    """Median ms per call for each batch size (a warm-up call first)."""
    return {n: median_ms(lambda batch=images[:n]: model.predict(batch), repeats)
            for n in BATCHES}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["default", "accurate"])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--data")
    parser.add_argument("--runtime-file", action="store_true",
                        help="run each .keras model's fastest carded export (Live's Automatic)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    images = faces(args.data, max(BATCHES))
    rows = []
    for spec in args.models:
        path = catalog.resolve(spec).path
        if args.runtime_file:
            path = model_card.runtime_file(path)
        model = open_face_model(path)
        ms = time_model(model, images, args.repeats)
        rows.append({"model": spec, "file": path.name, "runtime": model.runtime,
                     "ms_1": ms[1], "ms_4": ms[4], "ms_per_face_128": ms[128] / 128})
    base = rows[0]
    print(f"{'model':<12}{'file':<30}{'1 face ms':>10}{'4 faces ms':>11}{'128: ms/face':>13}"
          f"{'x first (1 / 128)':>19}")
    for row in rows:
        ratio = (f"{row['ms_1'] / base['ms_1']:.2f} / "
                 f"{row['ms_per_face_128'] / base['ms_per_face_128']:.2f}")
        print(f"{row['model']:<12}{row['file']:<30}{row['ms_1']:>10.2f}{row['ms_4']:>11.2f}"
              f"{row['ms_per_face_128']:>13.3f}{ratio:>19}")
    if args.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

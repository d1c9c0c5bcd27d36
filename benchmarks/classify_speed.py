"""Every inference back-end side by side: ms per face, achieved GFLOP/s, accuracy kept.

Exports the model (default: the shipped one) to ONNX and LiteRT, float and int8 (calibrated
on Training faces), in a temporary folder, or uses the exports beside it whose cards name
it (`--use-shipped`), then times each back-end (`fer_core.runtimes`) in the same run: the
median of `--repeats` calls for one face, four faces (a webcam frame) and a batch of 128,
on real PublicTest faces when the data is there. Next to each figure: the GFLOP/s it
achieves (the model's FLOPs per face from `models.cost`), its ratio to the Keras back-end,
and, on PublicTest, its accuracy, the difference to Keras in points and how often its top
label is Keras's.

    python benchmarks/classify_speed.py [--model default|RUN_ID|path.keras] [--repeats 50]
                                        [--data PATH] [--use-shipped] [--json]

Goals (issue 16): <= 0.3 ms per face in a batch of 128 and <= 0.8 ms for one face, within
0.3 points of the Keras model's PublicTest accuracy.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

import fer_core  # noqa: E402, F401  (CPU flags before TensorFlow loads)
from fer_core import catalog, model_card  # noqa: E402
from fer_core.labels import PUBLIC_TEST, TRAINING  # noqa: E402
from fer_core.backends import open_face_model  # noqa: E402
from fer_core.runtimes import RUNTIME_NAMES, inference_threads  # noqa: E402

BATCHES = (1, 4, 128)
VARIANTS = (("onnx", False), ("onnx", True), ("tflite", False), ("tflite", True))


def median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def matmul_gflops(size: int = 1024, repeats: int = 7) -> float:
    """What this machine's BLAS achieves on a float32 matrix product: the practical fp32
    limit the back-ends' GFLOP/s are to be read against."""
    a = np.random.default_rng(1).random((size, size), dtype=np.float32)
    ms = median_ms(lambda: a @ a, repeats)
    return 2 * size**3 / (ms / 1e3) / 1e9


def load_faces(source: str | None):
    """(PublicTest faces, labels, Training faces, labels), or Nones without the data."""
    from fer_core.data import load_dataset

    if not source:
        return None, None, None, None
    try:
        ds = load_dataset(source)
    except (ValueError, OSError) as exc:
        print(f"data {source}: {exc}; timing random faces, no accuracy")
        return None, None, None, None
    test = ds.split(PUBLIC_TEST) if PUBLIC_TEST in ds.splits() else (None, None)
    train = ds.split(TRAINING) if TRAINING in ds.splits() else (None, None)
    return (*test, *train)


def files_to_time(ref, folder: Path, use_shipped: bool, train_x, train_y) -> list[Path]:
    from fer_core.export import calibration_faces, default_target, export_file

    if use_shipped:
        return [e.path for e in model_card.exports_of(ref.path)]
    calibration = calibration_faces(train_x, train_y) if train_x is not None else None
    found = []
    for fmt, int8 in VARIANTS:
        if int8 and calibration is None:
            print(f"{fmt} int8: skipped (no Training faces to calibrate on)")
            continue
        target = folder / default_target(ref.path, fmt, int8).name
        start = time.perf_counter()
        export_file(ref.path, target, int8=int8, calibration=calibration)
        print(f"exported {target.name} in {time.perf_counter() - start:.1f} s")
        found.append(target)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default", help="default, a run id or a .keras file")
    parser.add_argument("--repeats", type=int, default=50, help="timings per batch size")
    parser.add_argument("--data", help="dataset for PublicTest accuracy and int8 calibration "
                                       "(default: what the model was trained on)")
    parser.add_argument("--use-shipped", action="store_true",
                        help="time the exports beside the model instead of exporting afresh")
    parser.add_argument("--json", action="store_true", help="last line: results as JSON")
    args = parser.parse_args(argv)

    from fer_core.models import load_model
    from fer_core.models.cost import model_cost

    ref = catalog.resolve(args.model)
    data = args.data or ref.trained_on
    test_x, test_y, train_x, train_y = load_faces(data)
    flops = model_cost(load_model(ref.path)).flops
    rng = np.random.default_rng(0)
    pool = test_x if test_x is not None else rng.integers(0, 256, (128, 48, 48), np.uint8)
    print(f"model: {ref.label} ({flops / 1e6:.0f} MFLOPs a face); {inference_threads()} "
          f"inference threads; median of {args.repeats} calls per batch size; data: {data}")
    with tempfile.TemporaryDirectory() as tmp:
        paths = [ref.path, *files_to_time(ref, Path(tmp), args.use_shipped, train_x, train_y)]
        rows = [measure(p, pool, test_x, test_y, flops, args.repeats) for p in paths]
    keras_row = rows[0]
    keras_labels = keras_row.get("_labels")
    for row in rows:
        row["speedup_single"] = round(keras_row["ms"]["1"] / row["ms"]["1"], 2)
        row["speedup_batch"] = round(keras_row["per_face_ms"]["128"] / row["per_face_ms"]["128"], 2)
        if row.get("accuracy") is not None:
            row["points_vs_keras"] = round((row["accuracy"] - keras_row["accuracy"]) * 100, 2)
            row["agreement"] = float((row.pop("_labels") == keras_labels).mean())
    print_table(rows)
    peak = matmul_gflops()
    print(f"machine limit: a float32 1024x1024 matrix product runs at {peak:.0f} GFLOP/s here "
          f"(NumPy's BLAS, all cores); 0.3 ms a face would need "
          f"{flops / 0.3e-3 / 1e9:.0f} GFLOP/s, 0.8 ms {flops / 0.8e-3 / 1e9:.0f}")
    best_single = min(r["ms"]["1"] for r in rows)
    best_batch = min(r["per_face_ms"]["128"] for r in rows)
    print(f"goals: one face {best_single:.2f} ms ({'met' if best_single <= 0.8 else 'NOT met'}: "
          f"<= 0.8 ms); batch of 128 {best_batch:.3f} ms/face "
          f"({'met' if best_batch <= 0.3 else 'NOT met'}: <= 0.3 ms)")
    if args.json:
        print(json.dumps(rows))
    return 0


def measure(path: Path, pool: np.ndarray, test_x, test_y, flops: int, repeats: int) -> dict:
    from fer_core.export import predict_all

    model = open_face_model(path)
    row: dict = {"file": path.name, "runtime": RUNTIME_NAMES[model.runtime]
                 + (" int8" if ".int8." in path.name else ""), "ms": {}, "per_face_ms": {},
                 "gflops": {}}
    for n in BATCHES:
        faces = np.resize(pool, (n, 48, 48)) if len(pool) < n else pool[:n]
        ms = median_ms(lambda faces=faces: model.predict(faces), repeats)
        row["ms"][str(n)] = round(ms, 3)
        row["per_face_ms"][str(n)] = round(ms / n, 3)
        row["gflops"][str(n)] = round(flops * n / (ms / 1e3) / 1e9, 1)
    if test_x is not None:
        labels = predict_all(model, test_x).argmax(1)
        row["accuracy"] = float((labels == test_y).mean())
        row["_labels"] = labels
    return row


def print_table(rows: list[dict]) -> None:
    print(f"{'runtime':<22}{'1 face ms':>10}{'GFLOP/s':>9}{'4 faces ms':>11}"
          f"{'128: ms/face':>13}{'GFLOP/s':>9}{'x Keras 1/128':>15}{'PublicTest':>11}"
          f"{'points':>8}{'agree':>8}")
    for r in rows:
        acc = f"{r['accuracy']:.2%}" if r.get("accuracy") is not None else "-"
        pts = f"{r['points_vs_keras']:+.2f}" if "points_vs_keras" in r else "-"
        agree = f"{r['agreement']:.2%}" if "agreement" in r else "-"
        print(f"{r['runtime']:<22}{r['ms']['1']:>10.2f}{r['gflops']['1']:>9.0f}"
              f"{r['ms']['4']:>11.2f}{r['per_face_ms']['128']:>13.3f}{r['gflops']['128']:>9.0f}"
              f"{r['speedup_single']:>8.1f}/{r['speedup_batch']:<6.1f}{acc:>11}{pts:>8}{agree:>8}")


if __name__ == "__main__":
    sys.exit(main())

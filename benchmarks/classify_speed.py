"""How long the classifier takes per face: one face alone, and faces in a batch.

Times `fer_core.infer.Classifier.predict` (the traced `tf.function` the Live page, the photo
view and the evaluation use) on random 48x48 crops, against `model.predict` on the same
batches as the baseline measured in the same run. Each figure is the median of `--repeats`
timings; a batch timing is divided by its size.

    python benchmarks/classify_speed.py [--model default|RUN_ID|path.keras] [--repeats 50]

Goals on a 2-core CPU (issue 7): at most 3 ms for a single face, at most 1 ms per face in a
batch.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks"), str(ROOT / "tests")]

import fer_core  # noqa: E402, F401  (CPU flags before TensorFlow loads)
from live_pipeline import load_classifier  # noqa: E402

BATCHES = (1, 4, 32, 128)


def median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default", help="default, a run id or a .keras file")
    parser.add_argument("--repeats", type=int, default=50, help="timings per batch size")
    parser.add_argument("--json", action="store_true", help="last line: results as JSON")
    args = parser.parse_args(argv)

    classifier, name = load_classifier(args.model)
    rng = np.random.default_rng(0)
    print(f"model: {name}; median of {args.repeats} calls per batch size")
    results: dict[str, dict[str, float]] = {}
    for n in BATCHES:
        faces = rng.integers(0, 256, size=(n, 48, 48), dtype=np.uint8)
        as_float = faces[..., None].astype(np.float32)
        ours = median_ms(lambda: classifier.predict(faces), args.repeats)
        base = median_ms(lambda: classifier.model.predict(as_float, verbose=0),
                         max(5, args.repeats // 5))
        results[str(n)] = {"call_ms": round(ours, 3), "per_face_ms": round(ours / n, 3),
                           "predict_call_ms": round(base, 2), "speedup": round(base / ours, 1)}
        print(f"batch {n:>3}: {ours:7.2f} ms/call  {ours / n:6.3f} ms/face  | model.predict "
              f"{base:7.2f} ms/call  ({base / ours:.1f}x slower)")
    single = results["1"]["call_ms"]
    batched = min(r["per_face_ms"] for k, r in results.items() if int(k) >= 32)
    print(f"goals: single face {single:.2f} ms ({'met' if single <= 3 else 'NOT met'}: <= 3 ms); "
          f"in a batch {batched:.3f} ms/face ({'met' if batched <= 1 else 'NOT met'}: <= 1 ms)")
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How long evaluating PublicTest (3,589 faces) takes: cold (nothing cached) and cached.

Runs `fer_core.evaluate.evaluate_cached`, the function the Evaluate page and the CLI call.
Cold = an empty cache: load the model, trace, predict in batches, write the cache files.
Cached = reopening the same model and split (hashes + reading the .npz). Also the extra cold
cost of test-time augmentation (the flipped pass only; the plain one is already cached).

    python benchmarks/evaluate_speed.py [--model default|RUN_ID|path.keras] [--repeats 5] [--json]

Data: PublicTest of ../shared/fer2013/fer2013.csv.gz when present, else a demo set with
3,589 faces in its PublicTest split. Without a trained model (no --model and no shipped
default) an untrained model of the "default" preset's architecture (else fernet) is built:
speed does not depend on the weights. The cache goes to a temporary folder, so no run
folder is touched.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import fer_core  # noqa: E402,F401  (CPU flags before TensorFlow loads)

N_FACES = 3589
SHARED_CSV = ROOT.parent / "shared" / "fer2013" / "fer2013.csv.gz"


def _faces():
    from fer_core.data import load_dataset
    from fer_core.data.demo import make_demo

    if SHARED_CSV.is_file():
        images, labels = load_dataset(str(SHARED_CSV)).split("PublicTest")
        return images, labels, f"{SHARED_CSV.name} PublicTest"
    # 10 % of the demo set is PublicTest: ask for ten times as many faces
    data = make_demo(N_FACES * 10, seed=0)
    images, labels = data.split("PublicTest")
    return images[:N_FACES], labels[:N_FACES], "demo PublicTest (synthetic)"


def _model_file(spec: str | None, folder: Path) -> tuple[Path, str]:
    """A .keras file to evaluate, copied into `folder` so its cache lives in the temp dir."""
    from fer_core import catalog
    from fer_core.paths import default_model_path

    if spec is None and default_model_path().is_file():
        spec = catalog.DEFAULT
    target = folder / "model.keras"
    if spec is not None:
        shutil.copyfile(catalog.resolve(spec).path, target)
        return target, spec
    from fer_core.config import PRESETS
    from fer_core.models import create_model

    preset = PRESETS.get("default", {})
    name, options = preset.get("model", "fernet"), preset.get("model_kwargs", {})
    create_model(name, **options).save(target)
    return target, f"untrained {name} {options}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="run id, .keras path or 'default'")
    parser.add_argument("--repeats", type=int, default=5, help="timed cached evaluations")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = parser.parse_args(argv)

    from fer_core import evaluate as ev

    images, labels, data_name = _faces()
    tmp = Path(tempfile.mkdtemp(prefix="fer-eval-bench-"))
    os.environ["FER_CACHE_DIR"] = str(tmp / "cache")
    try:
        path, model_name = _model_file(args.model, tmp)
        spec = str(path)
        t0 = time.perf_counter()
        cold = ev.evaluate_cached(spec, images, labels, split="PublicTest")
        cold_s = time.perf_counter() - t0
        cached = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            hit = ev.evaluate_cached(spec, images, labels, split="PublicTest")
            cached.append(time.perf_counter() - t0)
        assert (hit.confusion == cold.confusion).all()
        t0 = time.perf_counter()
        tta = ev.evaluate_cached(spec, images, labels, split="PublicTest", tta=True)
        tta_cold_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        ev.evaluate_cached(spec, images, labels, split="PublicTest", tta=True)
        tta_cached_s = time.perf_counter() - t0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    figures = {
        "faces": int(len(labels)), "data": data_name, "model": model_name,
        "cold_s": round(cold_s, 3), "cached_s": round(statistics.median(cached), 4),
        "tta_extra_cold_s": round(tta_cold_s, 3), "tta_cached_s": round(tta_cached_s, 4),
        "accuracy": round(cold.accuracy, 4), "accuracy_tta": round(tta.accuracy, 4),
        "cpu_count": os.cpu_count(),
    }
    print(f"{figures['faces']:,} faces of {data_name}, model {model_name}")
    print(f"cold   {cold_s:7.2f} s  (load model, predict, write cache)")
    print(f"cached {figures['cached_s']:7.3f} s  (median of {args.repeats})")
    print(f"TTA    {tta_cold_s:7.2f} s  extra cold (flipped pass), {tta_cached_s:.3f} s cached")
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Training speed of every registered model on this machine: images/s and seconds per epoch.

    python benchmarks/train_throughput.py [--models a,b] [--batch-size 64] [--steps 5]
                                          [--repeats 5] [--threads N] [--no-augment] [--json]

Each model is built and traced once, then timed `repeats` times over `steps` optimizer steps
(random 48x48 images through the real pipeline, augmentation on by default); the table shows
the median and the range. Seconds per epoch are for FER2013's 28,709 training images.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import fer_core  # noqa: F401  (CPU flags before TensorFlow loads)
from fer_core.labels import FER2013_COUNTS, TRAINING

FER2013_TRAIN = sum(FER2013_COUNTS[TRAINING])  # 28,709


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", help="comma-separated model names (default: all registered)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5, help="optimizer steps per timing")
    parser.add_argument("--repeats", type=int, default=5, help="timings per model (median shown)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (tracing)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0 = all cores)")
    parser.add_argument("--no-augment", action="store_true", help="time without augmentation")
    parser.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    args = parser.parse_args(argv)

    import tensorflow as tf

    from fer_core.config import TrainConfig
    from fer_core.models import count_params, create_model, model_names
    from fer_core.train import configure_threads, throughput_samples

    configure_threads(args.threads)
    names = args.models.split(",") if args.models else model_names()
    rows = []
    for name in names:
        config = TrainConfig(model=name, batch_size=args.batch_size,
                             augment=None if args.no_augment else {})
        params = count_params(create_model(name))
        rates = throughput_samples(config, steps=args.steps, warmup=args.warmup,
                                   repeats=args.repeats)
        median = statistics.median(rates)
        rows.append({"model": name, "params": params, "images_per_s": round(median, 1),
                     "min": round(min(rates), 1), "max": round(max(rates), 1),
                     "s_per_epoch": round(FER2013_TRAIN / median, 1)})
        print(f"  {name}: {median:.1f} images/s", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    gpus = tf.config.list_physical_devices("GPU")
    print(f"TensorFlow {tf.__version__}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPU(s), {len(gpus)} GPU(s), threads {args.threads or 'all'}, "
          f"batch {args.batch_size}, augment {'off' if args.no_augment else 'on'}, "
          f"median of {args.repeats} x {args.steps} steps, epoch = {FER2013_TRAIN:,} images")
    print()
    print("| model | params | images/s (median) | range | s/epoch |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['model']} | {r['params']:,} | {r['images_per_s']:.1f} | "
              f"{r['min']:.1f}-{r['max']:.1f} | {r['s_per_epoch']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How fast FER2013 loads: cold parse, cached load, and the line-by-line baseline.

    python benchmarks/load_csv.py [PATH] [--runs 5] [--baseline-runs 1]

PATH defaults to ../shared/fer2013/fer2013.csv.gz beside the repo. The file is unpacked once
to a temporary plain CSV (outside the repo) so that every timing starts from the same file.
Figures are medians over `--runs`; the baseline is the per-row
`[int(x) for x in line.split()]` loader of the well-known FER2013 blog posts.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fer_core.data import load_dataset, parse_csv_bytes  # noqa: E402

DEFAULT = Path(__file__).resolve().parents[2] / "shared/fer2013/fer2013.csv.gz"


def baseline(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The blog-post loader: one Python int() per pixel."""
    images, labels, usage = [], [], []
    with open(path) as fh:
        next(fh)
        for line in fh:
            emotion, pixels, split = line.rstrip("\n").split(",")
            images.append(np.array([int(x) for x in pixels.split()], dtype=np.uint8))
            labels.append(int(emotion))
            usage.append(split)
    return np.stack(images).reshape(-1, 48, 48), np.array(labels), usage


def timed(fn: Callable[[], object], runs: int) -> tuple[float, list[float], object]:
    """Median wall time, all wall times, and the result. Also records the median CPU time
    (both threads together) in CPU_TIMES: on a shared machine wall time includes waiting."""
    times, cpu, result = [], [], None
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = fn()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    CPU_TIMES.append(statistics.median(cpu))
    return statistics.median(times), times, result


CPU_TIMES: list[float] = []


def show(name: str, median: float, runs: list[float], digits: int = 2) -> None:
    print(f"{name:<44} {median:6.{digits}f} s  cpu {CPU_TIMES[-1]:5.2f} s  "
          f"runs {[round(t, digits) for t in runs]}")


def load_average() -> str:
    try:
        return f"load average {os.getloadavg()[0]:.1f}"
    except OSError:
        return "load average unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default=str(DEFAULT))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--baseline-runs", type=int, default=1)
    args = parser.parse_args()
    source = Path(args.path)
    if not source.exists():
        print(f"no data at {source}: pass the path of fer2013.csv(.gz)")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["FER_CACHE_DIR"] = str(Path(tmp) / "cache")
        raw = source.read_bytes()
        plain = Path(tmp) / "fer2013.csv"
        if raw[:2] == b"\x1f\x8b":
            raw = zlib.decompress(raw, wbits=16 + zlib.MAX_WBITS)
        plain.write_bytes(raw)
        print(f"{source}: {len(raw) / 1e6:.0f} MB of CSV text; {os.cpu_count()} CPUs, "
              f"{load_average()}; median of {args.runs} runs (CPU s = both threads)")

        parse_s, parse_all, ds = timed(lambda: parse_csv_bytes(raw, "bench"), args.runs)
        show(f"cold parse, {len(ds):,} rows (bytes in memory)", parse_s, parse_all)
        file_s, file_all, _ = timed(lambda: load_dataset(plain, use_cache=False), args.runs)
        show("cold load of the plain .csv (read+parse)", file_s, file_all)
        if source.suffix == ".gz":
            gz_s, gz_all, _ = timed(lambda: load_dataset(source, use_cache=False), args.runs)
            show("cold load of the .csv.gz (+ gunzip)", gz_s, gz_all)
        load_dataset(plain)  # fills the cache
        cached_s, cached_all, cached = timed(lambda: load_dataset(plain), args.runs)
        assert np.array_equal(cached.images, ds.images)
        show("cached load (second load of the .csv)", cached_s, cached_all, digits=3)
        base_s, base_all, (images, labels, _) = timed(lambda: baseline(plain), args.baseline_runs)
        assert np.array_equal(images, ds.images) and np.array_equal(labels, ds.labels)
        show("baseline, line by line (read+parse)", base_s, base_all)
        print(f"{'ratio baseline / cold load of the .csv':<44} {base_s / file_s:6.1f}x  "
              f"(baseline / cold parse {base_s / parse_s:.1f}x; "
              f"in CPU time {CPU_TIMES[-1] / CPU_TIMES[1]:.1f}x)")
        ok = file_s <= 3.0 and cached_s <= 0.3 and base_s / file_s >= 4
        print("targets (cold <= 3 s, cached <= 0.3 s, >= 4x baseline):", "met" if ok else "MISSED",
              f"({load_average()} at the end)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

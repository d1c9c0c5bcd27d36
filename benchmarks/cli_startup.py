"""How long the CLI's light commands take, timed from outside as a user runs them.

    python benchmarks/cli_startup.py [PATH] [--runs 5] [--baseline-runs 1]

Each command is a fresh `python -m fer_core ...` process (interpreter start, imports, work,
exit), median of `--runs`: `--help`, `runs` (an empty runs folder), and `inspect PATH` with the
dataset cache warm (one untimed run first fills it). PATH defaults to FER2013 beside the repo
(unpacked once to a temporary plain CSV, as `load_csv.py` does). Beside them, the blog posts'
line-by-line loader (`load_csv.baseline`) as a process of its own, and the ratio. Goals
(issue 12): --help <= 1 s, runs <= 1.5 s, inspect (cached) <= 1.5 s and >= 6x the baseline.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT.parent / "shared/fer2013/fer2013.csv.gz"


def timed_process(cmd: list[str], env: dict[str, str], runs: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def plain_csv(path: Path, folder: Path) -> Path:
    if path.suffix != ".gz":
        return path
    out = folder / path.name[:-3]
    out.write_bytes(zlib.decompress(path.read_bytes(), wbits=31))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--baseline-runs", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        csv = plain_csv(args.path, folder)
        env = dict(os.environ, FER_CACHE_DIR=str(folder / "cache"),
                   FER_RUNS_DIR=str(folder / "runs"))
        cli = [sys.executable, "-m", "fer_core"]
        subprocess.run([*cli, "inspect", str(csv)], cwd=ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL)  # fills the cache
        rows = [
            ("--help", 1.0, timed_process([*cli, "--help"], env, args.runs)),
            ("runs", 1.5, timed_process([*cli, "runs"], env, args.runs)),
            (f"inspect {csv.name} (cached)", 1.5,
             timed_process([*cli, "inspect", str(csv)], env, args.runs)),
        ]
        code = ("import sys; sys.path.insert(0, 'benchmarks'); from load_csv import baseline; "
                f"baseline(__import__('pathlib').Path({str(csv)!r}))")
        base = timed_process([sys.executable, "-c", code], env, args.baseline_runs)
    print(f"{'command':<36} {'median s':>9} {'goal s':>7}  runs")
    for name, goal, (median, times) in rows:
        mark = "ok" if median <= goal else "OVER"
        print(f"{name:<36} {median:9.2f} {goal:7.1f}  {' '.join(f'{t:.2f}' for t in times)} {mark}")
    print(f"{'line-by-line loader (process)':<36} {base[0]:9.2f} {'':>7}  "
          f"{' '.join(f'{t:.2f}' for t in base[1])}")
    print(f"inspect (cached) is {base[0] / rows[2][2][0]:.1f}x faster than the line-by-line "
          f"loader (goal >= 6x)")


if __name__ == "__main__":
    main()

"""`python -m fer_core inspect [PATH] [--json] [--skip-bad]`: rows per split and class, and
the problems found (skipped rows, duplicates, low-contrast faces, empty classes).

PATH is a .csv/.csv.gz/.zip, an image folder, or the word `demo`; without it the configured
dataset is used ($FER2013_CSV, else data/fer2013.csv, else the demo set). Exit status 0 when
the data loads (problems are reported, not fatal), 2 when it cannot be loaded.
"""

from __future__ import annotations

import argparse
import json

from fer_core import data
from fer_core.data import resolve_source
from fer_core.labels import EMOTIONS
from fer_core.quality import quality_problems


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", default=None,
                        help="dataset: .csv/.csv.gz/.zip, image folder, or 'demo' "
                             "(default: $FER2013_CSV, data/fer2013.csv, else demo)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--skip-bad", action="store_true",
                        help="skip bad rows (and report how many) instead of failing")
    parser.add_argument("--no-cache", action="store_true", help="parse again, ignore the cache")


def inspect_report(source: str, *, skip_bad: bool = False, use_cache: bool = True) -> dict:
    """{"source", "synthetic", "rows", "skipped", "splits": {split: {emotion: n}}, "problems"};
    raises DataError when the data cannot be loaded."""
    ds = data.load_dataset(source, skip_bad=skip_bad, use_cache=use_cache)
    return {
        "source": ds.source,
        "synthetic": ds.synthetic,
        "rows": len(ds),
        "skipped": ds.skipped,
        "splits": ds.counts(),
        "problems": list(ds.problems) + quality_problems(ds),
    }


def run(args: argparse.Namespace) -> int:
    source = resolve_source(args.path)
    try:
        report = inspect_report(source, skip_bad=args.skip_bad, use_cache=not args.no_cache)
    except Exception as exc:  # any failure to load is the error line (or object), no traceback
        exc = data.as_data_error(source, exc)
        if args.json:
            print(json.dumps({"source": source, "rows": 0, "splits": {}, "problems": [str(exc)],
                              "error": str(exc)}))
        else:
            print(f"error: {exc}")
        return 2
    if args.json:
        print(json.dumps(report))
        return 0
    print(_table(report))
    return 0


def _table(report: dict) -> str:
    kind = "  (synthetic demo set, not real faces)" if report["synthetic"] else ""
    lines = [f"{report['source']}: {report['rows']:,} rows{kind}"]
    width = max(len(e) for e in EMOTIONS)
    splits = list(report["splits"])
    lines.append(" " * width + "".join(f"{s:>13}" for s in splits) + f"{'all':>10}")
    for emotion in EMOTIONS:
        row = [report["splits"][s][emotion] for s in splits]
        lines.append(f"{emotion:<{width}}" + "".join(f"{n:>13,}" for n in row) + f"{sum(row):>10,}")
    totals = [sum(report["splits"][s].values()) for s in splits]
    lines.append(f"{'total':<{width}}" + "".join(f"{n:>13,}" for n in totals)
                 + f"{sum(totals):>10,}")
    if report["skipped"]:
        lines.append(f"skipped {report['skipped']:,} bad rows")
    lines.append("problems:" if report["problems"] else "problems: none found")
    lines += [f"  - {p}" for p in report["problems"]]
    return "\n".join(lines)

"""`python -m fer_core runs`: list the runs folder (a table, or `--json`); rename, delete, stop."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from fer_core import runs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs-dir", type=Path, help="runs folder (default $FER_RUNS_DIR or ./runs)")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--rename", nargs=2, metavar=("RUN_ID", "NAME"), help="set a display name")
    action.add_argument("--delete", metavar="RUN_ID", help="delete a run folder")
    action.add_argument("--stop", metavar="RUN_ID", help="ask a running run to stop after its batch")


def run_summary(info: runs.RunInfo) -> dict[str, Any]:
    """The row the table and `--json` show for one run."""
    config = info.config
    return {
        "id": info.id, "name": info.name, "state": info.state,
        "model": config.model if config else None, "epoch": info.epoch, "epochs": info.epochs,
        "monitor": info.status.get("monitor"), "best": info.status.get("best_value"),
        "created": info.created, "error": info.error, "dir": str(info.dir),
        "best_model": str(info.best_model_path) if info.best_model_path else None,
    }


def run(args: argparse.Namespace) -> int:
    try:
        if args.rename:
            info = runs.rename_run(args.rename[0], args.rename[1], args.runs_dir)
            print(f"run {info.id} is now named {info.name!r}")
            return 0
        if args.delete:
            runs.delete_run(args.delete, args.runs_dir)
            print(f"deleted run {args.delete}")
            return 0
        if args.stop:
            runs.get_run(args.stop, args.runs_dir)
            runs.request_stop(args.stop, args.runs_dir)
            print(f"asked run {args.stop} to stop after its current batch")
            return 0
    except ValueError as exc:  # RunError, ConfigError (bad name)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rows = [run_summary(info) for info in runs.list_runs(args.runs_dir)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"no runs in {runs.runs_root(args.runs_dir)}")
        return 0
    table = [("ID", "NAME", "MODEL", "STATE", "EPOCH", "BEST", "CREATED")]
    for row in rows:
        best = f"{row['best']:.4f} {row['monitor'] or ''}".strip() if row["best"] is not None else "-"
        table.append((row["id"], row["name"] if row["name"] != row["id"] else "", row["model"] or "?",
                      row["state"], f"{row['epoch']}/{row['epochs']}", best,
                      time.strftime("%Y-%m-%d %H:%M", time.localtime(row["created"]))))
    widths = [max(len(str(r[i])) for r in table) for i in range(len(table[0]))]
    for r in table:
        print("  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip())
    for row in rows:
        if row["error"] and row["state"] in ("failed", "unreadable"):
            print(f"{row['id']}: {row['error']}")
    return 0

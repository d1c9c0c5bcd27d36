"""The Train page's runs table: one row per run folder, newest first, and the TensorBoard
command of a run. No Streamlit, no TensorFlow."""

from __future__ import annotations

import shlex
import time
from collections.abc import Iterable

import pandas as pd

from fer_core import runs
from fer_core.progress import best_val_accuracy, run_duration
from fer_core.text import format_seconds

RUNS_COLUMNS: tuple[str, ...] = (
    "name", "model", "status", "best val accuracy", "epochs", "duration", "created", "id",
)


def runs_frame(infos: Iterable[runs.RunInfo]) -> pd.DataFrame:
    """One row per run, newest first, for the runs table (accuracy in %, readable times)."""
    rows = []
    for info in infos:
        best = best_val_accuracy(runs.read_history(info.dir)) if info.readable else None
        duration = run_duration(info)
        rows.append({
            "name": info.name if info.readable else info.id,
            "model": info.config.model if info.config else "?",
            "status": info.state if info.readable else f"unreadable: {info.problem}",
            "best val accuracy": None if best is None else round(100 * best, 2),
            "epochs": f"{info.epoch}/{info.epochs}" if info.readable else "",
            "duration": format_seconds(duration) if duration is not None else "",
            "created": time.strftime("%Y-%m-%d %H:%M", time.localtime(info.created)),
            "id": info.id,
        })
    return pd.DataFrame(rows, columns=list(RUNS_COLUMNS))


def tensorboard_command(info: runs.RunInfo) -> str:
    return f"tensorboard --logdir {shlex.quote(str(info.dir / 'logs'))}"

"""The runs table: one row per run folder, unreadable ones included."""

from __future__ import annotations

import math
import os

from fer_core import run_table, runs
from fer_core.config import TrainConfig


def test_runs_frame_lists_every_run_with_its_best_accuracy(finished_run, fer_dirs):
    done, root = finished_run, fer_dirs.runs
    queued = runs.create_run(TrainConfig(name="waiting", epochs=5), root)
    os.makedirs(root / "junk")
    frame = run_table.runs_frame(runs.list_runs(root))
    assert list(frame.columns) == list(run_table.RUNS_COLUMNS) and len(frame) == 3
    row = frame[frame["id"] == done.id].iloc[0]
    assert row["best val accuracy"] == 45.0 and row["epochs"] == "3/3"
    assert row["duration"] == "2 min 05 s" and row["model"] == "fernet"
    assert row["status"] == "finished" and row["name"] == "done"
    waiting = frame[frame["id"] == queued.id].iloc[0]
    assert waiting["status"] == "queued" and math.isnan(waiting["best val accuracy"])
    assert frame[frame["id"] == "junk"].iloc[0]["status"].startswith("unreadable")


def test_tensorboard_command_quotes_the_folder(tmp_path):
    info = runs.create_run(TrainConfig(), tmp_path / "with space")
    assert run_table.tensorboard_command(info) == f"tensorboard --logdir '{info.dir / 'logs'}'"

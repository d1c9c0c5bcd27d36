"""A finished run folder with a three-epoch history, written without training (for the
runs table, progress and chart tests)."""

from __future__ import annotations

import time

from fer_core import runs
from fer_core.config import TrainConfig


def finished_run(root, name="done", rows=((0.7, 0.30), (0.6, 0.45), (0.65, 0.40))):
    info = runs.create_run(TrainConfig(name=name, model="fernet", epochs=len(rows)), root)
    history = [{"epoch": i + 1, "loss": 1.0 - i / 10, "accuracy": 0.3 + i / 10, "val_loss": vl,
                "val_accuracy": va, "lr": 1e-3, "seconds": 2.0}
               for i, (vl, va) in enumerate(rows)]
    runs.write_history(info.dir, history)
    runs.update_status(info.dir, state="finished", epoch=len(rows), elapsed=125.0,
                       started_at=time.time() - 130, finished_at=time.time())
    return runs.get_run(info.dir)

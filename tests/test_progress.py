"""Live progress of a run from its status and events, the events' tail read, durations."""

from __future__ import annotations

import os
import time

import pytest

from fer_core import progress, runs
from fer_core.config import TrainConfig
from fer_core.text import format_seconds


def test_live_progress_while_running_and_after(tmp_path):
    info = runs.create_run(TrainConfig(epochs=4), tmp_path)
    runs.update_status(info.dir, state="running", pid=os.getpid(),
                       pid_start=runs.process_start_token(os.getpid()),
                       started_at=time.time() - 30, epoch=1)
    t = time.time()
    events = [
        {"kind": "started", "time": t - 30, "steps_per_epoch": 10, "lr": 1e-3},
        {"kind": "epoch", "time": t - 12, "epoch": 1, "loss": 1.5, "accuracy": 0.4,
         "val_accuracy": 0.35, "lr": 1e-3, "elapsed": 18.0, "eta": 54.0},
        {"kind": "batch", "time": t - 2, "epoch": 2, "batch": 5, "steps": 10, "loss": 1.2,
         "accuracy": 0.5, "lr": 5e-4, "elapsed": 28.0, "eta": 40.0},
    ]
    p = progress.live_progress(runs.get_run(info.dir), events, now=t)
    assert p.running and (p.epoch, p.epochs, p.batch, p.steps) == (2, 4, 5, 10)
    assert p.epoch_fraction == 0.5 and p.run_fraction == pytest.approx(1.5 / 4)
    assert p.elapsed == pytest.approx(30.0) and p.eta == pytest.approx(38.0)
    assert p.lr == 5e-4 and p.loss == 1.2 and p.val_accuracy == 0.35
    caption = progress.progress_caption(p)
    assert "ETA 38 s" in caption and "learning rate 0.0005" in caption
    runs.update_status(info.dir, state="failed", error="boom", elapsed=31.0, epoch=1)
    p = progress.live_progress(runs.get_run(info.dir), events, now=t)
    assert not p.running and p.error == "boom" and p.run_fraction == 0.25 and p.eta == 0.0



@pytest.mark.parametrize("seconds,text", [(None, "—"), (4.25, "4.2 s"), (42, "42 s"),
                                          (185, "3 min 05 s"), (7620, "2 h 07 min")])
def test_format_seconds(seconds, text):
    assert format_seconds(seconds) == text



def test_the_panel_reads_only_the_tail_of_the_events(tmp_path):
    info = runs.create_run(TrainConfig(epochs=2), tmp_path)
    for i in range(200):
        runs.append_event(info.dir, "batch", epoch=1, batch=i + 1, steps=200, loss=1.0)
    with open(info.dir / "events.jsonl", "a") as fh:
        fh.write('{"kind": "batch", "epo')  # the trainer is mid-write
    events = runs.read_events(info, max_bytes=2000)
    assert 0 < len(events) < 200 and events[-1]["batch"] == 200
    assert [e["batch"] for e in events] == list(range(201 - len(events), 201))
    assert len(runs.read_events(info, max_bytes=progress.EVENTS_TAIL_BYTES)) == 200


def test_job_status_counts_the_running_batch(tmp_path):
    from fer_core import jobs

    info = runs.create_run(TrainConfig(epochs=4), tmp_path)
    runs.update_status(info.dir, state="running", pid=os.getpid(),
                       pid_start=runs.process_start_token(os.getpid()), epoch=1)
    runs.append_event(info.dir, "batch", epoch=2, epochs=4, batch=5, steps=10, loss=1.0,
                      eta=40.0, elapsed=20.0)
    status = jobs.job_status(info.id, tmp_path)
    assert status.alive and status.progress == pytest.approx(1.5 / 4)
    assert status.last_event["kind"] == "batch" and 0 < status.eta <= 40.0

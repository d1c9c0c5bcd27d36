"""Background jobs as real OS processes: one job per runs folder even when two starts race,
a graceful stop keeps the best weights, a SIGKILL frees the lock and resume continues."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from fer_core import jobs, runs
from fer_core.config import ConfigError, TrainConfig

TINY = TrainConfig(model="mini_xception", model_kwargs={"width": 4}, data="demo", batch_size=64,
                   augment=None, early_stop_patience=0, schedule="none")
TIMEOUT = 240.0  # a job imports TensorFlow and traces the model: slow on a busy 2-core box


def wait_for(predicate, what: str, timeout: float = TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def epochs_done(run_id: str, root: Path) -> int:
    events = runs.read_events(run_id, root, kinds=("epoch",))
    return events[-1]["epoch"] if events else 0


def test_bad_config_starts_nothing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="model"):
        jobs.start_job(TINY.replace(model="nope"), runs_dir=tmp_path)
    assert jobs.active_job(tmp_path) is None and runs.list_runs(tmp_path) == []


def test_racing_starts_give_one_job_which_stops_gracefully(tmp_path: Path, race) -> None:
    results = race(2, lambda: jobs.start_job(TINY.replace(epochs=50), runs_dir=tmp_path))
    started = [r for r in results if isinstance(r, runs.RunInfo)]
    busy = [r for r in results if isinstance(r, runs.JobBusy)]
    assert len(started) == 1 and len(busy) == 1, results
    run = started[0]
    assert len(runs.list_runs(tmp_path)) == 1  # the loser made no folder
    assert run.state == "queued" and run.status["pid"]
    job = jobs.active_job(tmp_path)
    assert job is not None and job.run_id == run.id and job.pid == run.status["pid"]
    with pytest.raises(runs.JobBusy, match=run.id):
        jobs.start_job(TINY, runs_dir=tmp_path)

    wait_for(lambda: epochs_done(run.id, tmp_path) >= 1, "the first epoch")
    status = jobs.job_status(run.id, tmp_path)
    assert status.alive and status.run.state == "running" and 0 < status.progress < 1
    stopped = jobs.stop_job(run.id, runs_dir=tmp_path, timeout=120)
    assert stopped.state == "stopped", stopped.error
    assert stopped.error is None  # graceful, not killed
    assert stopped.best_model_path is not None and stopped.epoch >= 1
    assert runs.read_events(run.id, tmp_path)[-1]["kind"] == "stopped"
    wait_for(lambda: jobs.active_job(tmp_path) is None, "the lock to be free", 30)
    assert not jobs.job_status(run.id, tmp_path).alive


def test_sigkill_frees_the_lock_and_resume_continues(tmp_path: Path) -> None:
    run = jobs.start_job(TINY.replace(epochs=4), runs_dir=tmp_path)
    wait_for(lambda: epochs_done(run.id, tmp_path) >= 1, "the first epoch")
    os.killpg(run.status["pid"], signal.SIGKILL)
    wait_for(lambda: runs.get_run(run.id, tmp_path).state == "failed", "the kill to show")
    killed = runs.get_run(run.id, tmp_path)
    assert killed.status.get("interrupted") and "resumed" in killed.error
    # The lock dies with the job (a multi-threaded process's last thread may outlive the
    # zombie leader by a few milliseconds, hence the wait).
    wait_for(lambda: jobs.active_job(tmp_path) is None, "the lock to be free", 30)
    done_before = runs.read_json(killed.dir / "weights" / "last.json")["epoch"]
    assert done_before >= 1
    # The weights saved so far survive the kill whole (each save is a rename of a full file).
    from fer_core.models import load_model

    assert load_model(killed.best_model_path).output_shape == (None, 7)
    assert load_model(killed.last_model_path, compile=True).optimizer is not None

    resumed = jobs.resume_job(run.id, runs_dir=tmp_path)
    assert jobs.active_job(tmp_path).run_id == run.id
    wait_for(lambda: not runs.get_run(run.id, tmp_path).active, "the resumed job to end")
    final = runs.get_run(run.id, tmp_path)
    assert final.state == "finished", final.error + "\n" + jobs.job_status(run.id, tmp_path).log_tail
    assert [r["epoch"] for r in runs.read_history(final)] == [1, 2, 3, 4]
    assert runs.read_events(final, kinds=("resumed",))[0]["epoch"] == done_before
    assert resumed.id == run.id
    wait_for(lambda: jobs.active_job(tmp_path) is None, "the job process to exit", 60)
    with pytest.raises(runs.RunError, match="already finished"):
        jobs.resume_job(run.id, runs_dir=tmp_path)

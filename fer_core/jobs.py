"""Background training jobs: start, stop, poll. A job is a separate OS process.

`start_job(config)` makes a queued run folder and launches `python -m fer_core train
--run-dir <run>` in its own session (detached: the Streamlit server stays responsive, a page
reload loses nothing, and the job outlives a page). Its output goes to `<run>/job.log`;
its progress to the run folder (see `fer_core.runs`), which the UI polls.

One job at a time per runs folder: the starter takes the runs folder's lock
(`runs.acquire_lock`, an flock) and hands the descriptor to the job process, which holds it
until it exits in any way, so the lock can never be left stuck, and two browser sessions
pressing Start together get one job and one `JobBusy`.

`stop_job` asks for a graceful stop (the trainer stops after its current batch, keeping its
best weights), then kills the process group if it has not ended within the timeout.
This module does not import TensorFlow.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from typing import Any

from fer_core import runs
from fer_core.config import TrainConfig
from fer_core.files import tail
from fer_core.processes import reap, spawn_python
from fer_core.progress import EVENTS_TAIL_BYTES, live_progress
from fer_core.runs import JobBusy, RunError, RunInfo

__all__ = ["JobBusy", "JobInfo", "JobStatus", "active_job", "job_status", "resume_job",
           "run_to_show", "start_job", "stop_job"]


@dataclass(frozen=True)
class JobInfo:
    """The job holding a runs folder's lock."""

    run_id: str | None
    pid: int | None
    since: float | None


@dataclass(frozen=True)
class JobStatus:
    """What the UI shows of a job: the run, whether its process lives, and its progress."""

    run: RunInfo
    alive: bool
    progress: float  # 0..1 of all epochs (batches included), as `progress.live_progress`
    eta: float | None  # seconds left while it runs, from the latest event
    last_event: dict[str, Any] | None  # latest batch/epoch/started/finished/... event
    log_tail: str  # last lines of job.log (tracebacks of crashed jobs land there)


def start_job(config: TrainConfig, *, runs_dir: str | os.PathLike | None = None,
              threads: int | None = None) -> RunInfo:
    """Create a run for `config` and train it in a background process; returns the queued run.

    Raises ConfigError for a bad config (no folder is made) and JobBusy when a job runs.
    """
    # fer_core.train imports TensorFlow: only when a job is started.
    from fer_core.train import check_config

    check_config(config)
    root = runs.runs_root(runs_dir)
    lock = runs.acquire_lock(root)
    try:
        run = runs.create_run(config, root)
    except BaseException:
        lock.release()
        raise
    return _launch(lock, run, ["--run-dir", str(run.dir)], threads)


def resume_job(run: str | os.PathLike | RunInfo, *, runs_dir: str | os.PathLike | None = None,
               epochs: int | None = None, threads: int | None = None) -> RunInfo:
    """Continue a stopped, failed or killed run in a background process (see train.resume)."""
    info = runs.get_run(run, runs_dir)
    if info.config is None:
        raise RunError(f"run {info.id!r} cannot be resumed: {info.problem}")
    if info.active:
        raise RunError(f"run {info.id!r} is still {info.state}")
    if epochs is not None:
        info.config.replace(epochs=epochs)  # validate before taking the lock
    runs.check_resume(info, epochs or info.epochs)
    lock = runs.acquire_lock(info.dir.parent)
    try:
        info = runs.get_run(info.dir)  # re-read under the lock: another session may have won
        if info.active:
            raise RunError(f"run {info.id!r} is already {info.state}")
        runs.update_status(info.dir, state="queued", error=None, pid=None, pid_start=None,
                           queued_at=time.time())
    except BaseException:
        lock.release()
        raise
    args = ["--resume", info.id, "--runs-dir", str(info.dir.parent)]
    if epochs is not None:
        args += ["--epochs", str(epochs)]
    return _launch(lock, info, args, threads)


def _launch(lock: runs.RunsLock, run: RunInfo, args: list[str], threads: int | None) -> RunInfo:
    command = ["-m", "fer_core", "train", *args]
    if threads:
        command += ["--threads", str(int(threads))]
    try:
        proc = spawn_python(command, log=run.dir / "job.log", lock_fd=lock.fd)
    except BaseException as exc:
        lock.release()
        runs.update_status(run.dir, state="failed", error=f"could not start the job: {exc}",
                           finished_at=time.time())
        raise
    lock.write_holder(proc.pid, run.id)
    lock.close()  # the job's inherited descriptor keeps the lock until it exits
    # Only pid fields are merged (under the status lock), so a job that already reported
    # "running" keeps its state.
    runs.update_status(run.dir, pid=proc.pid, pid_start=runs.process_start_token(proc.pid))
    return runs.get_run(run.dir)


def active_job(runs_dir: str | os.PathLike | None = None) -> JobInfo | None:
    """The job holding the runs folder's lock (background or a foreground CLI), or None."""
    reap()
    holder = runs.lock_holder(runs_dir)
    if holder is None:
        return None
    return JobInfo(holder.get("run_id"), holder.get("pid"), holder.get("since"))


def stop_job(run: str | os.PathLike | RunInfo | None = None, *,
             runs_dir: str | os.PathLike | None = None, timeout: float = 30.0,
             wait: bool = True) -> RunInfo:
    """Stop a job gracefully (after its current batch), hard-killing it after `timeout` s.

    `run=None` stops the active job. With `wait=False` only the stop is requested; call again
    (or poll `job_status`) to follow it.
    """
    if run is None:
        job = active_job(runs_dir)
        if job is None or not job.run_id:
            raise RunError(f"no training job is running in {runs.runs_root(runs_dir)}")
        run = job.run_id
    info = runs.get_run(run, runs_dir)
    if not info.active:  # already over: leave no STOP file behind
        return info
    runs.request_stop(info.dir)
    if not wait:
        return info
    pid, token = info.status.get("pid"), info.status.get("pid_start")
    deadline = time.monotonic() + timeout
    while runs.pid_alive(pid, token) and time.monotonic() < deadline:
        time.sleep(0.2)
        reap()
    if runs.pid_alive(pid, token):
        try:
            os.killpg(pid, signal.SIGKILL)  # the job leads its own session/process group
        except (ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
        for _ in range(50):
            reap()
            if not runs.pid_alive(pid, token):
                break
            time.sleep(0.1)
        runs.update_status(info.dir, state="stopped", finished_at=time.time(),
                           error=f"did not stop within {timeout:g} s and was killed; "
                                 f"its checkpoints are kept and it can be resumed")
        runs.append_event(info.dir, "stopped", error="killed after the stop timeout")
        runs.clear_stop(info.dir)
    return runs.get_run(info.dir)


def job_status(run: str | os.PathLike | RunInfo, runs_dir: str | os.PathLike | None = None) -> JobStatus:
    """The run, whether its process lives, its progress and ETA, and the end of job.log."""
    reap()
    info = runs.get_run(run, runs_dir)
    alive = runs.pid_alive(info.status.get("pid"), info.status.get("pid_start"))
    events = runs.read_events(info.dir, max_bytes=EVENTS_TAIL_BYTES)
    progress = live_progress(info, events)
    return JobStatus(info, alive, progress.run_fraction, progress.eta if progress.running else None,
                     events[-1] if events else None,
                     "\n".join(tail(info.dir / "job.log", lines=20, max_bytes=16384)))


def run_to_show(job: JobInfo | None, all_runs: list[RunInfo]) -> RunInfo | None:
    """The run a progress panel shows: the job's (by the lock's run id, else the active
    run), else the newest; None when there are no runs."""
    if job is not None:
        ours = next((r for r in all_runs if r.id == job.run_id), None)
        ours = ours or next((r for r in all_runs if r.active), None)
        if ours is not None:
            return ours
    return all_runs[0] if all_runs else None


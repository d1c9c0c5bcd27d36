"""Background sweeps, as the Train page starts them: a sweep is a job like a training run.

`start_sweep(plan)` takes the runs folder's training lock (one job at a time: a sweep and a
training run never share the cores by accident), writes the sweep folder and launches
`python -m fer_core sweep --plan <folder>` detached, holding the lock for as long as it or
any of its workers lives; its output goes to `<folder>/job.log`. `stop_sweep` asks every
worker to stop after its current batch; `sweep_status` and `list_sweeps` read the folders
(the study itself is read through `fer_core.sweep`). No TensorFlow.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fer_core import runs, sweep
from fer_core.files import tail
from fer_core.processes import pid_record_alive, reap, spawn_python, write_pid_record

PID_FILE = "pid"
LOG_FILE = "job.log"


@dataclass(frozen=True)
class SweepStatus:
    """What the page shows of one sweep folder."""

    folder: Path
    plan: sweep.SweepPlan | None
    problem: str | None  # why the plan cannot be read
    alive: bool  # its process lives
    stopping: bool  # a stop was requested
    summary: dict[str, Any] | None  # written when it ended
    log_tail: str

    @property
    def study(self) -> str:
        return self.plan.study if self.plan else self.folder.name


def start_sweep(plan: sweep.SweepPlan, *, workers: int = 1) -> Path:
    """Launch `plan` in the background; the sweep folder. JobBusy while a job runs."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise sweep.SweepError(f"workers must be a whole number >= 1, got {workers!r}")
    lock = runs.acquire_lock(plan.runs_dir)
    try:
        folder = sweep.write_plan(plan)
        proc = spawn_python(["-m", "fer_core", "sweep", "--plan", str(folder),
                             "--workers", str(workers)],
                            log=folder / LOG_FILE, lock_fd=lock.fd)
    except BaseException:
        lock.release()
        raise
    lock.write_holder(proc.pid, None)
    lock.close()  # the sweep's inherited descriptor keeps the lock until it ends
    write_pid(folder, proc.pid)
    return folder


def stop_sweep(folder: str | os.PathLike) -> None:
    sweep.request_stop(folder)


def sweep_alive(folder: str | os.PathLike) -> bool:
    reap()
    return bool(pid_record_alive(Path(folder) / PID_FILE))


def sweep_status(folder: str | os.PathLike) -> SweepStatus:
    folder = Path(folder)
    try:
        plan, problem = sweep.read_plan(folder), None
    except sweep.SweepError as exc:
        plan, problem = None, str(exc)
    return SweepStatus(folder, plan, problem, sweep_alive(folder), sweep.stop_requested(folder),
                       runs.read_json_dict(folder / sweep.SUMMARY_FILE),
                       "\n".join(tail(folder / LOG_FILE, lines=20, max_bytes=16384)))


def list_sweeps(runs_dir: str | os.PathLike | None = None) -> list[Path]:
    """Sweep folders of this runs folder, newest first."""
    root = runs.runs_root(runs_dir) / sweep.SWEEPS_DIR
    try:
        folders = [p for p in root.iterdir() if (p / sweep.PLAN_FILE).is_file()]
    except OSError:
        return []
    return sorted(folders, key=lambda p: (p / sweep.PLAN_FILE).stat().st_mtime, reverse=True)


def active_sweep(runs_dir: str | os.PathLike | None = None) -> Path | None:
    """The sweep folder whose process runs now, if any."""
    return next((f for f in list_sweeps(runs_dir) if sweep_alive(f)), None)


def write_pid(folder: Path, pid: int) -> None:
    """Record the sweep's process (the page tells a running sweep by it)."""
    write_pid_record(folder / PID_FILE, pid)

"""Run folders on disk: create, list, read status/events/history, rename, delete, lock.

One training run is one folder `<root>/<id>/` (root: `runs_dir` argument > `$FER_RUNS_DIR`
> `./runs`):

    config.json        the TrainConfig (enough to rebuild the model)
    status.json        {"state": queued|running|finished|stopped|failed, "error", "pid", ...}
    events.jsonl       progress events, one JSON object a line ("kind": started|batch|epoch|...)
    history.csv        one row per finished epoch
    weights/best.keras best epoch so far; weights/last.keras latest epoch with optimizer state
    weights/last.json  {"epoch": n} for last.keras (n epochs completed)
    logs/              TensorBoard
    eval/              evaluation results (written by fer_core.evaluate)
    job.log            stdout/stderr of a background job
    STOP               present when a graceful stop was requested

`<root>/sweeps/` holds the sweeps' folders (`fer_core.sweep`) and is never listed as a run.

Metadata is written atomically (temp file + os.replace) so a reader never sees half a file,
and readers never crash on a corrupt or foreign folder: it is listed as "unreadable".
The trainer is the only writer of a running run; the UI and CLI read, and request a stop
by creating the STOP file. This module imports neither TensorFlow nor Keras.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import math
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fer_core.config import ConfigError, TrainConfig
from fer_core.files import atomic_write, tail

STATES: tuple[str, ...] = ("queued", "running", "finished", "stopped", "failed")
ACTIVE_STATES: tuple[str, ...] = ("queued", "running")
UNREADABLE = "unreadable"
LOCK_NAME = ".train.lock"
STOP_NAME = "STOP"
SWEEPS_DIR = "sweeps"  # <root>/sweeps/<study>/: the sweeps' own folders (fer_core.sweep), no run
HISTORY_FIELDS: tuple[str, ...] = (
    "epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds",
)
# Types of the status.json fields readers rely on (None is allowed for each): a foreign or
# hand-edited file with other types is listed as unreadable instead of crashing the list.
_STATUS_INTS = ("pid", "epoch", "epochs", "best_epoch")
_STATUS_NUMBERS = ("created_at", "updated_at", "queued_at", "started_at", "finished_at",
                   "best_value", "elapsed", "eta")
_STATUS_TEXTS = ("name", "error", "monitor", "pid_start")
_MAX_PID = 2**22  # Linux's pid_max ceiling
FILE_MODE = 0o600  # metadata files are the owner's only, as the run folder (mkdtemp) is



class RunError(ValueError):
    """A run cannot be found, read or changed; the message says which and why."""


class JobBusy(RuntimeError):
    """Another training job holds the runs folder's lock."""

    def __init__(self, run_id: str | None, pid: int | None, root: Path) -> None:
        who = f"run {run_id!r} (pid {pid})" if run_id else f"pid {pid}" if pid else "another job"
        super().__init__(
            f"a training job is already running in {root}: {who}; stop it or wait for it to finish"
        )
        self.run_id = run_id
        self.pid = pid


@dataclass(frozen=True)
class RunInfo:
    """What is known about one run folder; `state` already accounts for dead processes."""

    id: str
    dir: Path
    config: TrainConfig | None  # None when config.json is missing or invalid
    status: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None  # why the folder is unreadable, if it is

    @property
    def state(self) -> str:
        return UNREADABLE if self.problem else str(self.status.get("state", UNREADABLE))

    @property
    def readable(self) -> bool:
        return self.problem is None

    @property
    def name(self) -> str:
        return str(self.status.get("name") or (self.config.name if self.config else "") or self.id)

    @property
    def error(self) -> str | None:
        return self.problem or self.status.get("error")

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def epoch(self) -> int:
        """Epochs completed so far."""
        return int(self.status.get("epoch") or 0)

    @property
    def epochs(self) -> int:
        return int(self.status.get("epochs") or (self.config.epochs if self.config else 0))

    @property
    def best_model_path(self) -> Path | None:
        path = self.dir / "weights" / "best.keras"
        return path if path.is_file() else None

    @property
    def last_model_path(self) -> Path | None:
        path = self.dir / "weights" / "last.keras"
        return path if path.is_file() else None

    @property
    def created(self) -> float:
        return float(self.status.get("created_at") or _mtime(self.dir))


# ---------------------------------------------------------------- locations


def runs_root(runs_dir: str | os.PathLike | None = None) -> Path:
    """The runs folder: `runs_dir` > `$FER_RUNS_DIR` > `./runs` (not created here)."""
    if runs_dir:
        return Path(runs_dir).expanduser().resolve()
    env = os.environ.get("FER_RUNS_DIR", "").strip()
    return Path(env).expanduser().resolve() if env else Path.cwd().resolve() / "runs"


def run_path(run: str | os.PathLike | RunInfo, runs_dir: str | os.PathLike | None = None) -> Path:
    """Folder of a run given its id (a plain name), a folder path or a RunInfo."""
    if isinstance(run, RunInfo):
        return run.dir
    if isinstance(run, os.PathLike) or os.sep in str(run):
        return Path(run).expanduser().resolve()
    run_id = str(run).strip()
    if not run_id or run_id.startswith(".") or "/" in run_id:
        raise RunError(f"invalid run id {run_id!r}")
    return runs_root(runs_dir) / run_id


# ---------------------------------------------------------------- atomic files


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically: a reader sees the old file or the new one, never half of one."""
    atomic_write(path, json.dumps(data, indent=2, default=_json_default) + "\n", mode=FILE_MODE)


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def read_json_dict(path: Path) -> dict[str, Any] | None:
    """`read_json` of a JSON object, None for a missing, half-written or foreign file (the
    small records of background processes: pid, progress, summary)."""
    try:
        data = read_json(path)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


# ---------------------------------------------------------------- processes


def process_start_token(pid: int) -> str | None:
    """The kernel's start time of `pid` (Linux), to tell a live process from a reused pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def pid_alive(pid: int | None, start_token: str | None = None) -> bool:
    """Whether `pid` runs (zombies count as dead; a reused pid with another start time too)."""
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        fields_after_name = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return True  # no /proc (not Linux): os.kill said it exists
    if fields_after_name[0] in ("Z", "X"):
        return False
    return start_token is None or fields_after_name[19] == start_token


# ---------------------------------------------------------------- create, read, list


def new_run_id(config: TrainConfig) -> str:
    """`YYYYmmdd-HHMMSS-<model>[-<name>]`: sortable by time, readable, safe as a folder name."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    parts = [stamp, config.model] + ([config.name] if config.name else [])
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", "-".join(parts)).strip("-.")
    return slug[:80]


def create_run(config: TrainConfig, runs_dir: str | os.PathLike | None = None) -> RunInfo:
    """Make a new run folder holding config.json and a "queued" status, all or nothing.

    The folder is assembled under a hidden temporary name and renamed into place, so a
    failure never leaves a half-made run behind.
    """
    root = runs_root(runs_dir)
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".new-", dir=root))
    except OSError as exc:
        raise _unwritable(root, exc) from exc
    try:
        for sub in ("weights", "logs", "eval"):
            (tmp / sub).mkdir()
        write_json(tmp / "config.json", config.to_dict())
        now = time.time()
        write_json(tmp / "status.json", {
            "state": "queued", "error": None, "pid": None, "pid_start": None,
            "name": config.name, "created_at": now, "updated_at": now, "queued_at": now,
            "started_at": None,
            "finished_at": None, "epoch": 0, "epochs": config.epochs,
        })
        base = new_run_id(config)
        for attempt in range(1000):
            run_id = base if attempt == 0 else f"{base}-{attempt + 1}"
            try:
                os.rename(tmp, root / run_id)  # fails if the target exists and is not empty
            except OSError:
                if (root / run_id).exists():
                    continue
                raise
            return get_run(run_id, root)
        raise RunError(f"could not find a free run id for {base!r} in {root}")
    except OSError as exc:  # disk full, quota, permissions changed under us
        shutil.rmtree(tmp, ignore_errors=True)
        raise _unwritable(root, exc) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _unwritable(root: Path, exc: OSError) -> RunError:
    return RunError(f"cannot write to the runs folder {root}: {exc.strerror or exc}"
                    + (f" ({exc.filename})" if exc.filename else ""))


def get_run(run: str | os.PathLike | RunInfo, runs_dir: str | os.PathLike | None = None) -> RunInfo:
    """Read one run; raises RunError when the folder does not exist, else never fails."""
    path = run_path(run, runs_dir)
    if not path.is_dir():
        raise RunError(f"no run {path.name!r} in {path.parent}")
    return _read_run(path)


def list_runs(runs_dir: str | os.PathLike | None = None) -> list[RunInfo]:
    """Every run folder, newest first; a corrupt or foreign folder is listed as unreadable."""
    root = runs_root(runs_dir)
    if not root.is_dir():
        return []
    runs = [_read_run(p) for p in root.iterdir()
            if p.is_dir() and not p.name.startswith(".") and p.name != SWEEPS_DIR]
    return sorted(runs, key=lambda r: (r.created, r.id), reverse=True)


def _read_run(path: Path) -> RunInfo:
    try:
        status = read_json(path / "status.json")
        if not isinstance(status, dict) or status.get("state") not in STATES:
            raise ValueError("status.json has no valid 'state'")
        _check_status_types(status)
    except (OSError, ValueError) as exc:
        return RunInfo(path.name, path, None, {}, f"not a readable run folder: {_brief(exc)}")
    try:
        config = TrainConfig.from_dict(read_json(path / "config.json"))
    except (OSError, ValueError, ConfigError) as exc:
        return RunInfo(path.name, path, None, status, f"config.json: {_brief(exc)}")
    status = dict(status)
    if status["state"] in ACTIVE_STATES and status.get("pid") and not pid_alive(
        status.get("pid"), status.get("pid_start")
    ):
        status["state"] = "failed"
        status["interrupted"] = True
        status["error"] = (
            f"interrupted: the training process (pid {status['pid']}) ended without reporting "
            f"(killed or crashed) after {status.get('epoch', 0)} epoch(s); it can be resumed"
        )
    return RunInfo(path.name, path, config, status)


def _check_status_types(status: dict[str, Any]) -> None:
    """ValueError naming the first status.json field whose value has the wrong type."""
    for key in _STATUS_INTS + _STATUS_NUMBERS + _STATUS_TEXTS:
        value = status.get(key)
        if value is None:
            continue
        if key in _STATUS_TEXTS:
            ok = isinstance(value, str)
        elif key in _STATUS_INTS:
            ok = type(value) is int and 0 <= value < (_MAX_PID if key == "pid" else 2**31)
        else:
            ok = type(value) in (int, float)
        if not ok:
            kind = ("text" if key in _STATUS_TEXTS else "a whole number >= 0"
                    if key in _STATUS_INTS else "a number")
            raise ValueError(f"status.json: {key!r} is {str(value)[:40]!r}, expected {kind}")


def _brief(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return f"{Path(exc.filename or '?').name} missing"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


# ---------------------------------------------------------------- status, events, history


def read_status(run: str | os.PathLike | RunInfo, runs_dir: str | os.PathLike | None = None) -> dict:
    return get_run(run, runs_dir).status


def update_status(run_dir: Path, **changes: Any) -> dict[str, Any]:
    """Merge `changes` into status.json (atomically) and return the new status."""
    path = Path(run_dir) / "status.json"
    # Read-modify-write under a lock: the trainer, a job starter and a rename can overlap.
    fd = os.open(Path(run_dir) / ".status.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            status = read_json(path)
            if not isinstance(status, dict):
                status = {}
        except (OSError, ValueError):
            status = {}
        status.update(changes)
        status["updated_at"] = time.time()
        write_json(path, status)
        return status
    finally:
        os.close(fd)


def append_event(run_dir: Path, kind: str, **data: Any) -> dict[str, Any]:
    """Append one event line to events.jsonl (a single write, so lines never interleave)."""
    event = {"kind": kind, "time": round(time.time(), 3), **data}
    line = json.dumps(event, default=_json_default, allow_nan=True) + "\n"
    with open(Path(run_dir) / "events.jsonl", "a", encoding="utf-8") as fh:
        fh.write(line)
    return event


def read_events(
    run: str | os.PathLike | RunInfo,
    runs_dir: str | os.PathLike | None = None,
    *,
    kinds: tuple[str, ...] | None = None,
    start: int = 0,
    max_bytes: int | None = None,
) -> list[dict[str, Any]]:
    """Events of a run in order (from line `start`), optionally only some kinds.

    `max_bytes` reads only about that much of the end of events.jsonl (its first, partial
    line dropped): a run of hours logs megabytes of batch events, and the live panel reads
    every second. A torn last line (the trainer is mid-write) or a garbled one is skipped.
    """
    whole = 1 << 62  # tail() of "everything"
    path = run_path(run, runs_dir) / "events.jsonl"
    lines = tail(path, max_bytes=whole if max_bytes is None else max_bytes)[start:]
    events = []
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and (kinds is None or event.get("kind") in kinds):
            events.append(event)
    return events


def write_history(run_dir: Path, rows: list[dict[str, Any]]) -> None:
    """Rewrite history.csv (atomically) with one row per epoch."""
    extra = sorted({k for row in rows for k in row} - set(HISTORY_FIELDS))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=[*HISTORY_FIELDS, *extra], extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(Path(run_dir) / "history.csv", buf.getvalue(), mode=FILE_MODE)


def read_history(
    run: str | os.PathLike | RunInfo, runs_dir: str | os.PathLike | None = None
) -> list[dict[str, float]]:
    """history.csv as a list of {column: number} rows (empty when there is none yet)."""
    path = run_path(run, runs_dir) / "history.csv"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    rows = []
    try:
        for raw in csv.DictReader(io.StringIO(text.replace("\0", ""))):
            row = _history_row(raw)
            if row is not None:
                rows.append(row)
    except csv.Error:  # a damaged file (a huge field, a torn quote): keep the rows before it
        pass
    return rows


def _history_row(raw: dict[Any, Any]) -> dict[str, float] | None:
    """One history.csv row as numbers; None when it has no usable epoch number. Fields the
    header does not name (an extra value on the row) and values that are not numbers are
    left out: a hand-edited or damaged file must not crash the Train page."""
    row: dict[str, float] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not isinstance(value, (str, type(None))):
            continue
        try:
            row[key] = float(value) if value not in (None, "") else float("nan")
        except ValueError:
            continue
    epoch = row.get("epoch")
    if epoch is None or not math.isfinite(epoch) or epoch < 1 or epoch != int(epoch):
        return None
    row["epoch"] = int(epoch)
    return row


def resume_point(run: str | os.PathLike | RunInfo,
                 runs_dir: str | os.PathLike | None = None) -> tuple[int, list[dict[str, float]]]:
    """(epochs completed, their history rows) that a resume continues from.

    0 without weights/last.keras. Else weights/last.json's epoch when it is a whole number
    that history.csv confirms (a row for it, and for every epoch before it), otherwise the
    history's last such epoch: a missing, empty or hand-edited last.json cannot make a run
    claim epochs it never trained.
    """
    path = run_path(run, runs_dir)
    if not (path / "weights" / "last.keras").is_file():
        return 0, []
    by_epoch = {row["epoch"]: row for row in read_history(path)}
    done = 0
    while done + 1 in by_epoch:
        done += 1
    try:
        claimed = read_json(path / "weights" / "last.json").get("epoch")
    except (OSError, ValueError, AttributeError):
        claimed = None
    if type(claimed) is int and 1 <= claimed <= done:
        done = claimed
    return done, [by_epoch[e] for e in range(1, done + 1)]


RESUMABLE_STATES: tuple[str, ...] = ("stopped", "failed", "finished")


def can_resume(info: RunInfo) -> bool:
    """Whether a run can be continued: readable and over (stopped, failed, killed, or
    finished: a finished run continues with more epochs)."""
    return info.config is not None and not info.active and info.state in RESUMABLE_STATES


def check_resume(info: RunInfo, epochs: int) -> None:
    """RunError when resuming `info` to `epochs` in total cannot work: fewer than it has
    completed (it would rewrite the config and report e.g. "finished 2/1"), or a finished
    run given no more epochs."""
    done = resume_point(info.dir)[0]
    if epochs < done:
        raise RunError(f"run {info.id!r} has already completed {done} epochs; it cannot be "
                       f"resumed to {epochs} in total (give at least {done})")
    if info.state == "finished" and epochs <= info.epoch:
        raise RunError(f"run {info.id!r} already finished its {info.epoch} epochs; "
                       f"give more epochs to continue it")


# ---------------------------------------------------------------- change


def rename_run(
    run: str | os.PathLike | RunInfo, name: str, runs_dir: str | os.PathLike | None = None
) -> RunInfo:
    """Give a run a new display name (config.json and status.json); its id stays."""
    info = get_run(run, runs_dir)
    if not info.readable or info.config is None:
        raise RunError(f"run {info.id!r} is unreadable ({info.problem}); it cannot be renamed")
    config = info.config.replace(name=name)  # validates the name
    write_json(info.dir / "config.json", config.to_dict())
    update_status(info.dir, name=config.name)
    return get_run(info.dir)


def delete_run(run: str | os.PathLike | RunInfo, runs_dir: str | os.PathLike | None = None) -> None:
    """Remove a run folder; refuses while its training process is alive, and refuses any
    folder that is not directly inside the runs folder (a typed path must not delete
    something else)."""
    info = get_run(run, runs_dir)
    root = runs_root(runs_dir)
    if info.dir.parent != root or info.dir.is_symlink():
        raise RunError(f"{info.dir} is not a run folder inside {root}; nothing was deleted")
    if info.active and pid_alive(info.status.get("pid"), info.status.get("pid_start")):
        raise RunError(f"run {info.id!r} is {info.state}; stop it before deleting it")
    shutil.rmtree(info.dir)


def request_stop(run: str | os.PathLike | RunInfo, runs_dir: str | os.PathLike | None = None) -> Path:
    """Ask the trainer of a run to stop after its current batch (creates the STOP file).

    Only in an existing, readable run folder: a mistyped path writes nothing elsewhere."""
    info = get_run(run, runs_dir)
    if not info.readable:
        raise RunError(f"{info.dir} is not a readable run folder ({info.problem}); "
                       "no stop was requested")
    path = info.dir / STOP_NAME
    atomic_write(path, f"{time.time()}\n", mode=FILE_MODE)
    return path


def stop_requested(run_dir: Path) -> bool:
    return (Path(run_dir) / STOP_NAME).exists()


def clear_stop(run_dir: Path, *, older_than: float | None = None) -> None:
    """Remove the STOP file (only if written before `older_than`, a time.time() value)."""
    path = Path(run_dir) / STOP_NAME
    try:
        if older_than is None or path.stat().st_mtime < older_than:
            path.unlink()
    except FileNotFoundError:
        pass


# ---------------------------------------------------------------- the one-job lock


class RunsLock:
    """The runs folder's training lock: held by at most one process, released by its death.

    An `fcntl.flock` on `<root>/.train.lock`: the kernel drops it when the holder exits in
    any way (SIGKILL included), so a crashed job can never leave it stuck, and taking it is
    atomic, so two browser sessions pressing Start together cannot both win. The file's
    content (pid, run id) only serves messages. The descriptor can be inherited by a child
    process (`fd`), which then holds the lock for as long as it lives.
    """

    def __init__(self, fd: int, path: Path) -> None:
        self.fd = fd
        self.path = path

    def write_holder(self, pid: int, run_id: str | None) -> None:
        data = json.dumps({"pid": pid, "pid_start": process_start_token(pid), "run_id": run_id,
                           "since": time.time()}).encode()
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, data, 0)

    def release(self) -> None:
        if self.fd >= 0:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            finally:
                os.close(self.fd)
                self.fd = -1

    def close(self) -> None:
        """Close this process's descriptor without unlocking (a child still holds it)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> RunsLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def acquire_lock(
    runs_dir: str | os.PathLike | None = None, *, run_id: str | None = None, wait: float = 0.5
) -> RunsLock:
    """Take the runs folder's lock or raise JobBusy naming the job that holds it.

    Retries for `wait` seconds so that a momentary probe by `lock_holder` is not mistaken
    for a running job.
    """
    root = runs_root(runs_dir)
    path = root / LOCK_NAME
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise _unwritable(root, exc) from exc
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                holder = _read_holder(path)
                os.close(fd)
                raise JobBusy(holder.get("run_id"), holder.get("pid"), root) from None
            time.sleep(0.05)
    lock = RunsLock(fd, path)
    lock.write_holder(os.getpid(), run_id)
    return lock


def lock_holder(runs_dir: str | os.PathLike | None = None) -> dict[str, Any] | None:
    """{"pid", "run_id", "since"} of the job holding the lock, or None when it is free."""
    path = runs_root(runs_dir) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_holder(path) or {"pid": None, "run_id": None, "since": None}
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_holder(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text() or "{}")
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}

"""Child processes of the app and the CLI: `python -m ...` with this checkout importable,
optionally holding the runs folder's training lock, optionally detached.

Training jobs, background sweeps and analyses are detached (their own session: a closed tab
or a restarted server does not end them, and a stop can kill the whole group); a sweep's
`--workers` are not (Ctrl-C reaches them with their parent). Children started here are
remembered and reaped by `reap()`, so finished ones do not linger as zombies in a
long-lived Streamlit server. No TensorFlow.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from fer_core.paths import REPO_ROOT
from fer_core.runs import pid_alive, process_start_token, read_json_dict, write_json

LOCK_FD_ENV = "FER_LOCK_FD"  # tells a child it already holds the runs folder's lock

_children: dict[int, subprocess.Popen] = {}
_guard = threading.Lock()


def holds_inherited_lock() -> bool:
    """Whether this process was started holding its parent's runs lock."""
    return os.environ.get(LOCK_FD_ENV) is not None


def spawn_python(args: list[str], *, log: Path | None = None, lock_fd: int | None = None,
                 detached: bool = True) -> subprocess.Popen:
    """Start `python <args>`; stdout and stderr appended to `log` (None: inherited)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    fds: tuple[int, ...] = ()
    if lock_fd is not None:
        env[LOCK_FD_ENV] = str(lock_fd)
        fds = (lock_fd,)
    out = open(log, "ab") if log is not None else None  # noqa: SIM115 - closed below
    try:
        proc = subprocess.Popen([sys.executable, *args], stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT if out else None, env=env,
                                pass_fds=fds, start_new_session=detached, close_fds=True)
    finally:
        if out is not None:
            out.close()
    with _guard:
        _children[proc.pid] = proc
    return proc


def write_pid_record(path: Path, pid: int) -> None:
    """Record a background process (`{"pid", "start"}`) for whoever later asks if it lives."""
    write_json(path, {"pid": pid, "start": process_start_token(pid)})


def pid_record_alive(path: Path) -> bool | None:
    """Whether the process recorded at `path` still runs (the same process, not a reused
    pid); None when there is no record yet."""
    record = read_json_dict(path)
    if not record:
        return None
    return pid_alive(record.get("pid"), record.get("start"))


def reap() -> None:
    """Collect exited children so their pids do not linger as zombies."""
    with _guard:
        for pid, proc in list(_children.items()):
            if proc.poll() is not None:
                del _children[pid]

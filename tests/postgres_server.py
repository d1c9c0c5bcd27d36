"""A throw-away PostgreSQL server for the sweep tests: Debian's `postgresql` package, a new
cluster in a temporary folder, listening on a Unix socket only (no TCP port to collide
with), trust authentication. As root the server runs as the `postgres` user (PostgreSQL
refuses root). `start()` raises `Unavailable` with the reason when it cannot start, and the
tests skip with it; `.ci/run` installs the package."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

PORT = 54329  # names the socket file only: listen_addresses is empty


class Unavailable(RuntimeError):
    """PostgreSQL cannot be started here; the message says why."""


@dataclass
class Server:
    folder: Path
    url: str
    _as_user: list[str]
    _pg_ctl: str

    def stop(self) -> None:
        subprocess.run([*self._as_user, self._pg_ctl, "-D", str(self.folder / "data"), "-m",
                        "immediate", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(self.folder, ignore_errors=True)


def _binary(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or \
        [p for p in [shutil.which(name)] if p]
    if not found:
        raise Unavailable(f"PostgreSQL's {name} is not installed (Debian package postgresql)")
    return found[-1]


def start() -> Server:
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    folder = Path(tempfile.mkdtemp(prefix="fer-pg-"))  # short: a socket path has ~100 chars
    as_user: list[str] = []
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            raise Unavailable("running as root and there is no 'postgres' user to run the "
                              "server as") from None
        runuser = shutil.which("runuser")
        if runuser is None:
            raise Unavailable("running as root and runuser is missing")
        os.chown(folder, user.pw_uid, user.pw_gid)
        as_user = [runuser, "-u", "postgres", "--"]
    data = folder / "data"
    steps = [
        [*as_user, initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
         "--no-sync"],
        [*as_user, pg_ctl, "-D", str(data), "-l", str(folder / "server.log"), "-w", "-t", "60",
         "-o", f"-k {folder} -c listen_addresses= -p {PORT} -c fsync=off", "start"],
    ]
    for command in steps:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode:
            log = (folder / "server.log").read_text() if (folder / "server.log").exists() else ""
            shutil.rmtree(folder, ignore_errors=True)
            raise Unavailable(f"{Path(command[len(as_user)]).name} failed: "
                              f"{(done.stderr or done.stdout).strip()[-400:]} {log[-400:]}")
    url = f"postgresql+psycopg2://postgres@/postgres?host={folder}&port={PORT}"
    return Server(folder, url, as_user, pg_ctl)

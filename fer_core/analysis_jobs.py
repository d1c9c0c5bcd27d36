"""Analyses as background jobs: one folder per analysis, one child process per running one,
so a closed browser tab loses nothing and a result can be reopened later.

    folder = start_analysis("talk.mp4", model="default", annotated=True)
    status = read_status(folder)    # AnalysisStatus: state, frames done, total, ETA, summary
    stop_analysis(folder)           # the child stops at its next frame, keeping its rows

`<analyses>/<id>/` (`analyses_root()`: `$FER_ANALYSES_DIR`, else `./analyses`):
- `job.json`: what was asked (`input`, `name`, `model`, `every`, `annotated`, `created`);
- `input/<name>`: an uploaded input, kept here (a typed path is read where it is);
- `progress.json`: `{"frames", "total", "seconds", "faces"}`, rewritten at most 4 times a second;
- `rows.csv`, `annotated.mp4`, `faces/<face id>-<frame>.png` (`fer_core.analyze`);
- `summary.json`: at the end, `Summary.to_json()` plus `state` (finished, stopped, failed) and
  `error`; `pid`: the child's pid and start token; `stop`: asks the child to stop; `job.log`.
A folder without `summary.json` whose child is gone was killed: its state is "failed".
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fer_core import runs
from fer_core.files import atomic_write
from fer_core.labels import DEFAULT_MIRROR_VIEW, check_uncertain_below
from fer_core.processes import pid_record_alive, spawn_python, write_pid_record

ANALYSES_ENV = "FER_ANALYSES_DIR"
PROGRESS_EVERY_S = 0.25
RUNNING, FINISHED, STOPPED, FAILED = "running", "finished", "stopped", "failed"


def analyses_root() -> Path:
    """`$FER_ANALYSES_DIR`, else `./analyses` (not created here)."""
    env = os.environ.get(ANALYSES_ENV, "").strip()
    return Path(env).expanduser().resolve() if env else Path.cwd().resolve() / "analyses"


@dataclass(frozen=True)
class AnalysisStatus:
    folder: Path
    id: str
    name: str  # the input's file name
    model: str  # the model spec it runs
    state: str
    frames: int  # analysed so far
    total: int | None  # frames to analyse, when known
    seconds: float
    summary: dict[str, Any] | None
    error: str | None
    created: str
    uncertain_below: float = 0.0  # faces less sure than this are shown as uncertain
    mirror: bool = False  # each face classified with its mirror image too (flip TTA)

    @property
    def fraction(self) -> float | None:
        return min(1.0, self.frames / self.total) if self.total else None

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the rate so far (None before a rate is known)."""
        if not self.total or not self.frames or self.state != RUNNING:
            return None
        return max(0.0, (self.total - self.frames) * self.seconds / self.frames)

    @property
    def label(self) -> str:
        """Its name in a picker: stable while it runs and after (the state is shown apart)."""
        return f"{self.name} · {self.created[:19].replace('T', ' ')} UTC"


def read_status(folder: str | os.PathLike) -> AnalysisStatus:
    folder = Path(folder)
    job = runs.read_json_dict(folder / "job.json") or {}
    progress = runs.read_json_dict(folder / "progress.json") or {}
    summary = runs.read_json_dict(folder / "summary.json")
    if summary is not None:
        state, error = summary.get("state", FAILED), summary.get("error")
    else:
        alive = pid_record_alive(folder / "pid")
        state = RUNNING if alive is not False else FAILED
        error = None if state == RUNNING else "the analysis ended without a summary (killed?)"
    return AnalysisStatus(
        folder=folder, id=folder.name, name=job.get("name", folder.name),
        model=job.get("model", "default"), state=state,
        frames=int(progress.get("frames", 0)), total=progress.get("total"),
        seconds=float(progress.get("seconds", 0.0)), summary=summary, error=error,
        created=job.get("created", ""), uncertain_below=float(job.get("uncertain_below", 0.0)),
        mirror=bool(job.get("mirror", False)))


def list_analyses(root: str | os.PathLike | None = None) -> list[AnalysisStatus]:
    """Every analysis folder with a job.json, newest first."""
    root = Path(root) if root else analyses_root()
    if not root.is_dir():
        return []
    found = [read_status(p) for p in root.iterdir() if (p / "job.json").is_file()]
    return sorted(found, key=lambda s: s.id, reverse=True)


def new_analysis(name: str, *, model: str = "default", every: int = 1, annotated: bool = False,
                 uncertain_below: float = 0.0, mirror: bool = DEFAULT_MIRROR_VIEW,
                 input_path: str | os.PathLike | None = None, data: bytes | None = None,
                 root: str | os.PathLike | None = None) -> Path:
    """A folder for an analysis of a typed path (`input_path`) or uploaded bytes (`data`,
    kept in its `input/`); nothing runs yet."""
    if (input_path is None) == (data is None):
        raise ValueError("give the input's path or its bytes, not both")
    if every < 1:
        raise ValueError("every must be 1 or more")
    uncertain_below = check_uncertain_below(uncertain_below)
    root = Path(root) if root else analyses_root()
    stamp = datetime.now(timezone.utc)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(name).stem)[:40].strip("-.") or "input"
    folder = root / f"{stamp:%Y%m%d-%H%M%S}-{safe}"
    n = 1
    while folder.exists():
        n += 1
        folder = root / f"{stamp:%Y%m%d-%H%M%S}-{safe}-{n}"
    folder.mkdir(parents=True)
    if data is not None:
        (folder / "input").mkdir()
        clean = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(name).name) or "input"
        target = folder / "input" / clean
        target.write_bytes(data)
        input_path = target
    runs.write_json(folder / "job.json", {
        "input": str(Path(input_path).resolve()), "name": Path(name).name, "model": model,
        "every": int(every), "annotated": bool(annotated),
        "uncertain_below": uncertain_below, "mirror": bool(mirror),
        "created": stamp.isoformat(timespec="seconds")})
    return folder


def start_analysis(folder: str | os.PathLike) -> subprocess.Popen:
    """Run the analysis of `folder` in a child process (`python -m fer_core.analysis_jobs`)."""
    folder = Path(folder)
    proc = spawn_python(["-m", "fer_core.analysis_jobs", str(folder)], log=folder / "job.log")
    write_pid_record(folder / "pid", proc.pid)
    return proc


def stop_analysis(folder: str | os.PathLike) -> None:
    """Ask a running analysis to stop; it keeps the rows written so far."""
    atomic_write(Path(folder) / "stop", "")


def run_analysis(folder: str | os.PathLike) -> dict[str, Any]:
    """The child's work: analyse the job of `folder` and write its summary (never raises for
    a bad input or model: the summary says what went wrong)."""
    from fer_core.analyze import Summary, analyze_file, frame_count, open_classifier
    from fer_core.detect import FaceDetector

    folder = Path(folder)
    job = runs.read_json_dict(folder / "job.json") or {}
    total: int | None = None
    last = [0.0]

    def report(summary: Summary) -> None:
        runs.write_json(folder / "progress.json", {
            "frames": summary.frames, "total": total, "seconds": summary.seconds,
            "faces": summary.faces})

    def on_frame(frame, summary: Summary) -> None:
        if time.monotonic() - last[0] >= PROGRESS_EVERY_S:
            last[0] = time.monotonic()
            report(summary)

    try:
        source = Path(job["input"])
        total = frame_count(source, every=int(job.get("every", 1)))
        report(Summary())
        # jobs written before the mirror option ran one view
        classifier = open_classifier(job.get("model", "default"),
                                     mirror=bool(job.get("mirror", False)))
        summary = analyze_file(
            source, folder / "rows.csv", classifier, FaceDetector(),
            annotated=folder / "annotated.mp4" if job.get("annotated") else None,
            every=int(job.get("every", 1)), thumbnails=folder / "faces", on_frame=on_frame,
            uncertain_below=float(job.get("uncertain_below", 0.0)),
            should_stop=lambda: (folder / "stop").exists())
        out = {**summary.to_json(), "state": STOPPED if summary.stopped else FINISHED,
               "error": None}
        report(summary)
    except (ValueError, OSError, KeyError) as exc:
        out = {"state": FAILED, "error": str(exc)}
    runs.write_json(folder / "summary.json", out)
    return out


if __name__ == "__main__":
    sys.exit(0 if run_analysis(sys.argv[1]).get("state") != FAILED else 1)

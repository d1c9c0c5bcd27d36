"""Shared fixtures: isolated folders for the project's FER_* variables, small CSV files, the
shared tiny run (trained once per process by `tiny_run.py`), a finished run written without
training, and the small demo set the trainer tests use."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from fer_core import runs
from fer_core.config import TrainConfig
from fer_core.paths import CACHE_ENV, DEFAULT_MODEL_ENV
from sample_files import csv_bytes

RUNS_ENV = "FER_RUNS_DIR"
ANALYSES_ENV = "FER_ANALYSES_DIR"  # fer_core.analysis_jobs.ANALYSES_ENV
FRAME_LOG_ENV = "FER_FRAME_LOG"  # fer_core.infer.FRAME_LOG_ENV (that module loads TensorFlow)


@dataclass(frozen=True)
class FerDirs:
    """Where `FER_RUNS_DIR`, `FER_CACHE_DIR` and `FER_ANALYSES_DIR` point during one test
    (the folders exist, outside the test's `tmp_path`, so a test can show that nothing was
    written there)."""

    runs: Path
    cache: Path
    analyses: Path
    monkeypatch: pytest.MonkeyPatch = field(repr=False)

    def default_model(self, path: Path | None = None) -> Path:
        """Point `FER_DEFAULT_MODEL` at `path`, by default at a file that does not exist (no
        shipped model)."""
        path = path if path is not None else self.runs.parent / "missing" / "default.keras"
        self.monkeypatch.setenv(DEFAULT_MODEL_ENV, str(path))
        return path

    def frame_log(self) -> Path:
        """Point `FER_FRAME_LOG` at a file (not yet written) and return it."""
        path = self.runs.parent / "frames.jsonl"
        self.monkeypatch.setenv(FRAME_LOG_ENV, str(path))
        return path


@pytest.fixture
def fer_dirs(tmp_path_factory: pytest.TempPathFactory,
             monkeypatch: pytest.MonkeyPatch) -> FerDirs:
    """Private runs and cache folders for this test, and no `$FER2013_CSV` from outside.

    It uses the test's own `monkeypatch`, so a test's `monkeypatch.undo()` undoes it too."""
    base = tmp_path_factory.mktemp("fer")
    dirs = FerDirs(base / "runs", base / "cache", base / "analyses", monkeypatch)
    dirs.runs.mkdir()
    dirs.cache.mkdir()
    dirs.analyses.mkdir()
    monkeypatch.setenv(RUNS_ENV, str(dirs.runs))
    monkeypatch.setenv(CACHE_ENV, str(dirs.cache))
    monkeypatch.setenv(ANALYSES_ENV, str(dirs.analyses))
    monkeypatch.delenv("FER2013_CSV", raising=False)
    return dirs


@pytest.fixture
def write_csv(tmp_path: Path) -> Callable[..., Path]:
    """`write_csv(name, images, labels, usage=None, *, eol="\\n", extra_lines=())`: a FER CSV
    of these faces (`sample_files.csv_bytes`) plus `extra_lines` written as they are, at
    `tmp_path / name`."""

    def write(name: str, images, labels, usage=None, *, eol: str = "\n",
              extra_lines: tuple[str, ...] | list[str] = ()) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        extra = "".join(line + eol for line in extra_lines).encode()
        path.write_bytes(csv_bytes(images, labels, usage, eol=eol) + extra)
        return path

    return write


@pytest.fixture
def tiny_run(fer_dirs: FerDirs) -> runs.RunInfo:
    """The shared tiny run (4 epochs, a finished run with weights), copied into this test's
    runs folder under the name "tiny"."""
    from tiny_run import make_tiny_run

    return make_tiny_run(fer_dirs.runs)


@pytest.fixture
def race() -> Callable[[int, Callable[[], object]], list[object]]:
    """`race(n, call)`: `call()` in `n` threads released at the same instant; what each
    returned, or the `runs.JobBusy` it raised, in the order they ended."""

    def run(n: int, call: Callable[[], object]) -> list[object]:
        barrier = threading.Barrier(n)
        outcomes: list[object] = []

        def one() -> None:
            barrier.wait()
            try:
                outcomes.append(call())
            except runs.JobBusy as exc:
                outcomes.append(exc)

        threads = [threading.Thread(target=one) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return outcomes

    return run


@pytest.fixture(scope="session")
def small_demo():
    """300 demo faces (seed 1): enough for one-epoch trainings of a 4-filter model."""
    from fer_core.data.demo import make_demo

    return make_demo(300, seed=1)


@pytest.fixture
def finished_run(fer_dirs: FerDirs) -> runs.RunInfo:
    """A finished run "done" with a three-epoch history, written without training (for the
    runs table, progress and chart tests)."""
    rows = ((0.7, 0.30), (0.6, 0.45), (0.65, 0.40))
    info = runs.create_run(TrainConfig(name="done", model="fernet", epochs=len(rows)),
                           fer_dirs.runs)
    history = [{"epoch": i + 1, "loss": 1.0 - i / 10, "accuracy": 0.3 + i / 10, "val_loss": vl,
                "val_accuracy": va, "lr": 1e-3, "seconds": 2.0}
               for i, (vl, va) in enumerate(rows)]
    runs.write_history(info.dir, history)
    runs.update_status(info.dir, state="finished", epoch=len(rows), elapsed=125.0,
                       started_at=time.time() - 130, finished_at=time.time())
    return runs.get_run(info.dir)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained `fernet` of width 4 as a `.keras` file: quick to load, for tests of
    shapes, speed and plumbing (its predictions mean nothing)."""
    from fer_core.models import create_model

    path = tmp_path_factory.mktemp("tiny-model") / "tiny.keras"
    create_model("fernet", width=4, convs=1).save(path)
    return path


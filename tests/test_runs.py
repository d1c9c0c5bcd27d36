"""Run folders: atomic creation, tolerant listing, dead-pid detection, rename/delete, the lock,
events/history files. No TensorFlow needed (model specs: test_catalog.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fer_core import runs
from fer_core.config import ConfigError, TrainConfig


@pytest.fixture()
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FER_RUNS_DIR", str(tmp_path / "runs"))
    return tmp_path / "runs"


def test_root_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FER_RUNS_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert runs.runs_root() == tmp_path.resolve() / "runs"
    monkeypatch.setenv("FER_RUNS_DIR", str(tmp_path / "elsewhere"))
    assert runs.runs_root() == tmp_path.resolve() / "elsewhere"
    assert runs.runs_root(tmp_path / "x") == tmp_path.resolve() / "x"


def test_create_and_read(root: Path) -> None:
    config = TrainConfig(name="first try", epochs=4)
    info = runs.create_run(config)
    assert info.dir.parent == root.resolve() and "first-try" in info.id
    assert info.state == "queued" and info.config == config and info.name == "first try"
    assert info.epochs == 4 and info.epoch == 0 and info.best_model_path is None
    assert {p.name for p in info.dir.iterdir()} >= {"config.json", "status.json", "weights", "logs", "eval"}
    again = runs.create_run(config)  # same second, same name: a distinct id
    assert again.id != info.id
    assert [r.id for r in runs.list_runs()] == sorted([info.id, again.id], reverse=True)
    assert not [p for p in root.iterdir() if p.name.startswith(".new-")]


def test_list_survives_corrupt_and_foreign_folders(root: Path) -> None:
    good = runs.create_run(TrainConfig())
    (root / "foreign").mkdir()
    (root / "garbled").mkdir()
    (root / "garbled" / "status.json").write_text("{nope")
    (root / "badconfig").mkdir()
    (root / "badconfig" / "status.json").write_text('{"state": "finished"}')
    (root / "badconfig" / "config.json").write_text('{"epochs": "many"}')
    (root / "wrongstate").mkdir()
    (root / "wrongstate" / "status.json").write_text('{"state": "exploded"}')
    (root / "a_file.txt").write_text("not a run")
    listed = {r.id: r for r in runs.list_runs()}
    assert set(listed) == {good.id, "foreign", "garbled", "badconfig", "wrongstate"}
    for name in ("foreign", "garbled", "badconfig", "wrongstate"):
        assert listed[name].state == "unreadable" and listed[name].problem
    assert "epochs" in listed["badconfig"].problem
    assert listed[good.id].state == "queued"
    with pytest.raises(runs.RunError, match="no run 'missing'"):
        runs.get_run("missing")


def test_dead_pid_reads_as_interrupted(root: Path) -> None:
    info = runs.create_run(TrainConfig())
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    runs.update_status(info.dir, state="running", pid=proc.pid, epoch=3)
    got = runs.get_run(info.id)
    assert got.state == "failed" and got.status["interrupted"] and "3 epoch" in got.error
    runs.update_status(info.dir, pid=os.getpid(), pid_start=runs.process_start_token(os.getpid()))
    assert runs.get_run(info.id).state == "running"
    runs.update_status(info.dir, pid_start="12345")  # same pid, another start: a reused pid
    assert runs.get_run(info.id).state == "failed"


def test_rename_and_delete(root: Path) -> None:
    info = runs.create_run(TrainConfig(name="a"))
    renamed = runs.rename_run(info.id, "better name")
    assert renamed.id == info.id and renamed.name == "better name"
    assert json.loads((info.dir / "config.json").read_text())["name"] == "better name"
    with pytest.raises(ConfigError, match="name"):
        runs.rename_run(info.id, "x" * 300)
    runs.update_status(info.dir, state="running", pid=os.getpid())
    with pytest.raises(runs.RunError, match="stop it before deleting"):
        runs.delete_run(info.id)
    runs.update_status(info.dir, state="stopped")
    runs.delete_run(info.id)
    assert not info.dir.exists() and runs.list_runs() == []
    with pytest.raises(runs.RunError, match="invalid run id"):
        runs.delete_run("..")


def test_events_history_and_stop_file(root: Path) -> None:
    info = runs.create_run(TrainConfig())
    runs.append_event(info.dir, "started", epoch=0)
    runs.append_event(info.dir, "batch", loss=float("nan"))
    with open(info.dir / "events.jsonl", "a") as fh:
        fh.write('{"kind": "epoch", "loss"')  # torn line: the trainer is mid-write
    events = runs.read_events(info.id)
    assert [e["kind"] for e in events] == ["started", "batch"]
    assert runs.read_events(info.id, kinds=("batch",), start=1)[0]["kind"] == "batch"
    rows = [{"epoch": 1, "loss": 2.0, "val_accuracy": 0.3, "custom": 5},
            {"epoch": 2, "loss": 1.5, "val_accuracy": 0.4, "custom": 6}]
    runs.write_history(info.dir, rows)
    history = runs.read_history(info.id)
    assert [r["epoch"] for r in history] == [1, 2] and history[1]["custom"] == 6.0
    assert runs.read_history("missing-run") == []
    assert not runs.stop_requested(info.dir)
    runs.request_stop(info.id)
    assert runs.stop_requested(info.dir)
    runs.clear_stop(info.dir)
    assert not runs.stop_requested(info.dir)


def test_lock_is_exclusive_across_threads(root: Path) -> None:
    barrier = threading.Barrier(4)
    outcomes: list[object] = []

    def take() -> None:
        barrier.wait()
        try:
            outcomes.append(runs.acquire_lock(run_id="r", wait=0.2))
        except runs.JobBusy as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    locks = [o for o in outcomes if isinstance(o, runs.RunsLock)]
    busy = [o for o in outcomes if isinstance(o, runs.JobBusy)]
    assert len(locks) == 1 and len(busy) == 3
    assert "run 'r'" in str(busy[0]) and busy[0].pid == os.getpid()
    assert runs.lock_holder()["run_id"] == "r"
    locks[0].release()
    assert runs.lock_holder() is None
    runs.acquire_lock().release()


def test_lock_dies_with_its_holder(root: Path) -> None:
    code = ("import sys, time; from fer_core import runs; "
            "runs.acquire_lock(sys.argv[1], run_id='held'); print('ok', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(root)], stdout=subprocess.PIPE,
                            text=True, cwd=Path(__file__).resolve().parents[1])
    try:
        assert proc.stdout.readline().strip() == "ok"
        holder = runs.lock_holder()
        assert holder["run_id"] == "held" and holder["pid"] == proc.pid
        with pytest.raises(runs.JobBusy, match="held"):
            runs.acquire_lock(wait=0.1)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert runs.lock_holder() is None  # no stale lock after a SIGKILL
    runs.acquire_lock().release()


def test_atomic_write_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "x.json"
    for i in range(5):
        runs.write_json(target, {"i": i})
    assert runs.read_json(target) == {"i": 4}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]
    with pytest.raises(TypeError):
        runs.write_json(target, {"bad": object()})
    assert runs.read_json(target) == {"i": 4} and len(list(tmp_path.iterdir())) == 1


def test_created_time_orders_listing(root: Path) -> None:
    a = runs.create_run(TrainConfig(name="a"))
    time.sleep(0.01)
    b = runs.create_run(TrainConfig(name="b"))
    assert [r.id for r in runs.list_runs()] == [b.id, a.id]

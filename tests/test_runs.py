"""Run folders: atomic creation, tolerant listing (of foreign, corrupt and damaged metadata),
dead-pid detection, rename/delete (never outside the runs folder), the lock (across threads and
processes), events/history files, writers killed mid-write. No TensorFlow needed (model specs:
test_catalog.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fer_core import runs
from fer_core.config import ConfigError, TrainConfig


REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("fer_dirs")


@pytest.fixture()
def root(fer_dirs) -> Path:
    return fer_dirs.runs


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


def test_lock_is_exclusive_across_threads(root: Path, race) -> None:
    outcomes = race(4, lambda: runs.acquire_lock(run_id="r", wait=0.2))
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
                            text=True, cwd=REPO)
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



# =============================================== damaged and foreign metadata


_STATUS_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                           st.floats(allow_nan=True), st.text(max_size=8),
                           st.lists(st.integers(), max_size=2), st.dictionaries(
                               st.text(max_size=3), st.integers(), max_size=2))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(status=st.one_of(
           st.dictionaries(st.sampled_from(["state", "pid", "pid_start", "epoch", "epochs",
                                            "created_at", "name", "error", "best_value",
                                            "best_epoch", "eta", "finished_at"]),
                           _STATUS_VALUES, max_size=6).map(lambda d: {"state": "running", **d}),
           _STATUS_VALUES),
       config=st.one_of(st.binary(max_size=40), st.just(TrainConfig().to_json().encode())))
def test_foreign_or_corrupt_run_folders_are_listed_as_unreadable(tmp_path_factory, status,
                                                                 config) -> None:
    """Fault / run metadata: whatever status.json and config.json hold (any JSON types, any
    bytes), listing the runs never raises, and every run's fields can be shown."""
    root = tmp_path_factory.mktemp("runs")
    good = runs.create_run(TrainConfig(name="good"), root)
    odd = root / "odd"
    odd.mkdir()
    (odd / "status.json").write_text(json.dumps(status))
    (odd / "config.json").write_bytes(config)
    listed = {r.id: r for r in runs.list_runs(root)}
    assert set(listed) == {good.id, "odd"} and listed[good.id].state == "queued"
    info = listed["odd"]
    shown = (info.state, info.name, info.error, info.epoch, info.epochs, info.created,
             info.active, info.best_model_path)
    assert isinstance(shown[0], str) and isinstance(shown[3], int)
    if info.state == runs.UNREADABLE:
        assert info.problem
    else:
        assert info.state in runs.STATES and info.config is not None



def test_read_history_survives_damaged_rows(tmp_path) -> None:
    """Damaged metadata: history.csv rows with an extra field, missing or non-numeric
    epochs, NUL bytes, bad UTF-8 or a huge field never raise; the good rows are kept."""
    run = tmp_path / "run"
    run.mkdir()
    header = ",".join(runs.HISTORY_FIELDS)
    cases = {
        "extra field": f"{header}\n1,1.0,0.5,1.1,0.4,0.01,2.0,EXTRA,MORE\n2,0.9,0.6,1.0,0.5,0.01,2\n",
        "bad epochs": f"{header}\n1,1,1,1,1,1,1\n,1,1,1,1,1,1\nabc,1,1,1,1,1,1\n-3,1,1,1,1,1,1\n"
                      f"2.5,1,1,1,1,1,1\nnan,1,1,1,1,1,1\n2,1,1,1,1,1,1\n",
        "NUL bytes": f"{header}\n1,1,1,1,1,1,1\n2,1\0,1,1,1,1,1\n",
        "short rows": f"{header}\n1\n2,0.5\n",
        "torn quote": f'{header}\n1,1,1,1,1,1,1\n2,"1,1,1,1,1,1\n',
    }
    for what, text in cases.items():
        (run / "history.csv").write_text(text)
        rows = runs.read_history(run)
        assert rows and rows[0]["epoch"] == 1, what
        assert all(isinstance(r["epoch"], int) and r["epoch"] >= 1 for r in rows), what
        assert all(isinstance(k, str) for r in rows for k in r), what
    (run / "history.csv").write_bytes(header.encode() + b"\n1,\xff\xfe,1,1,1,1,1\n")
    assert [r["epoch"] for r in runs.read_history(run)] == [1]
    (run / "history.csv").write_text(f"{header}\n1,{'9' * 200_000},1,1,1,1,1\n")
    assert runs.read_history(run) == []  # a field over csv's limit: nothing usable, no crash



# =================================================== writers killed mid-write


_WRITER = """
import os, sys
from fer_core import runs
run_dir = sys.argv[1]
me = {"pid": os.getpid(), "pid_start": runs.process_start_token(os.getpid())}
print("ready", flush=True)
i = 0
while True:
    i += 1
    runs.update_status(run_dir, state="running", epoch=i, best_value=i / 1e3, eta=1.5, **me)
    runs.rename_run(run_dir, "name %d " % i + "x" * (i % 97))
    runs.write_history(run_dir, [{"epoch": e, "loss": 1.0 / e} for e in range(1, i % 50 + 2)])
    runs.append_event(run_dir, "batch", epoch=i, loss=0.5, pad="y" * (i % 3000))
    runs.write_json(runs.Path(run_dir) / "weights" / "last.json", {"epoch": i})
"""


def test_writers_killed_mid_write_never_leave_a_broken_run(tmp_path) -> None:
    """Fault / atomic metadata: a process rewriting status, config, history, events and
    last.json in a loop is SIGKILLed at random moments; every time the run still reads whole
    (status, config, history, last.json), and at most the last event line is torn."""
    root = tmp_path / "runs"
    info = runs.create_run(TrainConfig(name="victim"), root)
    rng = np.random.default_rng(0)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for _ in range(8):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(info.dir)], env=env,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(float(rng.uniform(0.05, 0.4)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        [listed] = runs.list_runs(root)
        assert listed.readable, listed.problem
        assert listed.state == "failed" and listed.status["interrupted"]  # its pid is gone
        # (config.json and status.json are two files: a kill between them may leave the
        # name of one iteration in each, but neither is ever half written.)
        assert listed.name.startswith("name ") and listed.config.name.startswith("name ")
        history = runs.read_history(listed)
        assert history and [r["epoch"] for r in history] == list(range(1, len(history) + 1))
        assert runs.read_json(info.dir / "weights" / "last.json")["epoch"] >= 1
        lines = (info.dir / "events.jsonl").read_text().splitlines()
        assert all(json.loads(line) for line in lines[:-1])  # only the last can be torn
        assert len(runs.read_events(listed)) >= len(lines) - 1



# ============================================= two processes starting at once


_STARTER = """
import sys, time
from fer_core import runs
from fer_core.config import TrainConfig
root, go = sys.argv[1], float(sys.argv[2])
time.sleep(max(0.0, go - time.time()))
try:
    lock = runs.acquire_lock(root, run_id="starting")
except runs.JobBusy as exc:
    print("busy", exc, flush=True)
else:
    run = runs.create_run(TrainConfig(name="race"), root)
    print("started", run.id, flush=True)
    time.sleep(3)
"""


def test_two_processes_pressing_start_at_once_get_one_job(tmp_path) -> None:
    """Concurrency: two server processes start a job in the same instant, the way
    `jobs.start_job` does (the runs lock, then the run folder): one wins, the other is told
    a job is running, and only one run folder exists. (tests/test_jobs.py races the real
    start_job in two threads; tests/test_page_train.py presses Start in a second session.)"""
    root = tmp_path / "runs"
    go = time.time() + 1.5  # both are past their imports by then
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", _STARTER, str(root), str(go)],
                              stdout=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    outs = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
    assert [o.split()[0] for o in outs] == ["busy", "started"], outs
    assert "a training job is already running" in outs[0]
    assert [r.name for r in runs.list_runs(root)] == ["race"]
    assert runs.lock_holder(root) is None  # released when the winner exited



# ============================================== paths outside the runs folder


def test_run_commands_stay_inside_the_runs_folder(tmp_path, capsys) -> None:
    """Security / writes: deleting or stopping by a typed path outside the runs folder is
    refused and touches nothing; run names cannot place a folder elsewhere."""
    from fer_core.__main__ import main

    root = tmp_path / "runs"
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    (precious / "status.json").write_text('{"state": "finished"}')
    runs.create_run(TrainConfig(name="real"), root)
    for target in (str(precious), f"{root}/../precious", precious):
        assert main(["runs", "--runs-dir", str(root), "--delete", str(target)]) == 2
        assert "is not a run folder inside" in capsys.readouterr().err
        with pytest.raises(runs.RunError, match="nothing was deleted"):
            runs.delete_run(target, root)
        with pytest.raises(runs.RunError, match="not a readable run folder"):
            runs.request_stop(target, root)
    with pytest.raises(runs.RunError, match="no run 'nowhere'"):
        runs.request_stop(tmp_path / "nowhere", root)
    assert not (tmp_path / "nowhere").exists()
    assert sorted(p.name for p in precious.iterdir()) == ["status.json", "thesis.tex"]
    odd = runs.create_run(TrainConfig(name="../../escape/../x"), root)
    assert odd.dir.parent == root.resolve() and odd.name == "../../escape/../x"
    runs.delete_run(odd.id, root)
    assert [r.name for r in runs.list_runs(root)] == ["real"]


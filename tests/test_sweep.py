"""`python -m fer_core sweep` end to end: an Optuna study whose trials are real runs on a
small FER CSV: SQLite by default, the time budget, a graceful stop, bad input; two worker
processes sharing a PostgreSQL study, and a worker killed mid-trial."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import postgres_server
from fer_core import runs, sweep
from fer_core.data.demo import make_demo
from fer_core.paths import REPO_ROOT
from sample_files import csv_bytes

TINY = {"model": "fernet", "model_kwargs": {"width": 4, "convs": 1}, "epochs": 2,
        "batch_size": 32, "optimizer": "adam", "learning_rate": 3e-3, "schedule": "none",
        "augment": None, "early_stop_patience": 0}
SPACE = {"learning_rate": {"low": 1e-3, "high": 1e-2, "log": True}, "model_kwargs.dropout": True}
CLI_TIMEOUT = 300


@pytest.fixture
def files(fer_dirs, tmp_path):
    ds = make_demo(140, seed=4)
    data = tmp_path / "faces.csv"
    data.write_bytes(csv_bytes(ds.images, ds.labels, ds.usage))
    base, space = tmp_path / "base.json", tmp_path / "space.json"
    base.write_text(json.dumps(TINY))
    space.write_text(json.dumps(SPACE))
    return {"data": data, "base": base, "space": space, "runs": fer_dirs.runs}


def _command(files, *args: str) -> list[str]:
    return [sys.executable, "-m", "fer_core", "sweep", "--data", str(files["data"]),
            "--config", str(files["base"]), "--space", str(files["space"]), *args]


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), **extra)
    env.pop(sweep.HEARTBEAT_ENV, None)
    env.update(extra)
    return env


def _sweep(files, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(_command(files, *args), capture_output=True, text=True, cwd=REPO_ROOT,
                          timeout=CLI_TIMEOUT, env=_env(**env))


def _summary(done: subprocess.CompletedProcess) -> dict:
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _study(files, name: str, storage: str | None = None):
    return sweep.open_study(storage or sweep.default_storage(files["runs"]), name)


def test_a_sweep_on_sqlite_trains_runs_that_know_their_trial(files):
    summary = _summary(_sweep(files, "--trials", "3", "--study", "s1", "--json"))
    assert summary["trials"] == 3 and summary["complete"] + summary["pruned"] == 3
    assert summary["fail"] == 0 and summary["best"]["val_accuracy"] > 0
    assert (files["runs"] / "sweeps.db").is_file()  # the default storage
    assert (files["runs"] / "sweeps" / "s1" / "summary.json").is_file()
    study = _study(files, "s1")
    trials = study.get_trials()
    baseline = trials[0]
    assert baseline.user_attrs["baseline"] is True
    assert baseline.params == {"learning_rate": 3e-3, "model_kwargs.dropout": 0.4}
    for trial in trials:
        info = runs.get_run(trial.user_attrs["run_id"], files["runs"])
        assert info.config.sweep == {"study": "s1", "trial": trial.number}
        assert info.name == f"s1 #{trial.number}"
        assert info.config.learning_rate == pytest.approx(trial.params["learning_rate"])
        assert info.config.model_kwargs["dropout"] == pytest.approx(trial.params["model_kwargs.dropout"])
        assert len(trial.intermediate_values) == len(runs.read_history(info.dir))
    assert runs.lock_holder(files["runs"]) is None  # the job's lock is released
    # The same study goes on: one trial more, no second baseline.
    more = _summary(_sweep(files, "--trials", "4", "--study", "s1", "--json"))
    assert more["trials"] == 4
    assert sum(t.user_attrs.get("baseline", False) for t in _study(files, "s1").get_trials()) == 1


def test_the_budget_stops_the_running_trial_in_time(files):
    long_base = files["base"].with_name("long.json")
    long_base.write_text(json.dumps({**TINY, "epochs": 500}))
    minutes = 0.4
    done = subprocess.run(
        [sys.executable, "-m", "fer_core", "sweep", "--data", str(files["data"]), "--config",
         str(long_base), "--space", str(files["space"]), "--trials", "5", "--minutes",
         str(minutes), "--study", "budget", "--json"],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=CLI_TIMEOUT, env=_env())
    ended = time.time()
    summary = _summary(done)
    plan = json.loads((files["runs"] / "sweeps" / "budget" / "sweep.json").read_text())
    assert plan["deadline"] - plan["created_at"] == pytest.approx(60 * minutes, abs=1)
    # Stopping waits for the batch in progress, then a checkpoint and the summary are written.
    assert ended - plan["deadline"] < 15
    assert summary["trials"] == 1 and summary["pruned"] == 1
    trial = _study(files, "budget").get_trials()[0]
    assert trial.user_attrs["stopped"] == "budget"
    info = runs.get_run(trial.user_attrs["run_id"], files["runs"])
    assert info.state == "stopped" and info.epoch < 500  # a loaded machine may finish none
    assert info.status["finished_at"] - plan["deadline"] < 10
    if info.epoch:
        assert "base config (trial 0, pruned)" in done.stdout


def test_sigterm_stops_the_sweep_gracefully(files):
    long_base = files["base"].with_name("long.json")
    long_base.write_text(json.dumps({**TINY, "epochs": 500}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "fer_core", "sweep", "--data", str(files["data"]), "--config",
         str(long_base), "--space", str(files["space"]), "--trials", "5", "--study", "stopme"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO_ROOT, env=_env())
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            active = [r for r in runs.list_runs(files["runs"]) if r.active and r.epoch >= 1]
            if active:
                break
            time.sleep(0.5)
        assert active, "no trial reached its first epoch"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    assert "stopping the sweep" in out and "1 trial(s)" in out
    trial = _study(files, "stopme").get_trials()[0]
    assert trial.state.name == "PRUNED" and trial.user_attrs["stopped"] == "stop requested"
    assert runs.get_run(trial.user_attrs["run_id"], files["runs"]).state == "stopped"


def test_bad_sweeps_are_refused_with_the_reason(files):
    bad_space = files["space"].with_name("bad.json")
    bad_space.write_text(json.dumps({"momentum": True}))
    done = subprocess.run(
        [sys.executable, "-m", "fer_core", "sweep", "--data", str(files["data"]), "--config",
         str(files["base"]), "--space", str(bad_space)],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=CLI_TIMEOUT, env=_env())
    assert done.returncode == 2 and "momentum would do nothing" in done.stderr
    assert "bad.json" in done.stderr
    done = _sweep(files, "--study", "no spaces")
    assert done.returncode == 2 and "study name 'no spaces'" in done.stderr
    done = _sweep(files, "--trials", "0")
    assert done.returncode == 2 and "trials must be" in done.stderr
    with runs.acquire_lock(files["runs"], run_id="someone-else"):  # a training job runs
        done = _sweep(files, "--trials", "1")
    assert done.returncode == 1 and "someone-else" in done.stderr
    assert not list(runs.list_runs(files["runs"]))


# ---------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="module")
def postgres():
    try:
        server = postgres_server.start()
    except postgres_server.Unavailable as exc:
        pytest.skip(f"no PostgreSQL server here: {exc}")
    yield server.url
    server.stop()


def _workers(trials) -> set[int]:
    return {t.user_attrs["worker"]["pid"] for t in trials if "worker" in t.user_attrs}


def test_two_workers_share_one_postgres_study(files, postgres):
    summary = _summary(_sweep(files, "--trials", "4", "--workers", "2", "--storage", postgres,
                              "--study", "pg-two", "--json"))
    assert summary["storage"].startswith("postgresql+psycopg2://postgres@")
    trials = _study(files, "pg-two", postgres).get_trials()
    # each worker checks the count before it starts a trial: one may start a last extra one
    assert 4 <= len(trials) <= 5
    assert all(t.state.name in ("COMPLETE", "PRUNED") for t in trials)
    assert len(_workers(trials)) == 2


def test_a_killed_workers_trial_is_marked_failed_and_the_study_goes_on(files, postgres):
    longer = files["base"].with_name("longer.json")
    longer.write_text(json.dumps({**TINY, "epochs": 8}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "fer_core", "sweep", "--data", str(files["data"]), "--config",
         str(longer), "--space", str(files["space"]), "--trials", "5", "--workers", "2",
         "--storage", postgres, "--study", "pg-kill", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT,
        env=_env(**{sweep.HEARTBEAT_ENV: "1"}))
    try:
        victim = None
        deadline = time.monotonic() + 180
        while victim is None and time.monotonic() < deadline:
            time.sleep(0.5)
            try:
                trials = _study(files, "pg-kill", postgres).get_trials()
            except sweep.SweepError:
                continue
            running = [t for t in trials if t.state.name == "RUNNING"
                       and t.intermediate_values and "worker" in t.user_attrs]
            if len(running) == 2:
                victim = running[0]
        assert victim is not None, "two trials never ran at once"
        os.kill(victim.user_attrs["worker"]["pid"], signal.SIGKILL)
        killed_at = time.time()
        out, err = proc.communicate(timeout=CLI_TIMEOUT)
    finally:
        proc.kill()
    assert proc.returncode == 1, out + err
    assert "was killed by signal 9" in err
    trials = {t.number: t for t in _study(files, "pg-kill", postgres).get_trials()}
    assert trials[victim.number].state.name == "FAIL"
    later = [t for t in trials.values() if t.datetime_complete
             and t.datetime_complete.timestamp() > killed_at and t.state.name != "FAIL"]
    assert later, "no trial ended after the kill"
    assert len(trials) >= 5
    run = runs.get_run(victim.user_attrs["run_id"], files["runs"])
    assert run.state == "failed" and "interrupted" in (run.error or "")
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["fail"] == 1

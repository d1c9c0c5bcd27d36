"""AppTest of app_pages/2_Train.py: controls, a tiny background run from Start to the runs table,
the one-job rule, a failed run's reason, hostile run names, a crashing estimate. Runs go to a
temporary FER_RUNS_DIR."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

import fer_core  # noqa: F401  (CPU flags before TensorFlow loads)
from child_python import crashing_python
from fer_core import jobs, runs
from fer_core.data.demo import make_demo
from fer_core.text import format_seconds
from sample_files import HOSTILE_NAMES, csv_bytes
from tiny_run import make_tiny_run

PAGE = str(Path(__file__).resolve().parents[1] / "app_pages" / "2_Train.py")
TIMEOUT = 60
JOB_TIMEOUT = 90  # a tiny job: TensorFlow import in the job process + 2 short epochs


def _write_csv(path: Path, n: int = 140, seed: int = 1) -> Path:
    """A small FER-format CSV of demo faces (all three splits), for a job process to load."""
    ds = make_demo(n, seed=seed)
    path.write_bytes(csv_bytes(ds.images, ds.labels, ds.usage))
    return path


@pytest.fixture
def env(fer_dirs, monkeypatch, tmp_path):
    root = fer_dirs.runs
    monkeypatch.chdir(tmp_path)  # no data/fer2013.csv here: the demo set is active
    yield root
    job = jobs.active_job(root)
    if job is not None and job.run_id:  # a failed assertion must not leave a job training
        jobs.stop_job(job.run_id, runs_dir=root, timeout=10)


def _page() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    return at


def _texts(elements) -> list[str]:
    return [e.value for e in elements]


@pytest.fixture(scope="module")
def tiny_job(tmp_path_factory):
    """Start a tiny run from the page (2 epochs of a 4-filter mini-Xception on 112 demo
    faces) and hand it on while it trains: the tests between the one that asks first and
    the one that waits for the end run while the job process imports TensorFlow and traces."""
    tmp = tmp_path_factory.mktemp("tiny_job")
    root = tmp / "runs"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FER_RUNS_DIR", str(root))
        mp.setenv("FER_CACHE_DIR", str(tmp / "cache"))
        mp.setenv("FER2013_CSV", str(_write_csv(tmp / "small.csv")))
        mp.chdir(tmp)
        at = _page()
        assert "small.csv" in at.caption[0].value
        at.number_input(key="train_w_opt_width").set_value(4)
        at.number_input(key="train_w_epochs").set_value(2)
        at.number_input(key="train_w_batch_size").set_value(32)
        at.toggle(key="train_w_aug_enabled").set_value(False)
        at.text_input(key="train_w_name").set_value("tiny").run()
        assert not at.exception, at.exception
        at.button(key="train_start").click().run()
        assert not at.exception, at.exception
        yield at, root
        job = jobs.active_job(root)
        if job is not None and job.run_id:  # a failed assertion must not leave it training
            jobs.stop_job(job.run_id, runs_dir=root, timeout=10)


def _use_job_env(monkeypatch, root: Path) -> None:
    monkeypatch.setenv("FER_RUNS_DIR", str(root))
    monkeypatch.setenv("FER2013_CSV", str(root.parent / "small.csv"))
    monkeypatch.chdir(root.parent)


def test_start_launches_a_job_that_every_session_sees_and_a_second_is_refused(
        tiny_job, monkeypatch):
    at, root = tiny_job
    _use_job_env(monkeypatch, root)
    started = runs.list_runs(root)
    assert len(started) == 1 and started[0].name == "tiny"
    run = started[0]
    assert any("Started run" in s for s in _texts(at.success))
    assert run.config.model_kwargs == {"width": 4} and run.config.augment is None
    assert run.config.data == str(root.parent / "small.csv")
    # the job is found from the runs folder: a fresh session (a reload, a second tab) shows it
    other = _page()
    assert any("Training now: tiny" in s for s in _texts(other.subheader))
    assert other.button(key="train_stop")
    other.button(key="train_start").click().run()
    assert any("already running" in e for e in _texts(other.error)), _texts(other.error)
    assert len(runs.list_runs(root)) == 1


def test_page_renders_with_the_demo_set_and_no_runs(env):
    at = _page()
    assert any("synthetic demo set" in w.lower() for w in _texts(at.warning))
    assert any("No runs yet" in i for i in _texts(at.info))
    assert at.selectbox(key="train_w_model").value == "mini_xception"
    params = next(m for m in at.metric if m.label == "Parameters").value
    assert int(params.replace(",", "")) > 1000
    images = next(m for m in at.metric if m.label == "Training images / epoch").value
    assert images == f"{len(make_demo().split('Training')[1]):,}"
    assert not at.button(key="train_start").disabled
    assert "train_runs_table" not in [getattr(d, "key", None) for d in at.dataframe]


def test_controls_change_the_config_and_explain_invalid_ones(env):
    at = _page()
    # model options follow the model: fernet has dropout, mini_xception does not
    assert "train_w_opt_dropout" not in [n.key for n in at.number_input]
    at.selectbox(key="train_w_model").set_value("fernet").run()
    assert at.number_input(key="train_w_opt_width").value == 32
    assert at.number_input(key="train_w_opt_dropout").value == pytest.approx(0.4)
    small = next(m for m in at.metric if m.label == "Parameters").value
    at.number_input(key="train_w_opt_width").set_value(8).run()
    smaller = next(m for m in at.metric if m.label == "Parameters").value
    assert int(smaller.replace(",", "")) < int(small.replace(",", ""))
    # irrelevant settings are disabled: momentum needs SGD, warm-up needs cosine
    assert at.number_input(key="train_w_momentum").disabled
    at.selectbox(key="train_w_optimizer").set_value("sgd").run()
    assert not at.number_input(key="train_w_momentum").disabled
    assert at.number_input(key="train_w_warmup_epochs").disabled
    at.selectbox(key="train_w_schedule").set_value("cosine").run()
    assert not at.number_input(key="train_w_warmup_epochs").disabled
    assert at.number_input(key="train_w_plateau_factor").disabled
    # an invalid combination is explained and Start is disabled, nothing crashes
    at.number_input(key="train_w_epochs").set_value(3).run()
    at.number_input(key="train_w_warmup_epochs").set_value(3).run()
    assert not at.exception
    assert any("warmup_epochs" in e for e in _texts(at.error))
    assert at.button(key="train_start").disabled
    # the shipped recipe is the preset "default", and the form starts on it
    assert at.selectbox(key="train_preset").options[0] == "default"
    # a preset loads its values
    at.selectbox(key="train_preset").set_value("quick")
    at.button(key="train_apply_preset").click().run()
    assert at.number_input(key="train_w_epochs").value == 3
    assert at.selectbox(key="train_w_schedule").value == "cosine"
    at.selectbox(key="train_preset").set_value("default")
    at.button(key="train_apply_preset").click().run()
    assert at.selectbox(key="train_w_model").value == "fernet"
    assert at.number_input(key="train_w_epochs").value == 40
    assert not at.error and not at.button(key="train_start").disabled


def test_a_failed_run_shows_its_reason(env):
    from fer_core.config import TrainConfig

    info = runs.create_run(TrainConfig(name="broken", epochs=3), env)
    runs.update_status(info.dir, state="failed", epoch=1, finished_at=time.time(),
                       error="DataError: fer2013.csv, row 7, column pixels: 2303 values, not 2304")
    (info.dir / "job.log").write_text("Traceback (most recent call last):\n  ...\nDataError\n")
    at = _page()
    errors = _texts(at.error)
    assert any("broken" in e and "row 7, column pixels" in e for e in errors), errors
    assert at.selectbox(key="train_open_run").value == info.id
    assert at.button(key="train_resume")
    # rename, then delete with confirmation
    at.text_input(key=f"train_rename_{info.id}").set_value("fixed")
    at.button(key="train_rename").click().run()
    assert runs.get_run(info.id, env).name == "fixed"
    at.button(key="train_delete").click().run()
    assert any("cannot be undone" in w for w in _texts(at.warning))
    assert (env / info.id).is_dir()
    at.button(key="train_delete_yes").click().run()
    assert not at.exception, at.exception
    assert not (env / info.id).exists()


def test_stop_button_and_resume_refused_while_a_job_holds_the_lock(env):
    """A job (here this test process, holding the runs lock like a job process does) shows
    in a fresh session with a Stop button that requests a graceful stop."""
    from fer_core.config import TrainConfig

    old = runs.create_run(TrainConfig(name="earlier", epochs=4), env)
    runs.update_status(old.dir, state="stopped", epoch=2, finished_at=time.time())
    live = runs.create_run(TrainConfig(name="live", epochs=5), env)
    runs.update_status(live.dir, state="running", pid=os.getpid(), started_at=time.time(),
                       pid_start=runs.process_start_token(os.getpid()), epoch=1)
    runs.append_event(live.dir, "started", epoch=0, epochs=5, steps_per_epoch=10, lr=1e-3)
    runs.append_event(live.dir, "batch", epoch=2, epochs=5, batch=4, steps=10, loss=1.1,
                      accuracy=0.5, lr=1e-3, elapsed=12.0, eta=30.0)
    with runs.acquire_lock(env, run_id=live.id):
        at = _page()
        assert any("Training now: live" in s for s in _texts(at.subheader))
        assert at.get("progress")[0].proto.value == 40  # batch 4 of 10 in epoch 2
        at.button(key="train_stop").click().run()
        assert runs.stop_requested(live.dir)
        assert any("Stopping after the current batch" in i for i in _texts(at.info))
        at.selectbox(key="train_open_run").set_value(old.id).run()
        at.button(key="train_resume").click().run()
        assert any("already running" in e for e in _texts(at.error)), _texts(at.error)
    assert runs.get_run(old.id, env).state == "stopped"


def test_estimate_shows_time_per_epoch_and_run(env, monkeypatch):
    """The page turns the engine's timing into per-epoch and per-run figures (the timing
    itself is fer_core.probe's, in a child process, and tested there; here it is replaced by
    a fixed speed)."""
    import fer_core.probe

    calls = []

    def fake_speed(config, **kwargs):
        calls.append((config.model, config.batch_size))
        return fer_core.probe.SpeedEstimate(100.0, 12.0)  # images per second, start-up s

    monkeypatch.setattr(fer_core.probe, "measure_speed", fake_speed)
    st.cache_data.clear()  # no timing cached by an earlier test in this process
    at = _page()
    at.number_input(key="train_w_epochs").set_value(20).run()
    at.button(key="train_estimate").click().run()
    assert not at.exception, at.exception
    n_train = len(make_demo().split("Training")[1])
    text = " ".join(_texts(at.markdown))
    assert f"{format_seconds(n_train / 100)} per epoch" in text
    assert f"{format_seconds(20 * n_train / 100)} for 20 epochs" in text
    assert f"{format_seconds(12.0)}** of start-up" in text
    at.number_input(key="train_w_epochs").set_value(10).run()  # cached: no new timing
    assert f"{format_seconds(10 * n_train / 100)} for 10 epochs" in " ".join(_texts(at.markdown))
    assert len(calls) == 1


# ===================================== hostile run names, a crashing estimate


def test_train_page_escapes_run_names(env) -> None:
    """Markdown in run names: the Train page shows a hostile run name escaped in its
    subheader, its end-of-run box and the delete confirmation."""
    from streamlit.testing.v1 import AppTest

    from fer_core.text import escape_markdown

    name = HOSTILE_NAMES[1]
    runs.rename_run(make_tiny_run(env), name)
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception, at.exception
    at.button(key="train_delete").click().run()
    bodies = [e.value for kind in ("subheader", "success", "warning", "markdown", "caption")
              for e in getattr(at, kind)]
    assert not [b for b in bodies if "](https" in b], bodies
    assert any(escape_markdown(name) in b for b in (e.value for e in at.subheader))
    assert any(escape_markdown(name) in b for b in (e.value for e in at.success))
    assert any(escape_markdown(name) in b for b in (e.value for e in at.warning))


def test_train_page_estimate_survives_a_crash(env, tmp_path, monkeypatch) -> None:
    """Native crashes: "Estimate time" on the Train page never trains in the server: a
    crash of the timing process is an error message on the page."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    crashing_python(tmp_path / "crash", monkeypatch, sig="SIGABRT")
    st.cache_data.clear()
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    at.number_input(key="train_w_batch_size").set_value(33).run()
    at.button(key="train_estimate").click().run()
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert any("Could not time" in e and "crashed (SIGABRT)" in e for e in errors), errors


def _wait_for_end(run_id: str, root: Path) -> runs.RunInfo:
    deadline = time.monotonic() + JOB_TIMEOUT
    while time.monotonic() < deadline:
        info = runs.get_run(run_id, root)
        if not info.active and jobs.active_job(root) is None:
            return info
        time.sleep(0.5)
    pytest.fail(f"the job did not end in {JOB_TIMEOUT} s: {runs.get_run(run_id, root).status}\n"
                f"{jobs.job_status(run_id, root).log_tail}")


def test_the_tiny_run_finishes_and_the_runs_table_lists_it(tiny_job, monkeypatch):
    """Last in the file: by now the job started by `tiny_job` has (nearly) finished."""
    at, root = tiny_job
    _use_job_env(monkeypatch, root)
    run = runs.list_runs(root)[0]
    info = _wait_for_end(run.id, root)
    assert info.state == "finished", (info.status, jobs.job_status(run.id, root).log_tail)
    at.run()
    assert not at.exception, at.exception
    assert any("finished after 2 epochs" in s for s in _texts(at.success))
    table = at.dataframe[0].value
    row = table[table["id"] == run.id].iloc[0]
    history = runs.read_history(run.id, root)
    assert (row["status"], row["epochs"], row["model"]) == ("finished", "2/2", "mini_xception")
    assert row["best val accuracy"] == pytest.approx(
        round(100 * max(r["val_accuracy"] for r in history), 2))
    # the finished run's curves (drawn once, by the run browser) hold both epochs; the loss
    # is the data loss, mini-Xception's L2 penalty apart
    curves = json.loads(at.get("plotly_chart")[0].proto.spec)
    val_loss = next(t for t in curves["data"] if t["name"] == "val")
    assert val_loss["x"] == [1, 2]
    assert val_loss["y"] == [round(r["val_data_loss"], 4) for r in history]
    assert all(r["val_data_loss"] < r["val_loss"] for r in history)
    assert "logs" in at.code[0].value and run.id in at.code[0].value

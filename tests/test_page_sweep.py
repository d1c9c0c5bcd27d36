"""AppTest of the Train page's Sweep mode: a sweep started from the page runs in the
background as a job (a second job is refused), its trials fill the Sweeps section, it ends
with the summary, Optuna's plots and the best trial's config loadable into the form; a
sweep's Stop button ends it after the running trial's current batch."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import fer_core  # noqa: F401  (CPU flags before TensorFlow loads)
from fer_core import runs, sweep, sweep_jobs
from fer_core.data.demo import make_demo
from sample_files import csv_bytes

PAGE = str(Path(__file__).resolve().parents[1] / "app_pages" / "2_Train.py")
TIMEOUT = 60
SWEEP_TIMEOUT = 240


def _page() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    return at


def _texts(elements) -> list[str]:
    """The elements' texts, markdown escapes removed (names are escaped where drawn)."""
    return [e.value.replace("\\", "") for e in elements]


def _sweep_form(at: AppTest, *, epochs: int, trials: int, study: str) -> AppTest:
    """A tiny base config in the New run form, Sweep mode, the budget set."""
    at.number_input(key="train_w_opt_width").set_value(4)
    at.number_input(key="train_w_epochs").set_value(epochs)
    at.number_input(key="train_w_batch_size").set_value(32)
    at.toggle(key="train_w_aug_enabled").set_value(False)
    at.button_group(key="train_mode").set_value("Sweep").run()
    assert not at.exception, at.exception
    at.number_input(key="sweep_trials").set_value(trials)
    at.number_input(key="sweep_minutes").set_value(0)
    at.text_input(key="sweep_study_name").set_value(study).run()
    assert not at.exception, at.exception
    return at


def _wait_until_over(folder: Path) -> None:
    deadline = time.monotonic() + SWEEP_TIMEOUT
    while sweep_jobs.sweep_alive(folder) and time.monotonic() < deadline:
        time.sleep(1)
    assert not sweep_jobs.sweep_alive(folder), (folder / "job.log").read_text()[-2000:]


@pytest.fixture
def env(fer_dirs, monkeypatch, tmp_path):
    ds = make_demo(140, seed=5)
    data = tmp_path / "small.csv"
    data.write_bytes(csv_bytes(ds.images, ds.labels, ds.usage))
    monkeypatch.setenv("FER2013_CSV", str(data))
    monkeypatch.chdir(tmp_path)
    yield fer_dirs.runs
    for folder in sweep_jobs.list_sweeps(fer_dirs.runs):  # never leave one training
        sweep_jobs.stop_sweep(folder)
        _wait_until_over(folder)


def test_a_sweep_from_the_page_runs_as_a_job_and_its_best_config_loads_into_the_form(env):
    at = _sweep_form(_page(), epochs=2, trials=2, study="page-sweep")
    assert any("sampled by Optuna" in c for c in _texts(at.caption))
    at.button(key="sweep_start").click().run()
    assert not at.exception, at.exception
    folder = env / "sweeps" / "page-sweep"
    assert sweep_jobs.sweep_alive(folder)
    assert any("Sweep page-sweep: running" in s for s in _texts(at.subheader))
    assert at.button(key="sweep_stop")
    # One job at a time: a training run and a second sweep are both refused meanwhile.
    other = _sweep_form(_page(), epochs=2, trials=2, study="second")
    other.button(key="sweep_start").click().run()
    assert any("only one runs at a time" in e for e in _texts(other.error)), _texts(other.error)
    other.button_group(key="train_mode").set_value("One run").run()
    other.button(key="train_start").click().run()
    assert any("already running" in e for e in _texts(other.error))
    assert not (env / "sweeps" / "second").exists()

    _wait_until_over(folder)
    done = _page()
    markdown = " ".join(_texts(done.markdown))
    assert "study page-sweep: 2 trial(s)" in markdown and "best: trial" in markdown
    assert len(done.get("plotly_chart")) >= 3  # history, importances, parallel coordinates
    trials = [r for r in runs.list_runs(env) if r.config.sweep]
    assert sorted(r.config.sweep["trial"] for r in trials) == [0, 1]
    best = sweep.best_config(sweep.open_study(sweep.default_storage(env), "page-sweep"), env)
    done.button(key="sweep_load_best").click().run()
    assert not done.exception, done.exception
    assert done.number_input(key="train_w_learning_rate").value == pytest.approx(best.learning_rate)
    assert done.number_input(key="train_w_opt_width").value == best.model_kwargs.get("width", 8)


def test_stop_ends_a_sweep_after_the_running_trials_batch(env):
    at = _sweep_form(_page(), epochs=500, trials=3, study="stop-me")
    at.button(key="sweep_start").click().run()
    folder = env / "sweeps" / "stop-me"
    deadline = time.monotonic() + SWEEP_TIMEOUT
    while time.monotonic() < deadline and not any(
            r.active and r.epoch >= 1 for r in runs.list_runs(env)):
        time.sleep(0.5)
    page = _page()
    page.button(key="sweep_stop").click().run()
    assert not page.exception, page.exception
    assert sweep.stop_requested(folder)
    _wait_until_over(folder)
    summary = sweep_jobs.sweep_status(folder).summary
    assert summary["trials"] == 1 and summary["pruned"] == 1
    assert [r.state for r in runs.list_runs(env)] == ["stopped"]

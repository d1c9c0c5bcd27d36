"""Hyperparameter sweeps: an Optuna study whose trials are ordinary training runs.

A sweep is a plan (`SweepPlan`: the study, its storage, the base config, the search space
of `fer_core.sweep_space`, the trial count and the time budget) kept in a sweep folder
`<runs>/sweeps/<study>/` (`sweep.json`, `STOP` to end it, `summary.json` when done,
`job.log` for a background sweep). Workers (`run_worker`) share the study through its
storage: an SQLite file in the runs folder by default, any SQLAlchemy URL otherwise
(`postgresql://...`), so processes on one machine or on many add trials to one study.

Each trial is a run folder like any other (`fer_core.train.train`), its config recording
the study and trial number (`TrainConfig.sweep`); validation accuracy is reported to the
study after every epoch and a median pruner stops trials that trail the others (the run
ends "stopped", the trial "pruned"). The objective is the run's best validation accuracy
(PublicTest when the data has it). The first trial of a new study runs the base config's
own values, so the summary can say what the search gained over its starting point.

A budget is kept: no trial starts when the study already holds `trials` trials or when an
epoch no longer fits before the deadline, and the running trial is stopped at the
deadline (pruned, marked `stopped: budget`). A worker killed mid-trial leaves its trial
"running" until its heartbeat is older than the grace period; then the next trial any
worker starts marks it failed (Optuna's heartbeat, `RDBStorage(heartbeat_interval=...)`).
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fer_core import runs
from fer_core.config import TrainConfig
from fer_core.files import atomic_write
from fer_core.progress import best_val_accuracy
from fer_core.sweep_space import Space, apply, base_params, parse_space, suggest

SWEEPS_DIR = runs.SWEEPS_DIR
STORAGE_FILE = "sweeps.db"
PLAN_FILE = "sweep.json"
SUMMARY_FILE = "summary.json"
STOP_FILE = "STOP"
HEARTBEAT_ENV = "FER_SWEEP_HEARTBEAT_S"  # seconds between a worker's heartbeats (tests: 1)
HEARTBEAT_S = 30
GRACE_FACTOR = 3  # a trial whose heartbeat is older than this many beats belongs to a dead worker
STUDY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")

Log = Callable[[str], None]


class SweepError(ValueError):
    """A sweep cannot be planned, opened or run; the message says why."""


def check_study_name(name: str) -> str:
    """`name` when it can name a study and its folder (letters, digits, . _ -)."""
    if not isinstance(name, str) or not STUDY_NAME.fullmatch(name):
        raise SweepError(f"study name {name!r}: use 1-100 letters, digits, '.', '_' or '-', "
                         f"starting with a letter or digit")
    return name


def new_study_name() -> str:
    return time.strftime("sweep-%Y%m%d-%H%M%S")


def default_storage(runs_dir: str | os.PathLike | None = None) -> str:
    """The SQLite file under the runs folder (nothing to install)."""
    return f"sqlite:///{(runs.runs_root(runs_dir) / STORAGE_FILE).resolve()}"


def safe_url(url: str) -> str:
    """`url` with any password hidden (for logs, the page and summary files)."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a URL: say so rather than leak it
        return "<not a database URL>"


def heartbeat_seconds() -> int:
    try:
        return max(1, int(os.environ.get(HEARTBEAT_ENV, HEARTBEAT_S)))
    except ValueError:
        return HEARTBEAT_S


def _quiet_optuna() -> None:
    """Optuna's INFO lines and its "experimental" warnings (heartbeats) say nothing to a user."""
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def open_storage(url: str):
    """Optuna's RDBStorage for `url`, with heartbeats (dead workers' trials become failed)."""
    import optuna

    _quiet_optuna()
    beat = heartbeat_seconds()
    engine: dict[str, Any] = {}
    if url.startswith("sqlite"):
        engine = {"connect_args": {"timeout": 60}}  # workers wait for each other's writes
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=engine, heartbeat_interval=beat,
                                          grace_period=GRACE_FACTOR * beat)
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy and drivers raise many kinds
        raise SweepError(f"cannot open the study storage {safe_url(url)}: "
                         f"{type(exc).__name__}: {exc}") from None


def open_study(url: str, name: str, *, create: bool = False, seed: int | None = None,
               base: TrainConfig | None = None):
    """The study `name` in `url` (created when `create`); the sampler is TPE seeded by
    `seed` (each worker its own, or two would sample the same trials) and the pruner a
    median pruner (`pruner_for(base)`)."""
    import optuna

    storage = open_storage(url)
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=4)
    pruner = pruner_for(base)
    try:
        if create:
            return optuna.create_study(storage=storage, study_name=name, direction="maximize",
                                       sampler=sampler, pruner=pruner, load_if_exists=True)
        return optuna.load_study(study_name=name, storage=storage, sampler=sampler,
                                 pruner=pruner)
    except KeyError:
        raise SweepError(f"no study {name!r} in {safe_url(url)}") from None


def pruner_for(base: TrainConfig | None):
    """A median pruner that lets the first two trials run to the end, and compares a trial
    with the others only once it has trained a quarter of its epochs and is past the
    learning-rate warm-up: on FER2013 a warm-up epoch's accuracy says little (the shipped
    recipe at width 16 scored 18.8% after its warm-up epoch, 56.7% three epochs later)."""
    import optuna

    warm = 0
    if base is not None and base.schedule == "cosine":
        warm = base.warmup_epochs
    epochs = base.epochs if base is not None else 4
    return optuna.pruners.MedianPruner(n_startup_trials=2,
                                       n_warmup_steps=max(1, warm + 1, epochs // 4))


# ---------------------------------------------------------------- the plan


@dataclass(frozen=True)
class SweepPlan:
    """Everything a worker needs, written to the sweep folder as `sweep.json`."""

    study: str
    storage: str
    base: TrainConfig
    space: Space
    trials: int
    deadline: float | None  # wall-clock time (time.time()) by which the sweep ends
    runs_dir: Path
    seed: int = 0
    model_defaults: dict[str, Any] | None = None
    created_at: float = 0.0  # when it was planned (the budget counts from here)

    @property
    def folder(self) -> Path:
        return sweep_folder(self.study, self.runs_dir)

    def to_dict(self) -> dict[str, Any]:
        return {"study": self.study, "storage": self.storage, "base": self.base.to_dict(),
                "space": self.space.to_json(), "trials": self.trials, "deadline": self.deadline,
                "runs_dir": str(self.runs_dir), "seed": self.seed,
                "model_defaults": self.model_defaults or {}, "created_at": self.created_at}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SweepPlan:
        base = TrainConfig.from_dict(data["base"])
        defaults = data.get("model_defaults") or {}
        return cls(study=data["study"], storage=data["storage"], base=base,
                   space=parse_space(data["space"], base, defaults, source=PLAN_FILE),
                   trials=int(data["trials"]), deadline=data.get("deadline"),
                   runs_dir=Path(data["runs_dir"]), seed=int(data.get("seed", 0)),
                   model_defaults=defaults, created_at=float(data.get("created_at") or 0.0))


def sweep_folder(study: str, runs_dir: str | os.PathLike | None = None) -> Path:
    return runs.runs_root(runs_dir) / SWEEPS_DIR / check_study_name(study)


def make_plan(base: TrainConfig, space: Space, *, trials: int, minutes: float | None,
              storage: str | None = None, study: str | None = None,
              runs_dir: str | os.PathLike | None = None, seed: int = 0,
              model_defaults: dict[str, Any] | None = None) -> SweepPlan:
    """A checked plan: the base config takes the space's fixed values and its own values
    of the searched ones (so a bad combination fails here, not in every trial)."""
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise SweepError(f"trials must be a whole number >= 1, got {trials!r}")
    if minutes is not None and not (isinstance(minutes, (int, float)) and minutes > 0
                                    and math.isfinite(minutes)):
        raise SweepError(f"minutes must be a positive number, got {minutes!r}")
    name = check_study_name(study or new_study_name())
    base = apply(base, space.fixed).replace(sweep=None)
    apply(base, base_params(base, space, model_defaults or {}))
    root = runs.runs_root(runs_dir)
    now = time.time()
    return SweepPlan(study=name, storage=storage or default_storage(root), base=base,
                     space=space, trials=trials,
                     deadline=None if minutes is None else now + 60 * minutes,
                     runs_dir=root, seed=seed, model_defaults=dict(model_defaults or {}),
                     created_at=now)


def write_plan(plan: SweepPlan) -> Path:
    """Create the sweep folder with `sweep.json` (the study is created and its first trial,
    the base config, queued when the study is new); returns the folder."""
    folder = plan.folder
    folder.mkdir(parents=True, exist_ok=True)
    (folder / STOP_FILE).unlink(missing_ok=True)
    (folder / SUMMARY_FILE).unlink(missing_ok=True)
    study = open_study(plan.storage, plan.study, create=True, seed=plan.seed)
    if not study.trials:
        study.set_user_attr("base_config", plan.base.to_dict())
        study.set_user_attr("space", plan.space.to_json())
        study.enqueue_trial(base_params(plan.base, plan.space, plan.model_defaults or {}),
                            user_attrs={"baseline": True})
    atomic_write(folder / PLAN_FILE, json.dumps(plan.to_dict(), indent=2))
    return folder


def read_plan(folder: str | os.PathLike) -> SweepPlan:
    path = Path(folder) / PLAN_FILE
    try:
        return SweepPlan.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SweepError(f"cannot read the sweep plan {path}: {exc}") from None


def request_stop(folder: str | os.PathLike) -> None:
    """Ask every worker of this sweep folder to stop: the running trials end after their
    current batch and no new trial starts."""
    (Path(folder) / STOP_FILE).touch()


def stop_requested(folder: str | os.PathLike) -> bool:
    return (Path(folder) / STOP_FILE).exists()


# ---------------------------------------------------------------- workers


class _Objective:
    """One trial: sample, train a run, report each epoch, prune or stop on request."""

    def __init__(self, plan: SweepPlan, dataset: Any, log: Log, worker: int = 0) -> None:
        self.plan, self.dataset, self.log, self.worker = plan, dataset, log, worker
        self.first_epoch_s: list[float] = []  # start of a trial to its first epoch's end

    def __call__(self, trial) -> float:
        import optuna

        from fer_core.train import train

        plan = self.plan
        values = {**plan.space.fixed, **suggest(trial, plan.space)}
        config = apply(plan.base, values).replace(
            name=f"{plan.study} #{trial.number}",
            sweep={"study": plan.study, "trial": trial.number})
        state: dict[str, Any] = {"run_dir": None, "why": None, "t0": time.monotonic()}
        trial.set_user_attr("worker", {"host": socket.gethostname(), "pid": os.getpid(),
                                       "index": self.worker})

        def on_event(event: dict[str, Any]) -> None:
            kind = event["kind"]
            if kind == "started":
                state["run_dir"] = runs.run_path(event["run_id"], plan.runs_dir)
                trial.set_user_attr("run_id", event["run_id"])
            elif kind == "epoch":
                if event["epoch"] == 1:
                    self.first_epoch_s.append(time.monotonic() - state["t0"])
                value = event.get("val_accuracy")
                if value is not None and math.isfinite(value):
                    trial.report(value, event["epoch"])
                    last = event["epoch"] >= config.epochs
                    if state["why"] is None and not last and trial.should_prune():
                        self._stop(state, "pruned")
            if state["why"] is None and state["run_dir"] is not None:
                if stop_requested(plan.folder):
                    self._stop(state, "stop requested")
                elif plan.deadline is not None and time.time() >= plan.deadline:
                    self._stop(state, "budget")

        try:
            info = train(config, runs_dir=plan.runs_dir, dataset=self.dataset, on_event=on_event)
        except Exception as exc:
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}")
            self.log(f"trial {trial.number}: failed: {type(exc).__name__}: {exc}")
            raise
        history = runs.read_history(info.dir)
        best = best_val_accuracy(history)
        trial.set_user_attr("epochs", len(history))
        trial.set_user_attr("run_state", info.state)
        if info.state == "failed":
            trial.set_user_attr("error", info.error or "the run failed")
            self.log(f"trial {trial.number}: failed: {info.error}")
            raise RuntimeError(info.error or "the run failed")
        if state["why"] is not None or info.state == "stopped":
            why = state["why"] or "stop requested"
            trial.set_user_attr("stopped", why)
            shown = f"{100 * best:.2f}%" if best is not None else "no epoch"
            self.log(f"trial {trial.number}: {why} after {len(history)} epoch(s) "
                     f"(best {shown}), run {info.id}")
            raise optuna.TrialPruned(f"{why} after {len(history)} epoch(s)")
        if best is None:
            raise RuntimeError("the run finished without a validation accuracy")
        self.log(f"trial {trial.number}: {100 * best:.2f}% after {len(history)} epoch(s), "
                 f"run {info.id}")
        return best

    def _stop(self, state: dict[str, Any], why: str) -> None:
        state["why"] = why
        runs.request_stop(state["run_dir"])

    def epoch_fits(self, deadline: float | None) -> bool:
        """Whether a new trial can finish an epoch before `deadline` (by this worker's own
        trials so far; the first trial always starts)."""
        if deadline is None or not self.first_epoch_s:
            return deadline is None or time.time() < deadline
        return time.time() + statistics.median(self.first_epoch_s) <= deadline


def trials_left(study, plan: SweepPlan) -> int:
    """Trials still to start: the plan's count less every trial the study holds."""
    return plan.trials - len(study.get_trials(deepcopy=False))


def run_worker(plan: SweepPlan, *, worker: int = 0, dataset: Any = None,
               log: Log = print) -> None:
    """Add trials to the study until the plan's count is reached, the budget runs out or
    a stop is requested. Trials of other workers (here or elsewhere) count too."""
    from fer_core.data import load_dataset

    study = open_study(plan.storage, plan.study, seed=plan.seed + 1000 * worker,
                       base=plan.base)
    dataset = dataset if dataset is not None else load_dataset(plan.base.data)
    objective = _Objective(plan, dataset, log, worker)
    while True:
        if stop_requested(plan.folder):
            log(f"worker {worker}: stop requested")
            return
        if trials_left(study, plan) <= 0:
            log(f"worker {worker}: the study holds {plan.trials} trial(s)")
            return
        if not objective.epoch_fits(plan.deadline):
            log(f"worker {worker}: the time budget is spent")
            return
        study.optimize(objective, n_trials=1, catch=(Exception,), gc_after_trial=True)
        _clear_session()


def _clear_session() -> None:
    """Free the finished trial's graph and weights before the next one builds its own."""
    import keras

    keras.backend.clear_session()


# ---------------------------------------------------------------- results


def trial_rows(study) -> list[dict[str, Any]]:
    """One row per trial: number, state, value, epochs, minutes, why it stopped, run, params."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        end = t.datetime_complete.timestamp() if t.datetime_complete else time.time()
        minutes = (end - t.datetime_start.timestamp()) / 60 if t.datetime_start else None
        value = t.value
        if value is None and t.intermediate_values:
            value = max(t.intermediate_values.values())
        rows.append({"trial": t.number, "state": t.state.name.lower(),
                     "val_accuracy": value, "epochs": t.user_attrs.get("epochs"),
                     "minutes": None if minutes is None else round(minutes, 2),
                     "note": _note(t), "run_id": t.user_attrs.get("run_id"),
                     **{f"param:{k}": v for k, v in t.params.items()}})
    return rows


def _note(t) -> str:
    why = t.user_attrs.get("stopped") or t.user_attrs.get("error")
    if t.state.name == "FAIL" and not why:
        why = "worker died (no heartbeat)"
    return "; ".join(p for p in ("base config" if t.user_attrs.get("baseline") else "", why) if p)


def _complete(study) -> list:
    return [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]


def _best(study):
    """The completed trial of the highest value, or None."""
    return max(_complete(study), key=lambda t: t.value, default=None)


def summarize(study, plan: SweepPlan | None = None) -> dict[str, Any]:
    """What the sweep found and what it cost."""
    trials = study.get_trials(deepcopy=False)
    counts = {state: sum(t.state.name.lower() == state for t in trials)
              for state in ("complete", "pruned", "fail", "running", "waiting")}
    starts = [t.datetime_start.timestamp() for t in trials if t.datetime_start]
    ends = [t.datetime_complete.timestamp() for t in trials if t.datetime_complete]
    spent = sum((t.datetime_complete - t.datetime_start).total_seconds()
                for t in trials if t.datetime_start and t.datetime_complete)
    best = _best(study)
    base = next((t for t in trials if t.user_attrs.get("baseline")), None)
    out: dict[str, Any] = {
        "study": study.study_name, "storage": safe_url(plan.storage) if plan else None,
        "trials": len(trials), **counts,
        "minutes": round((max(ends) - min(starts)) / 60, 2) if starts and ends else 0.0,
        "trial_minutes": round(spent / 60, 2),
        "best": None if best is None else {
            "trial": best.number, "val_accuracy": best.value, "params": best.params,
            "run_id": best.user_attrs.get("run_id"), "epochs": best.user_attrs.get("epochs")},
        "baseline": None if base is None else {
            "trial": base.number, "state": base.state.name.lower(), "val_accuracy": base.value,
            "run_id": base.user_attrs.get("run_id")},
    }
    if plan is not None and plan.deadline is not None:
        out["budget_end"] = plan.deadline
    return out


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """The summary in a few printed lines."""
    lines = [f"study {summary['study']}: {summary['trials']} trial(s): "
             f"{summary['complete']} complete, {summary['pruned']} pruned or stopped, "
             f"{summary['fail']} failed; {summary['minutes']:.1f} min wall clock, "
             f"{summary['trial_minutes']:.1f} min of training"]
    best, base = summary["best"], summary["baseline"]
    if best is None:
        lines.append("no trial completed")
    else:
        lines.append(f"best: trial {best['trial']}, {100 * best['val_accuracy']:.2f}% validation "
                     f"accuracy, run {best['run_id']}")
        lines.append("  params: " + json.dumps(best["params"], sort_keys=True))
    if base is not None and base.get("val_accuracy") is not None:
        complete = base["state"] == "complete"
        gain = ""
        if best is not None and complete:
            gain = ("; no trial beat it" if best["trial"] == base["trial"] else
                    f"; the best trial gains "
                    f"{100 * (best['val_accuracy'] - base['val_accuracy']):+.2f} points")
        state = "" if complete else f", {base['state']}"
        lines.append(f"base config (trial {base['trial']}{state}): "
                     f"{100 * base['val_accuracy']:.2f}%{gain}")
    return lines


def write_summary(plan: SweepPlan) -> dict[str, Any]:
    """Mark dead workers' trials failed (heartbeat older than the grace period), then write
    and return the summary."""
    import optuna

    study = open_study(plan.storage, plan.study)
    optuna.storages.fail_stale_trials(study)
    summary = summarize(study, plan)
    atomic_write(plan.folder / SUMMARY_FILE, json.dumps(summary, indent=2, default=str))
    return summary


def figures(study) -> dict[str, Any]:
    """Optuna's plotly figures of a study, by title; a title maps to a sentence instead
    where the study cannot draw it yet (importances need two completed trials)."""
    import optuna.visualization as vis
    from optuna.importance import PedAnovaImportanceEvaluator

    _quiet_optuna()
    complete = _complete(study)
    out: dict[str, Any] = {}
    if not complete:
        return {"Optimisation history": "No trial has completed yet."}
    out["Optimisation history"] = vis.plot_optimization_history(study)
    if len(complete) < 2 or not complete[0].params:
        out["Parameter importances"] = "Importances need at least two completed trials."
    else:
        try:  # PED-ANOVA: numpy only (the default fANOVA would need scikit-learn)
            out["Parameter importances"] = vis.plot_param_importances(
                study, evaluator=PedAnovaImportanceEvaluator())
        except (ValueError, RuntimeError, ZeroDivisionError) as exc:
            out["Parameter importances"] = f"Importances cannot be computed yet: {exc}"
    out["Parallel coordinates"] = vis.plot_parallel_coordinate(study)
    out["Validation accuracy per epoch"] = vis.plot_intermediate_values(study)
    return out


def best_config(study, runs_dir: str | os.PathLike | None = None) -> TrainConfig | None:
    """The config of the best completed trial's run (None before one completes or when its
    run folder is not in this runs folder: another machine's trial)."""
    best = _best(study)
    run_id = best.user_attrs.get("run_id") if best is not None else None
    try:
        return runs.get_run(run_id, runs_dir).config if run_id else None
    except runs.RunError:
        return None


def log_to(stream=sys.stdout) -> Log:
    def log(line: str) -> None:
        print(time.strftime("%H:%M:%S ") + line, file=stream, flush=True)
    return log

"""`python -m fer_core sweep --data D --trials N [--minutes M] [--storage URL] [--study NAME]
[--space FILE.json] [--workers K]`: search hyperparameters with an Optuna study whose trials
are ordinary runs (`fer_core.sweep`).

The base config is `--preset` (the shipped recipe, `default`, unless told) or `--config`,
with `--data` and `--epochs` on top; the space is the declared default or `--space`'s file
(`fer_core.sweep_space`). `--workers K` trains K trials at once on this machine, each in
its own process with its share of the cores; more machines join the same study by running
the same command with the same `--storage` and `--study`. Ctrl-C (or SIGTERM) stops the
running trials after their current batch and starts no new one; a second Ctrl-C aborts.
The sweep holds the runs folder's training lock: it is a job like a training run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", help="dataset: fer2013.csv(.gz/.zip), an image folder or "
                                       "'demo' (default: the base config's)")
    parser.add_argument("--trials", type=int, default=20,
                        help="trials the study holds when the sweep ends, every worker's "
                             "counted (default 20)")
    parser.add_argument("--minutes", type=float,
                        help="time budget: no trial starts that cannot finish an epoch by "
                             "then, and the running ones are stopped at the end")
    parser.add_argument("--storage", help="SQLAlchemy URL of the study's database (default: "
                                          "sqlite file sweeps.db in the runs folder); "
                                          "postgresql://... lets several machines share it")
    parser.add_argument("--study", help="study name (default sweep-<date>-<time>); an "
                                        "existing study is continued")
    parser.add_argument("--space", type=Path, metavar="FILE.json",
                        help="search space file (default: the declared ranges; see "
                             "fer_core/sweep_space.py)")
    parser.add_argument("--workers", type=int, default=1,
                        help="trials trained at once on this machine (default 1)")
    base = parser.add_mutually_exclusive_group()
    base.add_argument("--preset", default=None,
                      help="base config preset (default: 'default', the shipped recipe)")
    base.add_argument("--config", type=Path, metavar="FILE",
                      help="base config JSON (e.g. a run's config.json) instead of a preset")
    parser.add_argument("--epochs", type=int, help="epochs of each trial (default: the base's)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampler")
    parser.add_argument("--runs-dir", type=Path, help="runs folder (default $FER_RUNS_DIR or ./runs)")
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads per worker (0: the cores shared out among workers)")
    parser.add_argument("--json", action="store_true",
                        help="print the summary as one JSON object on the last line")
    parser.add_argument("--plan", type=Path, help=argparse.SUPPRESS)  # a prepared sweep folder
    parser.add_argument("--worker-index", type=int, default=None, help=argparse.SUPPRESS)


def _plan(args: argparse.Namespace):
    from fer_core.config import TrainConfig, config_from_preset
    from fer_core.models import list_models
    from fer_core.sweep import make_plan
    from fer_core.sweep_space import default_space, load_space

    base = TrainConfig.load(args.config) if args.config else \
        config_from_preset(args.preset or "default")
    changes: dict[str, Any] = {"name": ""}
    if args.data:
        changes["data"] = args.data
    if args.epochs is not None:
        changes["epochs"] = args.epochs
    base = base.replace(**changes)
    from fer_core.train import check_config

    check_config(base)
    defaults = {info.name: info.defaults for info in list_models()}.get(base.model, {})
    space = load_space(args.space, base, defaults) if args.space else default_space(base, defaults)
    return make_plan(base, space, trials=args.trials, minutes=args.minutes,
                     storage=args.storage, study=args.study, runs_dir=args.runs_dir,
                     seed=args.seed, model_defaults=defaults)


def run(args: argparse.Namespace) -> int:
    from fer_core import runs, sweep, sweep_jobs
    from fer_core.config import ConfigError
    from fer_core.processes import holds_inherited_lock
    from fer_core.sweep_space import SpaceError

    if args.workers < 1:
        print("error: --workers must be 1 or more", file=sys.stderr)
        return 2
    log = sweep.log_to(sys.stdout)
    try:
        plan = sweep.read_plan(args.plan) if args.plan else _plan(args)
    except (ConfigError, SpaceError, sweep.SweepError, runs.RunError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    lock = None
    if not holds_inherited_lock():  # a background sweep's process inherited it
        try:
            lock = runs.acquire_lock(plan.runs_dir)
        except (runs.JobBusy, runs.RunError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    try:
        if args.worker_index is not None:  # one of --workers' processes
            _install_stop_handlers(plan.folder)
            return _work(plan, args.worker_index, args.threads, log)
        try:
            folder = sweep.write_plan(plan) if not args.plan else plan.folder
        except sweep.SweepError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        sweep_jobs.write_pid(folder, os.getpid())
        _install_stop_handlers(folder)
        _announce(plan, args.workers, log)
        if args.workers == 1:
            code = _work(plan, 0, args.threads, log)
        else:
            code = _spawn_workers(plan, args.workers, args.threads, lock)
        summary = sweep.write_summary(plan)
        for line in sweep.summary_lines(summary):
            print(line)
        print(f"  sweep folder: {folder}")
        if args.json:
            print(json.dumps(summary, default=str))
        return code
    except KeyboardInterrupt:
        print("aborted", file=sys.stderr)
        return 130
    finally:
        if lock is not None:
            lock.release()


def _announce(plan, workers: int, log) -> None:
    from fer_core.sweep import safe_url

    budget = "no time limit"
    if plan.deadline is not None:
        import time

        budget = f"until {time.strftime('%H:%M:%S', time.localtime(plan.deadline))}"
    log(f"study {plan.study} in {safe_url(plan.storage)}: up to {plan.trials} trial(s), "
        f"{budget}, {workers} worker(s) here; base {plan.base.model}, {plan.base.epochs} "
        f"epochs on {plan.base.data}")
    for line in plan.space.describe():
        log(f"  {line}")


def _work(plan, index: int, threads: int, log) -> int:
    from fer_core import sweep
    from fer_core.train import configure_threads

    configure_threads(threads or None)
    try:
        sweep.run_worker(plan, worker=index, log=log)
    except (ValueError, OSError) as exc:  # data that cannot load, a storage that went away
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _spawn_workers(plan, workers: int, threads: int, lock) -> int:
    """K worker processes sharing this process's runs lock; waits for all of them."""
    from fer_core.processes import spawn_python

    per_worker = threads or max(1, (os.cpu_count() or 1) // workers)
    procs = [spawn_python(["-m", "fer_core", "sweep", "--plan", str(plan.folder),
                           "--worker-index", str(i), "--threads", str(per_worker)],
                          lock_fd=_lock_fd(lock), detached=False)
             for i in range(workers)]
    codes = []
    for proc in procs:
        while True:
            try:
                codes.append(proc.wait())
                break
            except KeyboardInterrupt:  # the second Ctrl-C: take the workers down with us
                for other in procs:
                    other.kill()
                raise
    for index, code in enumerate(codes):
        if code:
            how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
            print(f"worker {index} (pid {procs[index].pid}) {how}; its running trial is "
                  f"marked failed once its heartbeat is stale", file=sys.stderr)
    return 1 if any(codes) else 0


def _lock_fd(lock) -> int | None:
    """The runs lock's descriptor the workers inherit: ours, or the one we inherited (a
    background sweep), so the lock outlives this process while any worker lives."""
    from fer_core.processes import LOCK_FD_ENV

    if lock is not None:
        return lock.fd
    inherited = os.environ.get(LOCK_FD_ENV)
    return int(inherited) if inherited and inherited.isdigit() else None


def _install_stop_handlers(folder: Path) -> None:
    """First Ctrl-C / SIGTERM: the sweep's STOP file; second Ctrl-C: abort."""
    from fer_core import sweep

    state = {"stopping": False}

    def handler(signum, frame):
        if state["stopping"]:
            raise KeyboardInterrupt
        state["stopping"] = True
        sweep.request_stop(folder)
        print("\nstopping the sweep after the running trials' current batch (Ctrl-C again "
              "to abort)", file=sys.stderr, flush=True)

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)

"""`python -m fer_core train`: train a model into a new run folder, or resume one.

Every TrainConfig field is a flag (`--learning-rate 3e-4`, `--model-kwargs '{"width": 16}'`,
`--augment none`); values are layered: `--preset` < `--config file.json` < flags.
Ctrl-C (or SIGTERM) stops gracefully after the current batch; a second Ctrl-C aborts.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from fer_core.config import (
    FIELD_NAMES,
    PRESETS,
    TRAIN_PARAMS,
    ConfigError,
    TrainConfig,
    config_from_preset,
)
from fer_core.params import Param

_TYPES = {"int": int, "float": float}
# Fields the sweep writes, never a person: a run trained by hand is no trial of a study.
NOT_FLAGS: tuple[str, ...] = ("sweep",)


def _json_object(text: str) -> dict | None:
    if text.strip().lower() in ("none", "null", "off"):
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not a JSON object: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object like '{{\"width\": 16}}', got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_argument_group("where the settings come from")
    source.add_argument("--preset", choices=sorted(PRESETS), help="start from a named preset")
    source.add_argument("--config", type=Path, metavar="FILE",
                        help="a config JSON file (e.g. a run's config.json)")
    runs_group = parser.add_argument_group("runs")
    runs_group.add_argument("--runs-dir", type=Path, help="runs folder (default $FER_RUNS_DIR or ./runs)")
    runs_group.add_argument("--resume", metavar="RUN_ID",
                            help="continue a stopped/failed/killed run (only --epochs may change)")
    runs_group.add_argument("--run-dir", type=Path, help=argparse.SUPPRESS)  # background jobs
    machine = parser.add_argument_group("machine")
    machine.add_argument("--threads", type=int, default=0, help="CPU threads (0 = all cores)")
    machine.add_argument("--strategy", default="auto",
                         choices=("auto", "default", "mirrored", "multiworker"),
                         help="auto: several GPUs -> Mirrored, TF_CONFIG -> MultiWorkerMirrored")
    machine.add_argument("--quiet", action="store_true", help="no progress bar")
    fields = parser.add_argument_group("hyperparameters (TrainConfig fields)")
    for name, spec in TRAIN_PARAMS.items():
        if name in NOT_FLAGS:
            continue
        fields.add_argument("--" + name.replace("_", "-"), dest=name, default=argparse.SUPPRESS,
                            **_flag(spec))


def _flag(spec: Param) -> dict[str, Any]:
    """argparse keywords of one TrainConfig field's flag, from its declaration."""
    if spec.kind == "object":
        return {"type": _json_object, "metavar": "JSON", "help": spec.help}
    if spec.kind == "choice":
        return {"choices": spec.choices, "help": spec.help}
    if spec.kind == "bool":
        return {"action": argparse.BooleanOptionalAction, "help": spec.help}
    valid = spec.describe()
    return {"type": _TYPES.get(spec.kind, str),
            "help": f"{spec.help} (valid: {valid})" if valid else spec.help}


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """preset < --config file < explicit flags."""
    values: dict[str, Any] = {}
    if args.preset:
        values.update(config_from_preset(args.preset).to_dict())
    if args.config:
        values.update(TrainConfig.load(args.config).to_dict(), sweep=None)
    values.update({name: getattr(args, name) for name in FIELD_NAMES if hasattr(args, name)})
    return TrainConfig.from_dict(values)


def _install_stop_handlers(state: dict[str, Any]) -> None:
    """First Ctrl-C / SIGTERM: graceful stop after the batch; second Ctrl-C: abort."""
    from fer_core import runs

    def handler(signum, frame):
        if state.get("run_dir") is None or state.get("stopping"):
            raise KeyboardInterrupt
        state["stopping"] = True
        runs.request_stop(state["run_dir"])
        print("\nstopping after the current batch (Ctrl-C again to abort)", file=sys.stderr,
              flush=True)

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def run(args: argparse.Namespace) -> int:
    from fer_core import runs

    try:
        config = None if (args.resume or args.run_dir) else config_from_args(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    changed = [n for n in FIELD_NAMES if hasattr(args, n) and n != "epochs"]
    if (args.resume or args.run_dir) and (changed or args.preset or args.config):
        print("error: a resumed run keeps its config; only --epochs may change", file=sys.stderr)
        return 2

    lock = None
    from fer_core.processes import holds_inherited_lock

    if not holds_inherited_lock():  # a background job inherited the lock already
        try:
            lock = runs.acquire_lock(args.runs_dir)
        except runs.JobBusy as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        except runs.RunError as exc:  # the runs folder cannot be created or written
            print(f"error: {exc}", file=sys.stderr)
            return 2
    try:
        from fer_core import train as trainer  # TensorFlow loads here

        trainer.configure_threads(args.threads)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    state: dict[str, Any] = {"run_dir": None}
    _install_stop_handlers(state)

    def on_event(event: dict[str, Any]) -> None:
        if event["kind"] in ("started", "resumed"):
            state["run_dir"] = runs.run_path(event["run_id"], args.runs_dir)
            if lock is not None:
                lock.write_holder(os.getpid(), event["run_id"])
            print(f"run {event['run_id']}: {event['model']} ({event['params']:,} parameters), "
                  f"{event['n_train']} training / {event['n_val']} validation images "
                  f"({event['val_split']}), epochs {event['epoch'] + 1}..{event['epochs']}",
                  flush=True)

    verbose = 0 if args.quiet else (1 if sys.stdout.isatty() else 2)
    epochs = getattr(args, "epochs", None)
    try:
        if args.run_dir:
            state["run_dir"] = args.run_dir
            info = trainer.train_run(args.run_dir, strategy=args.strategy, verbose=verbose,
                                     epochs=epochs, on_event=on_event)
        elif args.resume:
            state["run_dir"] = runs.run_path(args.resume, args.runs_dir)
            info = trainer.resume(args.resume, runs_dir=args.runs_dir, strategy=args.strategy,
                                  epochs=epochs, verbose=verbose, on_event=on_event)
        else:
            info = trainer.train(config, runs_dir=args.runs_dir, strategy=args.strategy,
                                 verbose=verbose, on_event=on_event)
    except KeyboardInterrupt:
        print("aborted", file=sys.stderr)
        return 130
    except (ValueError, OSError) as exc:  # ConfigError, DataError, RunError, missing files
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if lock is not None:
            lock.release()
    best = info.status.get("best_value")
    best_text = f", best {info.status.get('monitor')} {best:.4f} (epoch {info.status.get('best_epoch')})" \
        if best is not None else ""
    print(f"run {info.id}: {info.state} after {info.epoch}/{info.epochs} epochs{best_text}")
    if info.error:
        print(f"  {info.error}")
    print(f"  folder: {info.dir}")
    return 1 if info.state == "failed" else 0

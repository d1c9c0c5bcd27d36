"""`python -m fer_core export RUN_ID [--to models/default.keras]`: ship a run's model.

Writes the run's best or last weights, or the mean of both (`--weights mean`), as a `.keras`
file without optimizer state, and beside it `<name>.config.json`: the run's TrainConfig with
model options equal to the builder's defaults left out (as every config records them), so
the file says how it was made.
By default the target is the app's `default` model.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fer_core import catalog, runs
from fer_core.config import changed_options
from fer_core.paths import DEFAULT_MODEL_PATH


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="run id")
    parser.add_argument("--weights", choices=("best", "last", "mean"), default="best",
                        help="the checkpoint best on validation, the last one, or the mean of "
                             "both (default: best)")
    parser.add_argument("--to", type=Path, default=DEFAULT_MODEL_PATH,
                        help=f"target .keras file (default {DEFAULT_MODEL_PATH})")
    parser.add_argument("--runs-dir", type=Path, help="runs folder (default $FER_RUNS_DIR or ./runs)")


def config_path_for(model_path: Path) -> Path:
    """`models/default.keras` -> `models/default.config.json`."""
    return model_path.with_name(f"{model_path.stem}.config.json")


def run(args: argparse.Namespace) -> int:
    from fer_core.models import export_model, list_models

    try:
        info = runs.get_run(args.run, args.runs_dir)
        if info.config is None:
            raise runs.RunError(f"run {info.id} has no readable config.json to export "
                                f"({info.problem})")
        wanted = {"best": ["best"], "last": ["last"], "mean": ["best", "last"]}[args.weights]
        paths = [catalog.checkpoint(info, w).path for w in wanted]
        defaults = {m.name: m.defaults for m in list_models()}.get(info.config.model, {})
        config = info.config.replace(
            model_kwargs=changed_options(info.config.model_kwargs, defaults))
        target = export_model(paths[0], args.to, mean_with=paths[1:])
        runs.write_json(config_path_for(target), config.to_dict())
    except (ValueError, OSError) as exc:  # RunError, a model that does not load, disk errors
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"exported {args.weights} weights of run {info.id} to {target} "
          f"({target.stat().st_size / 2**20:.1f} MB) and {config_path_for(target).name}")
    return 0

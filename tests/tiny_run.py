"""A tiny run trained by `fer_core.train` on a small demo set, shared by the evaluation tests.

Trains once per test process (about 10 s) and copies the finished run folder into each runs
folder asked for, so every test gets its own runs without training again (`conftest.tiny_run`
is that copy as a fixture). `tiny_config` is the settings of the one-epoch trainings that the
fault tests run on `conftest.small_demo`.
"""

from __future__ import annotations

import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

import fer_core  # noqa: F401  (CPU flags before TensorFlow loads)
from fer_core import runs
from fer_core.config import TrainConfig
from fer_core.data.demo import make_demo

DEMO_N = 350
DEMO_SEED = 3


@lru_cache(maxsize=1)
def demo():
    return make_demo(DEMO_N, seed=DEMO_SEED)


@lru_cache(maxsize=1)
def _trained_run() -> runs.RunInfo:
    from fer_core.train import train

    config = TrainConfig(name="tiny", model="fernet", model_kwargs={"width": 4, "convs": 1},
                         data="demo", epochs=4, batch_size=8, learning_rate=3e-3,
                         schedule="none", augment=None, early_stop_patience=0)
    info = train(config, runs_dir=tempfile.mkdtemp(prefix="fer-tiny-runs-"), dataset=demo())
    assert info.state == "finished" and info.best_model_path is not None, info.error
    return info


def make_tiny_run(runs_dir: Path, name: str = "tiny") -> runs.RunInfo:
    """A finished run in `runs_dir` (a copy of the trained one, with its own id and name)."""
    source = _trained_run()
    target = Path(runs_dir) / f"{source.id}-{name}"
    shutil.copytree(source.dir, target, ignore=shutil.ignore_patterns("eval", ".*"))
    (target / "eval").mkdir()
    return runs.rename_run(target, name)


def model_file() -> Path:
    """The tiny run's best weights (a .keras file)."""
    return _trained_run().best_model_path


def tiny_config(**changes) -> TrainConfig:
    """A 4-filter mini-Xception without augmentation, schedule or early stop, on the demo set."""
    base = {"model": "mini_xception", "model_kwargs": {"width": 4}, "batch_size": 32,
            "augment": None, "early_stop_patience": 0, "schedule": "none", "data": "demo"}
    return TrainConfig(**{**base, **changes})

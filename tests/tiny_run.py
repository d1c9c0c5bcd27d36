"""A tiny trained run on the demo set, shared by the evaluation tests (not a test module).

Trains once per test process (a few seconds) and copies the weights into each runs folder
asked for, so every test gets its own folder without training again.
"""

from __future__ import annotations

import shutil
from functools import lru_cache
from pathlib import Path

import numpy as np

import fer_core  # noqa: F401  (CPU flags before TensorFlow loads)
from fer_core import runs
from fer_core.config import TrainConfig
from fer_core.demo import make_demo

DEMO_N = 350
DEMO_SEED = 3
MODEL = "fernet"
MODEL_KWARGS = {"width": 4, "convs": 1}


@lru_cache(maxsize=1)
def demo():
    return make_demo(DEMO_N, seed=DEMO_SEED)


@lru_cache(maxsize=1)
def _trained_model_file() -> Path:
    """Fit the tiny model inline with keras and save it in a temporary folder."""
    import tempfile

    import keras

    from fer_core.models import create_model

    keras.utils.set_random_seed(0)
    images, labels = demo().split("Training")
    model = create_model(MODEL, **MODEL_KWARGS)
    for layer in model.layers:  # a few dozen steps only: let batch-norm statistics catch up
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.8
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(images[..., None].astype(np.float32), labels, epochs=4, batch_size=32, verbose=0)
    path = Path(tempfile.mkdtemp(prefix="fer-tiny-")) / "tiny.keras"
    model.save(path)
    return path


def make_tiny_run(runs_dir: Path, name: str = "tiny") -> runs.RunInfo:
    """A finished run folder in `runs_dir` holding the tiny model as weights/best.keras."""
    config = TrainConfig(name=name, model=MODEL, model_kwargs=dict(MODEL_KWARGS), epochs=4,
                         batch_size=32, data="demo", early_stop_patience=0)
    info = runs.create_run(config, runs_dir)
    shutil.copyfile(_trained_model_file(), info.dir / "weights" / "best.keras")
    runs.update_status(info.dir, state="finished", epoch=4)
    return runs.get_run(info.dir)


def model_file() -> Path:
    return _trained_model_file()

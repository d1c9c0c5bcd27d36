"""The trainer end to end on a small demo set: a finished run with every file, a NaN run that
fails with the reason, a stop and a resume, bad input before any folder, schedules, speed."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest

import fer_core  # noqa: F401  (CPU flags before TensorFlow loads)
from fer_core import runs
from fer_core.config import ConfigError, TrainConfig
from fer_core.data.demo import make_demo
from fer_core.models import load_model
from fer_core.train import (CosineSchedule, estimate_epoch_seconds, resume, split_data, train,
                            train_run)

TINY = {"model": "mini_xception", "model_kwargs": {"width": 4}, "batch_size": 32,
        "augment": None, "early_stop_patience": 0}


@pytest.fixture(scope="module")
def demo():
    return make_demo(300, seed=1)


def tiny(**changes) -> TrainConfig:
    return TrainConfig(**{**TINY, **changes})


def test_tiny_model_trains_two_epochs(tmp_path: Path, demo) -> None:
    seen: list[str] = []
    config = tiny(name="two", epochs=2, schedule="plateau", class_weights=True,
                  label_smoothing=0.1, augment={"erasing": 0.2})
    info = train(config, runs_dir=tmp_path, dataset=demo, on_event=lambda e: seen.append(e["kind"]))
    assert info.state == "finished" and info.error is None, info.error
    assert info.epoch == 2 and info.status["pid"] and info.status["finished_at"]
    for rel in ("config.json", "status.json", "events.jsonl", "history.csv", "weights/best.keras",
                "weights/last.keras", "weights/last.json", "eval"):
        assert (info.dir / rel).exists(), rel
    assert list((info.dir / "logs").rglob("events.out.tfevents.*"))  # TensorBoard
    assert not list(info.dir.rglob(".*.tmp*"))
    assert TrainConfig.load(info.dir / "config.json") == config
    history = runs.read_history(info)
    assert [r["epoch"] for r in history] == [1, 2]
    assert history[1]["loss"] < history[0]["loss"]
    assert all(0 <= r["val_accuracy"] <= 1 and r["lr"] > 0 for r in history)
    assert seen[0] == "started" and seen.count("epoch") == 2 and "batch" in seen
    events = runs.read_events(info)
    assert events[-1]["kind"] == "finished"
    epoch_event = runs.read_events(info, kinds=("epoch",))[-1]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "elapsed", "eta"} <= set(epoch_event)
    batch_event = runs.read_events(info, kinds=("batch",))[0]
    assert {"epoch", "batch", "steps", "loss", "accuracy", "lr", "elapsed", "eta"} <= set(batch_event)
    model = load_model(info.best_model_path)
    assert model.predict(demo.images[:2, :, :, None], verbose=0).shape == (2, 7)


def test_nan_ends_failed_with_the_reason(tmp_path: Path, demo) -> None:
    # Plain SGD with an absurd learning rate overflows float32 within a few steps.
    config = tiny(epochs=2, optimizer="sgd", momentum=0.0, learning_rate=1e30, schedule="none")
    info = train(config, runs_dir=tmp_path, dataset=demo)
    assert info.state == "failed"
    assert "loss became nan" in info.error or "loss became inf" in info.error
    assert "epoch 1" in info.error and "learning rate 1e+30" in info.error
    assert info.last_model_path is None  # NaN weights are never checkpointed
    assert runs.read_events(info)[-1]["kind"] == "failed"


def test_stop_then_resume_continues_at_the_right_epoch(tmp_path: Path, demo) -> None:
    holder: dict = {}

    def stop_after_first_epoch(event: dict) -> None:
        if event["kind"] == "started":
            holder["dir"] = runs.run_path(event["run_id"], tmp_path)
        if event["kind"] == "epoch" and event["epoch"] == 1:
            runs.request_stop(holder["dir"])

    config = tiny(epochs=3, schedule="cosine", warmup_epochs=1, optimizer="adamw",
                  weight_decay=1e-4, mixup_alpha=0.2)
    info = train(config, runs_dir=tmp_path, dataset=demo, on_event=stop_after_first_epoch)
    assert info.state == "stopped" and info.epoch == 1
    assert info.best_model_path is not None and not runs.stop_requested(info.dir)
    assert load_model(info.last_model_path, compile=True).optimizer.iterations.numpy() == 8
    done = resume(info.id, runs_dir=tmp_path, dataset=demo)
    assert done.state == "finished" and done.epoch == 3
    assert [r["epoch"] for r in runs.read_history(done)] == [1, 2, 3]
    resumed = runs.read_events(done, kinds=("resumed",))
    assert len(resumed) == 1 and resumed[0]["epoch"] == 1
    lrs = [r["lr"] for r in runs.read_history(done)]
    assert lrs[2] < lrs[1]  # still on the cosine curve after the resume
    with pytest.raises(runs.RunError, match="already finished"):
        resume(done.id, runs_dir=tmp_path, dataset=demo)


def test_stop_requested_while_queued_stands(tmp_path: Path, demo) -> None:
    queued = runs.create_run(tiny(epochs=2), tmp_path)
    runs.request_stop(queued.id, tmp_path)
    info = train_run(queued.id, runs_dir=tmp_path, dataset=demo)
    assert info.state == "stopped" and info.epoch == 0 and not runs.stop_requested(info.dir)


def test_bad_input_makes_no_folder(tmp_path: Path, demo) -> None:
    with pytest.raises(ConfigError, match="model.*unknown model 'resnet9000'"):
        train(tiny(model="resnet9000"), runs_dir=tmp_path, dataset=demo)
    with pytest.raises(ConfigError, match="model_kwargs.*depth"):
        train(tiny(model_kwargs={"depth": 3}), runs_dir=tmp_path, dataset=demo)
    with pytest.raises(ConfigError, match="augment.*rotation"):
        train(tiny(augment={"rotation": 500.0}), runs_dir=tmp_path, dataset=demo)
    with pytest.raises(ConfigError, match="data.*no such file"):
        train(tiny(data=str(tmp_path / "missing.csv")), runs_dir=tmp_path)
    assert not tmp_path.exists() or not list(tmp_path.iterdir())


def test_validation_split(demo) -> None:
    public = split_data(demo, tiny())
    assert public.val_name == "PublicTest" and len(public.y_val) == len(demo.split("PublicTest")[1])
    frac = split_data(demo, tiny(val_source="fraction", val_fraction=0.25, seed=4))
    n = len(demo.split("Training")[1])
    assert len(frac.y_val) == round(n * 0.25) and len(frac.y_train) + len(frac.y_val) == n
    again = split_data(demo, tiny(val_source="fraction", val_fraction=0.25, seed=4))
    assert (again.x_val == frac.x_val).all()


def test_cosine_schedule_shape() -> None:
    schedule = CosineSchedule(peak=1.0, floor=0.1, steps_per_epoch=10, epochs=5, warmup_epochs=1)
    lrs = [schedule.lr_at(step) for step in range(50)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)  # linear warm-up
    assert all(a >= b for a, b in itertools.pairwise(lrs[10:]))  # then decays
    assert lrs[-1] == pytest.approx(0.1, abs=1e-3)


def test_estimate_epoch_seconds() -> None:
    seconds = estimate_epoch_seconds(tiny(), 1000, steps=2)
    assert math.isfinite(seconds) and 0 < seconds < 600

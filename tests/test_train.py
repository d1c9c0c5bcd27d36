"""The trainer end to end on a small demo set: a finished run with every file, a NaN run that
fails with the reason, a stop and a resume (also after damaged metadata), bad input before any
folder, a full disk or an unwritable runs folder, schedules, speed."""

from __future__ import annotations

import errno
import itertools
import math
from pathlib import Path

import pytest

import fer_core  # noqa: F401  (CPU flags before TensorFlow loads)
from fer_core import runs
from fer_core.config import ConfigError, TrainConfig
from fer_core.models import load_model
from fer_core.train import (CosineSchedule, estimate_epoch_seconds, resume, split_data, train,
                            train_run)
from tiny_run import demo, make_tiny_run, tiny_config

TINY = {"model": "mini_xception", "model_kwargs": {"width": 4}, "batch_size": 32,
        "augment": None, "early_stop_patience": 0}


pytestmark = pytest.mark.usefixtures("fer_dirs")


def tiny(**changes) -> TrainConfig:
    return TrainConfig(**{**TINY, **changes})


def test_tiny_model_trains_two_epochs(tmp_path: Path, small_demo) -> None:
    seen: list[str] = []
    config = tiny(name="two", epochs=2, schedule="plateau", class_weights=True,
                  label_smoothing=0.1, augment={"erasing": 0.2})
    info = train(config, runs_dir=tmp_path, dataset=small_demo, on_event=lambda e: seen.append(e["kind"]))
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
    assert model.predict(small_demo.images[:2, :, :, None], verbose=0).shape == (2, 7)


def test_nan_ends_failed_with_the_reason(tmp_path: Path, small_demo) -> None:
    # Plain SGD with an absurd learning rate overflows float32 within a few steps.
    config = tiny(epochs=2, optimizer="sgd", momentum=0.0, learning_rate=1e30, schedule="none")
    info = train(config, runs_dir=tmp_path, dataset=small_demo)
    assert info.state == "failed"
    assert "loss became nan" in info.error or "loss became inf" in info.error
    assert "epoch 1" in info.error and "learning rate 1e+30" in info.error
    assert info.last_model_path is None  # NaN weights are never checkpointed
    assert runs.read_events(info)[-1]["kind"] == "failed"


def test_stop_then_resume_continues_at_the_right_epoch(tmp_path: Path, small_demo) -> None:
    holder: dict = {}

    def stop_after_first_epoch(event: dict) -> None:
        if event["kind"] == "started":
            holder["dir"] = runs.run_path(event["run_id"], tmp_path)
        if event["kind"] == "epoch" and event["epoch"] == 1:
            runs.request_stop(holder["dir"])

    config = tiny(epochs=3, schedule="cosine", warmup_epochs=1, optimizer="adamw",
                  weight_decay=1e-4, mixup_alpha=0.2)
    info = train(config, runs_dir=tmp_path, dataset=small_demo, on_event=stop_after_first_epoch)
    assert info.state == "stopped" and info.epoch == 1
    assert info.best_model_path is not None and not runs.stop_requested(info.dir)
    assert load_model(info.last_model_path, compile=True).optimizer.iterations.numpy() == 8
    done = resume(info.id, runs_dir=tmp_path, dataset=small_demo)
    assert done.state == "finished" and done.epoch == 3
    assert [r["epoch"] for r in runs.read_history(done)] == [1, 2, 3]
    resumed = runs.read_events(done, kinds=("resumed",))
    assert len(resumed) == 1 and resumed[0]["epoch"] == 1
    lrs = [r["lr"] for r in runs.read_history(done)]
    assert lrs[2] < lrs[1]  # still on the cosine curve after the resume
    with pytest.raises(runs.RunError, match="already finished"):
        resume(done.id, runs_dir=tmp_path, dataset=small_demo)


def test_stop_requested_while_queued_stands(tmp_path: Path, small_demo) -> None:
    queued = runs.create_run(tiny(epochs=2), tmp_path)
    runs.request_stop(queued.id, tmp_path)
    info = train_run(queued.id, runs_dir=tmp_path, dataset=small_demo)
    assert info.state == "stopped" and info.epoch == 0 and not runs.stop_requested(info.dir)


def test_bad_input_makes_no_folder(tmp_path: Path, small_demo) -> None:
    with pytest.raises(ConfigError, match="model.*unknown model 'resnet9000'"):
        train(tiny(model="resnet9000"), runs_dir=tmp_path, dataset=small_demo)
    with pytest.raises(ConfigError, match="model_kwargs.*depth"):
        train(tiny(model_kwargs={"depth": 3}), runs_dir=tmp_path, dataset=small_demo)
    with pytest.raises(ConfigError, match="augment.*rotation"):
        train(tiny(augment={"rotation": 500.0}), runs_dir=tmp_path, dataset=small_demo)
    with pytest.raises(ConfigError, match="data.*no such file"):
        train(tiny(data=str(tmp_path / "missing.csv")), runs_dir=tmp_path)
    assert not tmp_path.exists() or not list(tmp_path.iterdir())


def test_validation_split(small_demo) -> None:
    public = split_data(small_demo, tiny())
    assert public.val_name == "PublicTest" and len(public.y_val) == len(small_demo.split("PublicTest")[1])
    frac = split_data(small_demo, tiny(val_source="fraction", val_fraction=0.25, seed=4))
    n = len(small_demo.split("Training")[1])
    assert len(frac.y_val) == round(n * 0.25) and len(frac.y_train) + len(frac.y_val) == n
    again = split_data(small_demo, tiny(val_source="fraction", val_fraction=0.25, seed=4))
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



# ================================== faults: disk full, unwritable runs folder


def test_disk_full_fails_the_run_with_the_reason_and_keeps_the_best_weights(
        tmp_path, monkeypatch, small_demo) -> None:
    """Fault / disk full: the third model save of a run (epoch 2) finds the disk full after
    writing part of its file. The run ends failed with the reason, the half-written file is
    gone, epoch 1's best weights load, and once there is room again resume finishes it."""
    import keras

    from fer_core.models import load_model
    from fer_core.train import resume, train

    real_save = keras.Model.save
    saves: list[str] = []

    def save_until_the_disk_is_full(model, path, *args, **kwargs):
        saves.append(Path(path).name)
        if len(saves) <= 2:
            return real_save(model, path, *args, **kwargs)
        Path(path).write_bytes(b"PK\x03\x04 half a model")
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(keras.Model, "save", save_until_the_disk_is_full)
    with pytest.raises(OSError, match="No space left on device"):
        train(tiny_config(epochs=3), runs_dir=tmp_path, dataset=small_demo)
    [run] = runs.list_runs(tmp_path)
    assert run.state == "failed" and "No space left on device" in run.error, run.error
    assert runs.read_events(run)[-1]["kind"] == "failed"
    assert not [p.name for p in (run.dir / "weights").iterdir() if ".tmp" in p.name]
    assert load_model(run.best_model_path).output_shape == (None, 7)
    assert runs.read_json(run.dir / "weights" / "last.json")["epoch"] == 1

    monkeypatch.setattr(keras.Model, "save", real_save)
    done = resume(run.id, runs_dir=tmp_path, dataset=small_demo)
    assert done.state == "finished" and [r["epoch"] for r in runs.read_history(done)] == [1, 2, 3]


def test_a_failure_that_cannot_be_recorded_still_reports_the_original_error(
        tmp_path, monkeypatch, capsys) -> None:
    """Fault / disk full: when not even status.json can be written, recording the failure
    does not replace the real error with its own (the caller re-raises the original), and
    the reason goes to the job's log."""
    from fer_core import train as trainer

    info = runs.create_run(tiny_config(), tmp_path)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(runs, "atomic_write", full)
    monkeypatch.setattr(runs, "append_event", full)
    trainer._fail(info.dir, OSError(errno.ENOSPC, "No space left on device", "best.keras"))
    assert "could not record the failure" in capsys.readouterr().err
    assert runs.get_run(info.dir).state == "queued"  # unchanged, and still readable


def test_unwritable_runs_folder_fails_with_the_reason(tmp_path, monkeypatch, capsys,
                                                      small_demo) -> None:
    """Fault / unwritable runs folder: a runs folder that cannot be created (its parent is a
    file) or written (disk full while creating the run) gives RunError naming the folder and
    the reason, from train, start_job and the CLI; no half-made folder is left."""
    from fer_core import jobs
    from fer_core.__main__ import main
    from fer_core.train import train

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    root = blocker / "runs"
    with pytest.raises(runs.RunError, match=rf"cannot write to the runs folder {root}: Not a directory"):
        train(tiny_config(epochs=1), runs_dir=root, dataset=small_demo)
    with pytest.raises(runs.RunError, match="cannot write to the runs folder"):
        jobs.start_job(tiny_config(epochs=1), runs_dir=root)
    assert main(["train", "--epochs", "1", "--runs-dir", str(root)]) == 2
    assert "cannot write to the runs folder" in capsys.readouterr().err

    ok_root = tmp_path / "runs"
    real_write = runs.write_json

    def disk_full(path, value):
        if Path(path).name == "status.json":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real_write(path, value)

    monkeypatch.setattr(runs, "write_json", disk_full)
    with pytest.raises(runs.RunError, match="No space left on device"):
        runs.create_run(tiny_config(), ok_root)
    assert [p.name for p in ok_root.iterdir()] == []  # the hidden temporary folder is gone



# ============================================== resume after damaged metadata


def _stopped_at_two(root: Path, last_json: object) -> runs.RunInfo:
    """The tiny run (4 epochs) made to look stopped after epoch 2, with `last_json` as
    weights/last.json (None: the file is missing)."""
    info = make_tiny_run(root)
    runs.write_history(info.dir, runs.read_history(info.dir)[:2])
    runs.update_status(info.dir, state="stopped", epoch=2)
    last = info.dir / "weights" / "last.json"
    if last_json is None:
        last.unlink()
    elif isinstance(last_json, bytes):
        last.write_bytes(last_json)
    else:
        runs.write_json(last, last_json)
    return runs.get_run(info.dir)


@pytest.mark.parametrize("last_json", [None, {}, {"epoch": 99}, {"epoch": 0}, {"epoch": -1},
                                       {"epoch": "2"}, {"epoch": True}, {"epoch": 2.5}, [],
                                       b"", b"{torn", {"epoch": 3}])
def test_resume_point_is_checked_against_the_history(tmp_path, last_json) -> None:
    """Damaged metadata: a missing, empty, garbage or impossible weights/last.json falls
    back to the history's last epoch instead of KeyError or "finished after 99/4"."""
    info = _stopped_at_two(tmp_path, last_json)
    done, history = runs.resume_point(info.dir)
    assert done == 2 and [r["epoch"] for r in history] == [1, 2]


def test_resume_with_a_bad_last_json_trains_the_missing_epochs(tmp_path) -> None:
    """Damaged metadata: resuming a run whose last.json claims 99 epochs trains epochs 3-4
    and finishes 4/4 (the shared tiny run's settings; a few seconds)."""

    from fer_core.train import resume

    info = _stopped_at_two(tmp_path, {"epoch": 99})
    done = resume(info.dir, dataset=demo())
    assert done.state == "finished" and (done.epoch, done.epochs) == (4, 4), done.error
    assert [r["epoch"] for r in runs.read_history(done.dir)] == [1, 2, 3, 4]


def test_resume_to_fewer_epochs_than_done_is_refused(tmp_path) -> None:
    """Damaged metadata: resuming to fewer epochs in total than already completed is
    refused with a clear message, and neither the config nor the status changes."""
    from fer_core import jobs
    from fer_core.train import resume

    info = _stopped_at_two(tmp_path, {"epoch": 2})
    config_before = (info.dir / "config.json").read_text()
    for call in (lambda: resume(info.dir, epochs=1), lambda: jobs.resume_job(info.dir, epochs=1)):
        with pytest.raises(runs.RunError, match=r"already completed 2 epochs.*at least 2"):
            call()
    assert (info.dir / "config.json").read_text() == config_before
    assert runs.get_run(info.dir).state == "stopped"
    assert jobs.active_job(info.dir.parent) is None


"""What a new user meets first (issue 12): one name per preset, readable choices, a Train
panel that says what a starting job is doing instead of drawing empty bars, and no ETA until
batches after the first (which carries compilation) have been timed."""

from __future__ import annotations

import os
import time

import pytest

from fer_core import progress, runs
from fer_core import train_form as form
from fer_core.config import PRESETS, TRAIN_PARAMS, TrainConfig


def test_presets_have_one_name_each_and_default_is_the_shipped_recipe() -> None:
    names = form.preset_names()
    assert names[0] == "default" and sorted(names) == sorted(PRESETS)
    assert "defaults" not in names
    assert form.preset_config("default") == TrainConfig.from_dict(PRESETS["default"])


def test_the_validation_choice_reads_as_the_split_is_named() -> None:
    spec = TRAIN_PARAMS["val_source"]
    assert spec.choice_label("publictest") == "PublicTest"
    assert spec.choice_label("fraction") == "a fraction of Training"


def _running(tmp_path, state: str = "running") -> runs.RunInfo:
    info = runs.create_run(TrainConfig(epochs=2), tmp_path)
    runs.update_status(info.dir, state=state, pid=os.getpid(),
                       pid_start=runs.process_start_token(os.getpid()),
                       started_at=time.time() - 5)
    return runs.get_run(info.dir)


@pytest.mark.parametrize("state,events,phase", [
    ("queued", [], "Queued"),
    ("running", [], "Starting: loading the data"),
    ("running", [{"kind": "started", "time": 0, "steps_per_epoch": 10}], "Compiling"),
    ("running", [{"kind": "started", "time": 0, "steps_per_epoch": 10},
                 {"kind": "batch", "time": 0, "epoch": 1, "batch": 1, "steps": 10}], ""),
])
def test_a_starting_job_says_what_it_is_doing(tmp_path, state, events, phase) -> None:
    p = progress.live_progress(_running(tmp_path, state), events)
    assert p.phase.startswith(phase) and (phase != "" or p.phase == "")


def test_a_finished_run_has_no_phase(tmp_path) -> None:
    info = runs.create_run(TrainConfig(epochs=1), tmp_path)
    runs.update_status(info.dir, state="finished", epoch=1, elapsed=3.0)
    assert progress.live_progress(runs.get_run(info.dir), []).phase == ""


def test_no_eta_until_batches_after_the_first_are_timed(tmp_path) -> None:
    import fer_core  # noqa: F401
    from fer_core.train import ETA_MIN_TIMED_BATCHES, RunWriter

    config = TrainConfig(epochs=3)
    info = runs.create_run(config, tmp_path)
    writer = RunWriter(info.dir, config, steps_per_epoch=20, initial_epoch=0, history=[],
                       elapsed_before=0.0, nan_guard=None, save_dir=info.dir / "weights",
                       on_event=None)
    writer.on_epoch_begin(0)
    writer.epoch_t0 -= 30.0  # the first batch took 30 s: tracing and compilation
    writer.first_batch_end = time.monotonic()
    for done in range(1, ETA_MIN_TIMED_BATCHES + 1):
        assert writer.eta(0, done) is None, done
    writer.first_batch_end -= ETA_MIN_TIMED_BATCHES * 0.1  # then 0.1 s a batch
    eta = writer.eta(0, ETA_MIN_TIMED_BATCHES + 1)
    left = (20 - ETA_MIN_TIMED_BATCHES - 1) + 2 * 20
    assert eta == pytest.approx(0.1 * left, rel=0.2)  # not the 30 s first batch's rate


def test_history_keeps_the_data_loss_apart_from_the_l2_penalty(tmp_path) -> None:
    from fer_core import charts
    from tiny_run import make_tiny_run

    info = make_tiny_run(tmp_path)
    history = runs.read_history(info.dir)
    assert history and all({"data_loss", "val_data_loss"} <= set(row) for row in history)
    for row in history:  # the tiny fernet has no L2 penalty: both are the cross-entropy
        assert row["data_loss"] == pytest.approx(row["loss"], rel=1e-3)
    fig = charts.training_curves_figure(history, epochs=info.epochs)
    assert fig.layout.yaxis.title.text == "loss (cross-entropy)"
    assert list(fig.data[0].y) == [round(r["data_loss"], 4) for r in history]
    batches = [e for e in runs.read_events(info.dir) if e["kind"] == "batch"]
    assert batches and all(e["data_loss"] is not None for e in batches)


def test_data_loss_leaves_out_the_l2_penalty() -> None:
    import fer_core  # noqa: F401
    import numpy as np

    from fer_core.models import create_model
    from fer_core.train import compile_model

    model = compile_model(create_model("mini_xception", width=4, l2=0.01),
                          TrainConfig(model="mini_xception"))
    x = np.random.default_rng(0).integers(0, 256, (16, 48, 48, 1)).astype("float32")
    y = np.eye(7, dtype="float32")[np.arange(16) % 7]
    scores = model.evaluate(x, y, verbose=0, return_dict=True)
    assert 0 < scores["data_loss"] < scores["loss"] - 0.01  # the penalty is apart


def _faces(n: int, seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    # smooth random faces: a few blobs, so near-identical copies share their coarse shape
    base = rng.integers(0, 256, (n, 6, 6)).astype("float32")
    import cv2

    return np.stack([cv2.resize(b, (48, 48), interpolation=cv2.INTER_CUBIC) for b in base]) \
        .clip(0, 255).astype("uint8")


def test_overlap_finds_exact_and_near_copies_but_not_strangers() -> None:
    import numpy as np

    from fer_core.quality import overlap_mask

    train, test = _faces(20, 1), _faces(10, 2)
    train[3] = test[0]  # exact copy
    train[7] = np.clip(test[1].astype(int) + 9, 0, 255).astype("uint8")  # brighter copy
    train[9] = np.full((48, 48), 128, "uint8")  # near-blank: matched exactly only
    test[5] = np.full((48, 48), 127, "uint8")
    mask = overlap_mask(train, test)
    assert np.flatnonzero(mask).tolist() == [3, 7]
    assert not overlap_mask(train[:0], test).any() and not overlap_mask(train, test[:0]).any()


def test_training_can_drop_faces_found_in_test_splits() -> None:
    import fer_core  # noqa: F401
    import numpy as np

    from fer_core.data import FerDataset
    from fer_core.train import split_data

    train, test = _faces(30, 3), _faces(12, 4)
    train[[2, 11]] = test[[0, 5]]
    images = np.concatenate([train, test])
    labels = np.arange(len(images)) % 7
    usage = np.array(["Training"] * 30 + ["PublicTest"] * 12)
    ds = FerDataset(images=images, labels=labels, usage=usage, source="t", synthetic=True)
    kept = split_data(ds, TrainConfig(drop_test_overlap=True))
    assert len(kept.y_train) == 28 and kept.dropped_overlap == 2
    assert len(split_data(ds, TrainConfig()).y_train) == 30
    assert TrainConfig.from_json(TrainConfig(drop_test_overlap=True).to_json()).drop_test_overlap


def test_evaluate_says_how_many_test_faces_were_in_training() -> None:
    from fer_core.eval_report import overlap_note

    assert overlap_note(0, 100, "PublicTest", run_dropped=None) == ""
    note = overlap_note(299, 3589, "PublicTest", run_dropped=False)
    assert note.startswith("299 of these 3,589 PublicTest faces (8.3%) also appear in Training")
    assert "Drop Training faces found in test splits" in note
    assert "never saw them" in overlap_note(3, 10, "PublicTest", run_dropped=True)


def test_the_catalog_says_whether_a_run_dropped_test_faces(tmp_path) -> None:
    from fer_core import catalog

    info = runs.create_run(TrainConfig(drop_test_overlap=True), tmp_path)
    weights = info.dir / "weights" / "best.keras"
    weights.parent.mkdir(exist_ok=True)
    weights.write_bytes(b"not read")
    runs.update_status(info.dir, state="finished", epoch=1)
    ref = catalog.resolve(info.id, tmp_path)
    assert ref.dropped_test_overlap is True and ref.run_id == info.id
    assert catalog.resolve("default").dropped_test_overlap is None

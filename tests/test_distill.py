"""Distillation: teacher files (`fer_core.teacher`), targets mixed with a teacher's rows in
the pipeline, the split keeping teacher rows with their faces, `python -m fer_core teacher`
and a run that distils a teacher file."""

from __future__ import annotations

import numpy as np
import pytest

from fer_core.config import ConfigError, config_from_preset
from fer_core.labels import NUM_CLASSES, TRAINING
from fer_core.teacher import read_teacher, write_teacher
from tiny_run import tiny_config

RNG = np.random.default_rng(11)
FACES = RNG.integers(0, 256, (12, 48, 48), dtype=np.uint8)
PROBS = RNG.dirichlet(np.ones(NUM_CLASSES), size=12)


def test_a_teacher_file_round_trips_and_refuses_other_faces(tmp_path) -> None:
    path = write_teacher(tmp_path / "t.teacher.npz", PROBS, FACES, model="accurate", data="x")
    got = read_teacher(path, FACES)
    assert got.dtype == np.float32 and got.shape == (12, NUM_CLASSES)
    np.testing.assert_allclose(got, PROBS, atol=2e-3)  # float16 on disk
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="other Training faces"):
        read_teacher(path, FACES[::-1])
    with pytest.raises(ValueError, match=r"\(11, 7\)"):
        read_teacher(path, FACES[:11])
    with pytest.raises(ValueError, match="does not exist"):
        read_teacher(tmp_path / "none.teacher.npz", FACES)
    (tmp_path / "bad.teacher.npz").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="bad.teacher.npz is not readable"):
        read_teacher(tmp_path / "bad.teacher.npz", FACES)
    with pytest.raises(ValueError, match="must end in"):
        write_teacher(tmp_path / "t.npz", PROBS, FACES, model="m", data="d")


def test_training_targets_mix_the_label_and_the_teacher() -> None:
    from fer_core.pipeline import make_dataset

    labels = np.arange(12) % NUM_CLASSES
    ds = make_dataset(FACES, labels, batch_size=12, training=True, augment=None,
                      soft_labels=PROBS, soft_weight=0.7)
    x, y = next(iter(ds))
    order = [int(np.flatnonzero((FACES == img).all(axis=(1, 2)))[0])
             for img in x.numpy()[..., 0].astype(np.uint8)]
    expected = 0.3 * np.eye(NUM_CLASSES)[labels[order]] + 0.7 * PROBS[order]
    np.testing.assert_allclose(y.numpy(), expected, atol=1e-6)
    # validation batches keep the plain one-hot labels
    _, y_val = next(iter(make_dataset(FACES, labels, batch_size=12, training=False,
                                      soft_labels=PROBS, soft_weight=0.7)))
    np.testing.assert_array_equal(y_val.numpy(), np.eye(NUM_CLASSES)[labels])


def test_the_split_keeps_teacher_rows_with_their_faces(tmp_path, small_demo) -> None:
    from fer_core.train import split_data

    x, _ = small_demo.split(TRAINING)
    probs = np.random.default_rng(2).dirichlet(np.ones(NUM_CLASSES), size=len(x))
    path = write_teacher(tmp_path / "d.teacher.npz", probs, x, model="m", data="demo")
    data = split_data(small_demo, tiny_config(teacher=str(path), val_source="fraction"))
    rows = {small_demo_row.tobytes(): i for i, small_demo_row in enumerate(x)}
    index = [rows[face.tobytes()] for face in data.x_train]
    np.testing.assert_allclose(data.soft_train, probs[index], atol=2e-3)

    other = write_teacher(tmp_path / "o.teacher.npz", probs, x[::-1], model="m", data="demo")
    with pytest.raises(ConfigError) as info:
        split_data(small_demo, tiny_config(teacher=str(other)))
    assert info.value.field == "teacher" and "other Training faces" in str(info.value)


def test_the_cli_writes_a_teacher_file_and_a_run_distils_it(tmp_path, fer_dirs, tiny_run,
                                                            small_demo, capsys) -> None:
    from fer_core.__main__ import main
    from fer_core.train import train

    out = tmp_path / "tiny.teacher.npz"
    assert main(["teacher", tiny_run.id, "--data", "demo", "--out", str(out)]) == 0
    assert "Training faces" in capsys.readouterr().out
    from fer_core.data import load_dataset

    x, _ = load_dataset("demo").split(TRAINING)
    assert read_teacher(out, x).shape == (len(x), NUM_CLASSES)

    x_small, _ = small_demo.split(TRAINING)
    small = write_teacher(tmp_path / "s.teacher.npz",
                          np.full((len(x_small), NUM_CLASSES), 1 / NUM_CLASSES), x_small,
                          model="uniform", data="demo")
    info = train(tiny_config(epochs=1, teacher=str(small), distill_weight=0.5),
                 runs_dir=tmp_path / "runs", dataset=small_demo)
    assert info.state == "finished", info.error
    assert info.config.teacher == str(small)

    assert main(["teacher", "nope-run", "--data", "demo"]) == 2


def test_the_distill_preset_is_default_taught_by_accurate() -> None:
    distill, default = config_from_preset("distill"), config_from_preset("default")
    assert distill.teacher.endswith("accurate.teacher.npz") and distill.distill_weight > 0
    assert (distill.model, distill.model_kwargs, distill.epochs) == (
        default.model, default.model_kwargs, default.epochs)

"""Paths a user types, for a dataset (fer_core.data) or a model (fer_core.catalog,
fer_core.evaluate): one that cannot be read is a message, and nothing is ever written beside
the user's files."""

from __future__ import annotations

import errno
import os
import time

import pytest

import fer_core  # noqa: F401  (CPU flags before TensorFlow loads)
from fer_core import catalog, paths, runs
from fer_core.data import DataError, archives, load_dataset
from sample_files import png, training_csv, tree, zip_bytes

pytestmark = pytest.mark.usefixtures("fer_dirs")


def test_typed_paths_that_cannot_be_read_are_messages(tmp_path, monkeypatch) -> None:
    """Security / typed paths: a missing, unreadable or special path (a FIFO that would
    block forever) is a DataError; a folder or a non-.keras file is not a model."""
    with pytest.raises(DataError, match="no such file or folder"):
        load_dataset(tmp_path / "missing.csv")
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    start = time.perf_counter()
    with pytest.raises(DataError, match="not a regular file or folder"):
        load_dataset(fifo)
    assert time.perf_counter() - start < 5
    locked = tmp_path / "locked.csv"
    locked.write_bytes(training_csv(2))

    def denied(path, label, skip_bad):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(archives, "load_file", denied)  # (the tests run as root: chmod is moot)
    with pytest.raises(DataError, match=r"locked.csv: cannot be read: Permission denied"):
        load_dataset(locked)
    with pytest.raises(runs.RunError, match="does not exist|not a run id"):
        catalog.resolve(str(tmp_path))
    with pytest.raises(runs.RunError, match=r"must end in \.keras, \.onnx, \.tflite"):
        catalog.resolve(str(locked))


def test_typed_paths_never_write_beside_the_users_files(tmp_path, monkeypatch) -> None:
    """Security / writes: loading a typed CSV, zip or image folder, and evaluating a typed
    .keras file, write only to the cache folder, never next to the user's files."""
    from fer_core import evaluate as ev
    from fer_core.models import create_model

    user = tmp_path / "user"
    (user / "faces" / "train" / "happy").mkdir(parents=True)
    (user / "faces" / "train" / "happy" / "a.png").write_bytes(png(5))
    (user / "fer.csv").write_bytes(training_csv(3))
    (user / "fer.zip").write_bytes(zip_bytes({"fer2013.csv": training_csv(3)}))
    create_model("fernet", width=4, convs=1).save(user / "m.keras")
    before = tree(user)
    for source in ("fer.csv", "fer.zip", "faces"):
        assert len(load_dataset(user / source)) >= 1
        assert len(load_dataset(user / source)) >= 1  # the second time from the cache
    ds = load_dataset(user / "fer.csv")
    ev.evaluate_cached(str(user / "m.keras"), ds.images, ds.labels, split="all")
    assert tree(user) == before
    assert list(paths.eval_cache_dir().iterdir())


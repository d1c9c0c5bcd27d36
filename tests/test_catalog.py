"""The model catalog: what a spec means, which models the pages list, and in what order.
No TensorFlow needed (model files are placeholders; nothing is loaded)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from fer_core import catalog, runs
from fer_core.config import TrainConfig


@pytest.fixture()
def root(fer_dirs) -> Path:
    fer_dirs.default_model()  # none shipped, until a test ships one
    return fer_dirs.runs


def _run(name: str, state: str = "finished", *, weights: bool = True) -> runs.RunInfo:
    info = runs.create_run(TrainConfig(name=name, model="fernet"))
    if weights:
        (info.dir / "weights" / "best.keras").write_bytes(b"zip")
    runs.update_status(info.dir, state=state, created_at=len(runs.list_runs()))
    return runs.get_run(info.dir)


def _ship_default(tmp_path: Path, fer_dirs) -> Path:
    path = tmp_path / "shipped.keras"
    path.write_bytes(b"zip")
    return fer_dirs.default_model(path)


def test_a_run_id_means_its_best_weights(root: Path) -> None:
    info = _run("first", weights=False)
    with pytest.raises(runs.RunError, match="no best weights yet"):
        catalog.resolve(info.id)
    (info.dir / "weights" / "best.keras").write_bytes(b"zip")
    ref = catalog.resolve(info.id)
    assert ref.path == info.dir / "weights" / "best.keras"
    assert (ref.spec, ref.run_id, ref.run_dir, ref.state) == (info.id, info.id, info.dir,
                                                                "finished")
    assert ref.architecture == "fernet"
    assert ref.label == f"run first · fernet ({info.id})"
    with pytest.raises(dataclasses.FrozenInstanceError):
        ref.label = "other"  # type: ignore[misc]


def test_a_path_and_the_default(root: Path, tmp_path: Path,
                                fer_dirs) -> None:
    model = tmp_path / "m.keras"
    model.write_bytes(b"zip")
    ref = catalog.resolve(str(model))
    assert (ref.path, ref.spec, ref.state, ref.run_id) == (model.resolve(), str(model.resolve()),
                                                           catalog.FILE, None)
    assert catalog.resolve(ref.spec) == ref  # a spec resolves back to itself
    with pytest.raises(runs.RunError, match="does not exist"):
        catalog.resolve(str(tmp_path / "nope.keras"))
    (tmp_path / "model.h5").write_bytes(b"\x89HDF")
    with pytest.raises(runs.RunError, match=r"must end in \.keras, \.onnx, \.tflite"):
        catalog.resolve(str(tmp_path / "model.h5"))
    with pytest.raises(catalog.ModelSpecError, match="no default model"):
        catalog.resolve("default")
    fer_dirs.default_model(model)
    shipped = catalog.resolve(" default ")
    assert (shipped.path, shipped.spec, shipped.state) == (model, "default", catalog.SHIPPED)


def test_an_unknown_spec_lists_what_exists(root: Path, tmp_path: Path,
                                           fer_dirs) -> None:
    with pytest.raises(catalog.ModelSpecError,
                       match=r"not a run id.*not a model file.*'default'; models here: none"):
        catalog.resolve("nonsense")
    first = _run("first")
    _ship_default(tmp_path, fer_dirs)
    with pytest.raises(ValueError, match=rf"unknown model 'nonsense'.*: {first.id}, default$"):
        catalog.resolve("nonsense")
    with pytest.raises(ValueError, match="unknown model '.hidden'"):
        catalog.resolve(".hidden")


def test_choices_rules_are_arguments(root: Path, tmp_path: Path,
                                     fer_dirs) -> None:
    old = _run("old")
    running = _run("busy", "running")
    _run("empty", weights=False)  # no weights: never a choice
    (root / "junk").mkdir()  # an unreadable folder: never a choice
    assert [r.spec for r in catalog.choices()] == [running.id, old.id]  # newest first
    assert catalog.choices()[0].label == f"run busy · fernet · running ({running.id})"
    assert [r.spec for r in catalog.choices(finished_only=True)] == [old.id]
    _ship_default(tmp_path, fer_dirs)
    assert [r.spec for r in catalog.choices()] == [running.id, old.id, "default"]
    assert [r.spec for r in catalog.choices(finished_only=True, default_first=True)] == [
        "default", old.id]
    assert catalog.choices(tmp_path / "elsewhere")[0].state == catalog.SHIPPED


def test_checkpoint_gives_best_or_last_weights(root: Path) -> None:
    info = _run("done")
    with pytest.raises(catalog.ModelSpecError, match="no last weights yet"):
        catalog.checkpoint(info.id, "last")
    (info.dir / "weights" / "last.keras").write_bytes(b"zip")
    last = catalog.checkpoint(info, "last")
    assert last.path == info.dir / "weights" / "last.keras" and last.run_id == info.id
    assert "last weights" in last.label
    assert catalog.resolve(last.spec).path == last.path  # its spec is its file, not the run id
    assert catalog.checkpoint(info.id).path == info.dir / "weights" / "best.keras"
    with pytest.raises(ValueError, match="'best' or 'last'"):
        catalog.checkpoint(info.id, "mean")
    with pytest.raises(runs.RunError, match="no run 'gone'"):
        catalog.checkpoint("gone")


def test_import_loads_no_tensorflow() -> None:
    code = ("import sys, fer_core.catalog; "
            "print(any(m in sys.modules for m in ('tensorflow', 'keras')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=Path(__file__).resolve().parents[1], timeout=120)
    assert done.stdout.strip() == "False", done.stderr

"""`python -m fer_core train` and `python -m fer_core runs` end to end on the demo set."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fer_core import runs
from fer_core.__main__ import main
from fer_core.config import TrainConfig

pytestmark = pytest.mark.usefixtures("fer_dirs")

REPO = Path(__file__).resolve().parents[1]
TINY_FLAGS = ["--model", "mini_xception", "--model-kwargs", '{"width": 4}', "--augment", "none",
              "--batch-size", "64", "--early-stop-patience", "0", "--schedule", "none"]


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "fer_core", *args], capture_output=True, check=False,
                          text=True, cwd=REPO, env=env, timeout=timeout)


def test_train_resume_and_list(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    config_file = tmp_path / "c.json"
    config_file.write_text(TrainConfig(name="from-file", epochs=5, seed=3).to_json())
    done = cli("train", "--config", str(config_file), *TINY_FLAGS, "--epochs", "1",
               "--runs-dir", str(tmp_path / "runs"), "--data", "demo")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "18/18 - " in done.stdout  # Keras progress, one line per epoch off a terminal
    assert "finished after 1/1 epochs" in done.stdout
    [info] = runs.list_runs(tmp_path / "runs")
    assert info.config.name == "from-file" and info.config.seed == 3 and info.config.epochs == 1
    assert info.config.augment is None and info.config.model_kwargs == {"width": 4}

    more = cli("train", "--resume", info.id, "--epochs", "2", "--runs-dir", str(tmp_path / "runs"))
    assert more.returncode == 0, more.stderr[-2000:]
    assert "finished after 2/2 epochs" in more.stdout
    assert [r["epoch"] for r in runs.read_history(info)] == [1, 2]

    assert main(["runs", "--runs-dir", str(tmp_path / "runs"), "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["id"] == info.id and row["state"] == "finished" and row["epoch"] == 2
    assert row["best_model"] and Path(row["best_model"]).is_file()


def test_bad_flags_fail_before_any_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["train", "--learning-rate", "-1", "--runs-dir", str(tmp_path)]) == 2
    assert "TrainConfig.learning_rate: must be > 0" in capsys.readouterr().err
    assert main(["train", "--preset", "quick", "--label-smoothing", "2",
                 "--runs-dir", str(tmp_path)]) == 2
    assert "label_smoothing" in capsys.readouterr().err
    assert main(["train", "--resume", "x", "--learning-rate", "0.1",
                 "--runs-dir", str(tmp_path)]) == 2
    assert "only --epochs may change" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--model-kwargs", "[1, 2]"])
    assert "JSON object" in capsys.readouterr().err
    assert not tmp_path.exists() or not list(tmp_path.iterdir())


def test_busy_runs_folder_is_refused(tmp_path: Path) -> None:
    with runs.acquire_lock(tmp_path, run_id="somebody-else"):
        busy = cli("train", *TINY_FLAGS, "--runs-dir", str(tmp_path), timeout=120)
    assert busy.returncode == 1 and "somebody-else" in busy.stderr
    assert runs.list_runs(tmp_path) == []


def test_runs_table_rename_delete(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    info = runs.create_run(TrainConfig(name="one"), tmp_path)
    (tmp_path / "junk").mkdir()
    assert main(["runs", "--runs-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "ID" in out and info.id in out and "queued" in out and "unreadable" in out
    assert main(["runs", "--runs-dir", str(tmp_path), "--rename", info.id, "renamed"]) == 0
    assert runs.get_run(info.id, tmp_path).name == "renamed"
    assert main(["runs", "--runs-dir", str(tmp_path), "--delete", "nope"]) == 2
    assert "no run 'nope'" in capsys.readouterr().err
    assert main(["runs", "--runs-dir", str(tmp_path), "--delete", info.id]) == 0
    assert [r.id for r in runs.list_runs(tmp_path)] == ["junk"]
    assert main(["runs", "--runs-dir", str(tmp_path / "empty")]) == 0
    assert "no runs in" in capsys.readouterr().out



# =============================================== out-of-range hyperparameters


@pytest.mark.parametrize("flags, words", [
    (["--epochs", "0"], "TrainConfig.epochs: must be >= 1"),
    (["--batch-size", "-8"], "TrainConfig.batch_size"),
    (["--learning-rate", "nan"], "TrainConfig.learning_rate: must be finite"),
    (["--momentum", "1.5"], "TrainConfig.momentum"),
    (["--val-source", "fraction", "--val-fraction", "1"], "TrainConfig.val_fraction"),
    (["--model", "nope"], "TrainConfig.model: unknown model 'nope'"),
    (["--model-kwargs", '{"width": -3}'], "TrainConfig.model_kwargs"),
    (["--model-kwargs", '{"depth": 3}'], "TrainConfig.model_kwargs: mini_xception has no option"),
    (["--augment", '{"rotation": 1000}'], "TrainConfig.augment"),
    (["--data", "/no/such/file.csv"], "TrainConfig.data: no such file"),
])
def test_cli_out_of_range_hyperparameters_leave_no_folder(tmp_path, capsys, flags, words) -> None:
    """Bad input / hyperparameters from the CLI: exit 2, a message naming the field, and no
    run folder (not even an empty runs folder)."""
    from fer_core.__main__ import main

    root = tmp_path / "runs"
    assert main(["train", *flags, "--epochs" if "--epochs" not in flags else "--seed", "1",
                 "--runs-dir", str(root)]) == 2
    err = capsys.readouterr().err
    assert words in err, err
    assert not root.exists() or runs.list_runs(root) == []
    assert not root.exists() or not [p for p in root.iterdir() if p.name != ".train.lock"]


def test_config_file_with_bad_values_names_the_file_and_makes_no_folder(tmp_path, capsys) -> None:
    """Bad input / hyperparameters from a config file: bad values, unknown keys, not JSON."""
    from fer_core.__main__ import main

    root = tmp_path / "runs"
    cases = {
        "range.json": ('{"learning_rate": -1}', "TrainConfig.learning_rate"),
        "unknown.json": ('{"lr": 0.1}', "unknown"),
        "type.json": ('{"epochs": "ten"}', "TrainConfig.epochs"),
        "broken.json": ("{not json", "not valid JSON"),
        "list.json": ("[1, 2]", "TrainConfig"),
        "binary.json": ("\x00\xff", "TrainConfig"),
    }
    for name, (text, words) in cases.items():
        (tmp_path / name).write_text(text, encoding="latin-1")
        assert main(["train", "--config", str(tmp_path / name), "--runs-dir", str(root)]) == 2
        err = capsys.readouterr().err
        assert words in err and err.startswith("error: "), (name, err)
    assert main(["train", "--config", str(tmp_path / "missing.json"), "--runs-dir", str(root)]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert not root.exists() or runs.list_runs(root) == []


"""`python -m fer_core inspect`: table and JSON output, the demo word, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fer_core import data
from fer_core.__main__ import main
from fer_core.labels import EMOTIONS, SPLITS
from sample_files import ROW, lines_csv, pixels

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("fer_dirs")


@pytest.fixture
def small_csv(write_csv):
    """21 random faces, one of each class in each split; `bad_row` adds a row labelled 9."""

    def write(*, bad_row: bool = False) -> Path:
        rng = np.random.default_rng(0)
        images = np.array([rng.integers(0, 256, 2304) for _ in range(21)])
        usage = [SPLITS[i // 7] for i in range(21)]
        bad = ["9," + " ".join(["1"] * 2304) + ",Training"] if bad_row else []
        return write_csv("f.csv", images, np.arange(21) % 7, usage, extra_lines=bad)

    return write


def test_json_of_a_csv(small_csv, capsys) -> None:
    assert main(["inspect", str(small_csv()), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rows"] == 21
    assert list(report["splits"]) == list(SPLITS)
    assert report["splits"]["PublicTest"] == dict.fromkeys(EMOTIONS, 1)
    assert report["problems"] == []


def test_bad_rows_fail_then_skip(small_csv, capsys) -> None:
    path = small_csv(bad_row=True)
    assert main(["inspect", str(path), "--json"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["rows"] == 0 and "row 23" in report["problems"][0]
    assert main(["inspect", str(path), "--json", "--skip-bad"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rows"] == 21 and report["skipped"] == 1
    assert "skipped 1 rows with label not an integer 0-6" in report["problems"][0]


def test_table_of_the_demo_set(capsys) -> None:
    assert main(["inspect", "demo"]) == 0
    out = capsys.readouterr().out
    assert "demo: 1,400 rows  (synthetic demo set, not real faces)" in out
    assert all(e in out for e in EMOTIONS) and "PrivateTest" in out
    assert "also appear in Training" in out  # the planted leak is reported


def test_missing_file_message(capsys) -> None:
    assert main(["inspect", "nowhere.csv"]) == 2
    assert "error: nowhere.csv: no such file or folder" in capsys.readouterr().out


def test_as_a_module_defaults_to_the_demo_set(tmp_path) -> None:
    """No PATH, no $FER2013_CSV, no data/fer2013.csv: the demo set, as one JSON object."""
    result = subprocess.run(
        [sys.executable, "-m", "fer_core", "inspect", "--json"], cwd=tmp_path,
        capture_output=True, text=True, timeout=120,
        env={"PYTHONPATH": str(ROOT), "FER_CACHE_DIR": str(tmp_path / "c"), "PATH": ""},
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["synthetic"] and report["rows"] == 1400



# ======================================= non-ASCII digits and loader failures


def test_cli_inspect_json_of_non_ascii_digits_has_no_traceback(tmp_path, capsys) -> None:
    path = tmp_path / "odd.csv"
    path.write_bytes(lines_csv(ROW, "3," + pixels(9, "²") + ",Training"))
    assert main(["inspect", str(path), "--json"]) == 2
    out = capsys.readouterr()
    report = json.loads(out.out)
    assert "row 3" in report["error"] and "'²'" in report["error"]
    assert "Traceback" not in out.err
    assert main(["inspect", str(path), "--json", "--skip-bad"]) == 0
    assert json.loads(capsys.readouterr().out)["skipped"] == 1


def test_cli_inspect_reports_an_unexpected_failure(tmp_path, capsys, monkeypatch) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(lines_csv(ROW))

    def broken(*args, **kwargs):
        raise IndexError("a loader bug")

    monkeypatch.setattr(data, "load_dataset", broken)
    assert main(["inspect", str(path), "--json"]) == 2
    assert "IndexError: a loader bug" in json.loads(capsys.readouterr().out)["error"]


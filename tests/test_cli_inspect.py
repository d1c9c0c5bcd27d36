"""`python -m fer_core inspect`: table and JSON output, the demo word, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fer_core.__main__ import main
from fer_core.labels import EMOTIONS, SPLITS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch) -> None:
    monkeypatch.setenv("FER_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("FER2013_CSV", raising=False)


def _small_csv(path: Path, *, bad_row: bool = False) -> Path:
    rng = np.random.default_rng(0)
    lines = ["emotion,pixels,Usage"]
    for i in range(21):
        pixels = " ".join(map(str, rng.integers(0, 256, 2304)))
        lines.append(f"{i % 7},{pixels},{SPLITS[i // 7]}")
    if bad_row:
        lines.append("9," + " ".join(["1"] * 2304) + ",Training")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_json_of_a_csv(tmp_path, capsys) -> None:
    assert main(["inspect", str(_small_csv(tmp_path / "f.csv")), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rows"] == 21
    assert list(report["splits"]) == list(SPLITS)
    assert report["splits"]["PublicTest"] == dict.fromkeys(EMOTIONS, 1)
    assert report["problems"] == []


def test_bad_rows_fail_then_skip(tmp_path, capsys) -> None:
    path = _small_csv(tmp_path / "f.csv", bad_row=True)
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

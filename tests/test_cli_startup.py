"""The CLI's light commands start without TensorFlow, and no command prints TensorFlow's
import-time log lines unless asked (`--verbose`). Timings are in benchmarks/cli_startup.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TF_NOISE = ("absl::InitializeLog", "cudart_stub", "cuInit", "cpu_feature_guard")


def _cli(args: list[str]) -> subprocess.CompletedProcess:
    """`main(args)` in a fresh interpreter; prints, last, whether TensorFlow got imported."""
    code = ("import sys; from fer_core.__main__ import main; rc = main(sys.argv[1:]); "
            "print(json.dumps({'rc': rc, 'tf': 'tensorflow' in sys.modules}))")
    return subprocess.run([sys.executable, "-c", "import json; " + code, *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("args", [["runs"], ["runs", "--json"], ["inspect", "demo"], ["cpu"]])
def test_light_commands_do_not_import_tensorflow(args, fer_dirs) -> None:
    done = _cli(args)
    last = json.loads(done.stdout.strip().splitlines()[-1])
    assert last == {"rc": 0, "tf": False}, done.stderr


def test_help_does_not_import_tensorflow() -> None:
    code = ("import sys; from fer_core.__main__ import build_parser; build_parser(); "
            "print('tensorflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.stdout.strip() == "False", done.stderr


def test_tensorflow_log_lines_only_with_verbose(fer_dirs, monkeypatch) -> None:
    quiet = subprocess.run([sys.executable, "-m", "fer_core", "evaluate", "default", "--data",
                            "demo", "--json"], cwd=ROOT, capture_output=True, text=True,
                           timeout=300)
    assert quiet.returncode == 0, quiet.stderr
    assert not [line for line in quiet.stderr.splitlines() if any(n in line for n in TF_NOISE)]
    json.loads(quiet.stdout.strip().splitlines()[-1])  # the report is intact
    # a fresh cache, so the model loads (and TensorFlow with it) instead of a cached result
    monkeypatch.setenv("FER_CACHE_DIR", str(fer_dirs.cache / "second"))
    verbose = subprocess.run([sys.executable, "-m", "fer_core", "--verbose", "evaluate",
                              "default", "--data", "demo", "--json"], cwd=ROOT,
                             capture_output=True, text=True, timeout=300)
    assert verbose.returncode == 0, verbose.stderr
    assert any(n in verbose.stderr for n in TF_NOISE)


def test_a_failing_import_still_reports_its_error(tmp_path) -> None:
    """stderr is silenced only while tensorflow executes: what goes wrong after is shown."""
    code = ("from fer_core.tf_quiet import quiet_tensorflow_import; quiet_tensorflow_import(); "
            "import tensorflow; import sys; print('after', file=sys.stderr); "
            "raise SystemExit('boom')")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert "after" in done.stderr and "boom" in done.stderr
    assert not any(n in done.stderr for n in TF_NOISE)


def test_asking_whether_tensorflow_is_installed_keeps_its_import_quiet() -> None:
    """`runtimes.missing_runtime` looks TensorFlow up with importlib.util.find_spec before it
    is imported: the later import must still be silenced."""
    code = ("from fer_core.tf_quiet import quiet_tensorflow_import; quiet_tensorflow_import(); "
            "import importlib.util; assert importlib.util.find_spec('tensorflow'); "
            "import tensorflow")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert not any(n in done.stderr for n in TF_NOISE), done.stderr

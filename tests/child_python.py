"""Fresh Python interpreters for the tests of native crashes: run code in a child (a crash
fails the test instead of killing pytest), read the oneDNN setting a child chooses, and make
every child started from a test die of a signal (a stand-in for TensorFlow's native crash)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def python(code: str, env: dict[str, str] | None = None, *args: str,
           timeout: float = 300) -> subprocess.CompletedProcess:
    """`code` (with `args`) in a fresh interpreter with this process's environment plus `env`."""
    full = {**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH") or str(REPO), **(env or {})}
    return subprocess.run([sys.executable, "-c", code, *args], env=full, cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def onednn_in_child(**env: str) -> str:
    out = python("import os, fer_core; print(os.environ['TF_ENABLE_ONEDNN_OPTS'])", env)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def crashing_python(folder: Path, monkeypatch: pytest.MonkeyPatch, condition: str = "True",
                    sig: str = "SIGSEGV") -> None:
    """Make every new Python process started from here die of `sig` when `condition` holds
    (a sitecustomize on PYTHONPATH): a stand-in for TensorFlow's native crash."""
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text(
        "import os, signal\n"
        f"if {condition}:\n    os.kill(os.getpid(), signal.{sig})\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(folder), str(REPO)]))

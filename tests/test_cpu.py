"""fer_core.cpu: oneDNN stays off until a probe chose it, and a value the user set wins."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from child_python import onednn_in_child

pytestmark = pytest.mark.usefixtures("fer_dirs")


def _write_choice(enable: bool) -> Path:
    from fer_core import cpu

    path = cpu.choice_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": cpu.CHOICE_VERSION, "enable": enable,
                                "reason": "test", "probed_at": 0}))
    return path


def test_onednn_is_off_until_a_probe_chose_it_and_the_user_wins(monkeypatch) -> None:
    """Native crashes: oneDNN is not forced on; without a cached probe it is off, a cached
    probe decides, and a value set by the user always wins."""
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    monkeypatch.delenv("FER_ONEDNN_AUTO", raising=False)
    assert onednn_in_child() == "0"
    assert onednn_in_child(TF_ENABLE_ONEDNN_OPTS="1") == "1"
    path = _write_choice(True)
    assert onednn_in_child() == "1"
    assert onednn_in_child(TF_ENABLE_ONEDNN_OPTS="0") == "0"  # the user's choice
    # a value this module chose (a parent started before the probe) is chosen again
    assert onednn_in_child(TF_ENABLE_ONEDNN_OPTS="0", FER_ONEDNN_AUTO="1") == "1"
    _write_choice(False)
    assert onednn_in_child() == "0"
    path.write_text("{garbage")
    assert onednn_in_child() == "0"


"""fer_core.probe: timing a config and probing oneDNN run in child processes, so a native crash
there is a message and a choice, never the end of this process."""

from __future__ import annotations

import pytest

from child_python import REPO, crashing_python, onednn_in_child

pytestmark = pytest.mark.usefixtures("fer_dirs")


# ============================================================= speed estimate


def test_speed_estimate_runs_in_a_child_and_its_crash_is_a_message(tmp_path, monkeypatch) -> None:
    """Native crashes: timing a config trains in a child process; a segfault there is a
    ProbeError (RuntimeError) naming the signal, and this process lives on."""
    from fer_core.config import TrainConfig
    from fer_core.probe import ProbeError, measure_speed

    config = TrainConfig(model="fernet", model_kwargs={"width": 4, "convs": 1}, batch_size=7,
                         augment=None)
    crashing_python(tmp_path / "crash", monkeypatch)
    with pytest.raises(ProbeError, match=r"crashed \(SIGSEGV\)"):
        measure_speed(config, steps=1)


def test_speed_estimate_measures_and_reports_config_errors() -> None:
    from fer_core.config import ConfigError, TrainConfig
    from fer_core.probe import measure_speed

    config = TrainConfig(model="fernet", model_kwargs={"width": 4, "convs": 1}, batch_size=7,
                         augment=None)
    estimate = measure_speed(config, steps=2)
    assert 0 < estimate.images_per_second < 1e6 and 0 < estimate.startup_seconds < 600
    with pytest.raises(ConfigError, match="model_kwargs"):
        measure_speed(config.replace(model_kwargs={"depth": 3}), steps=1)



# =============================================================== oneDNN probe


def test_probe_keeps_onednn_off_when_it_crashes(tmp_path, monkeypatch) -> None:
    """Native crashes: the probe's oneDNN child crashing (as on the AVX-512 CPU) keeps
    oneDNN off, caches that for this CPU, and new processes read it."""
    from fer_core.probe import probe_onednn

    crashing_python(tmp_path / "crash", monkeypatch,
                     condition="os.environ.get('TF_ENABLE_ONEDNN_OPTS') == '1'", sig="SIGABRT")
    choice = probe_onednn(timeout=120)
    assert choice["enable"] is False and "SIGABRT" in choice["reason"], choice
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    monkeypatch.delenv("FER_ONEDNN_AUTO", raising=False)
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    assert onednn_in_child() == "0"


@pytest.mark.parametrize("on_speed,enable", [(150.0, True), (101.0, False), (60.0, False)])
def test_probe_turns_onednn_on_only_when_safe_and_faster(monkeypatch, on_speed, enable) -> None:
    """Native crashes: oneDNN is chosen only when its child survived and trained faster."""
    from fer_core import probe

    def side(value: str, timeout: float) -> dict:
        speed = on_speed if value == "1" else 100.0
        return {"ok": True, "error": None, "seconds": 1.0, "checks": 18,
                "images_per_second": {"quick": speed, "default": speed}}

    monkeypatch.setattr(probe, "_probe_side", side)
    assert probe.probe_onednn()["enable"] is enable
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    monkeypatch.delenv("FER_ONEDNN_AUTO", raising=False)
    assert onednn_in_child() == ("1" if enable else "0")


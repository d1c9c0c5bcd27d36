"""Streamlit's clean-up between reruns must leave the app's cached models alone (ui.runtime)."""

from __future__ import annotations

import fer_core  # noqa: F401, I001  (CPU flags and pylibsrtp before TensorFlow loads)
import keras
import pytest
from streamlit.runtime.scriptrunner import script_runner
from streamlit.testing.v1 import AppTest

import ui.runtime

SCRIPT = """
import numpy as np
import streamlit as st
{import_ui}
from fer_core.infer import Classifier
from fer_core.models import create_model

@st.cache_resource
def classifier():
    return Classifier(create_model("fernet", width=4, convs=1))

clf = classifier()
clf.predict(np.zeros((1, 48, 48), np.uint8))
clf.predict(np.zeros((3, 48, 48), np.uint8))
st.session_state.setdefault("traces", []).append(clf.tracing_count())

@st.fragment
def panel():
    clf.predict(np.zeros((2, 48, 48), np.uint8))
    st.button("refresh", key="refresh")

panel()
"""


@pytest.fixture
def clear_calls(monkeypatch):
    """Count keras.backend.clear_session() calls; start from Streamlit's own clean-up hook."""
    calls = []
    monkeypatch.setattr(keras.backend, "clear_session", lambda *a, **k: calls.append(1))
    hook = script_runner._clean_problem_modules
    monkeypatch.setattr(script_runner, "_clean_problem_modules", getattr(hook, "replaced", hook))
    return calls


def _reruns(import_ui: str) -> AppTest:
    at = AppTest.from_string(SCRIPT.format(import_ui=import_ui), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    for _ in range(3):
        at.run()
        at.button(key="refresh").click().run()  # a fragment rerun
        assert not at.exception, at.exception
    return at


def test_streamlit_clears_keras_after_each_run_without_ui(clear_calls):
    """What ui.runtime exists to stop: Streamlit's hook calls clear_session after every run."""
    _reruns("")
    assert len(clear_calls) >= 7


def test_cached_classifier_survives_reruns_untouched(clear_calls):
    at = _reruns("from ui.runtime import keep_keras_state\nkeep_keras_state()")
    assert clear_calls == []
    traces = at.session_state["traces"]
    assert len(traces) >= 4 and len(set(traces)) == 1, traces  # never traced again


def test_keep_keras_state_is_idempotent_and_still_closes_matplotlib(monkeypatch):
    assert ui.runtime.keep_keras_state()
    hook = script_runner._clean_problem_modules
    assert ui.runtime.keep_keras_state() and script_runner._clean_problem_modules is hook
    closed = []
    fake_plt = type("plt", (), {"close": staticmethod(lambda which: closed.append(which))})
    monkeypatch.setitem(__import__("sys").modules, "matplotlib.pyplot", fake_plt)
    hook()
    assert closed == ["all"]


def test_every_page_keeps_keras_state():
    """Each page (and the home script) imports ui, which installs the hook."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for script in [root / "app.py", *sorted((root / "app_pages").glob("*.py"))]:
        text = script.read_text(encoding="utf-8")
        assert "import ui" in text or "from ui" in text, f"{script.name} does not import ui"

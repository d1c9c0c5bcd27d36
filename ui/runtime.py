"""Streamlit process settings the app relies on, applied once when `ui` is imported.

After every script run and every fragment rerun, Streamlit's script runner calls
`keras.backend.clear_session()` whenever `keras` is imported
(`streamlit.runtime.scriptrunner.script_runner._clean_problem_modules`). For this app that is
harmful: it clears TensorFlow's kernel cache under the models cached with `st.cache_resource`
(the next webcam frame pays to rebuild them), it runs a full `gc.collect()` under the GIL
(hundreds of ms with TensorFlow loaded), and the Live panel's fragment triggers it twice a
second, which starved the webcam's frame thread (issue 11). The app never builds throw-away
Keras models in the server process (training runs in its own process), so there is no Keras
state to clear: `keep_keras_state` replaces that clean-up with one that still closes
matplotlib figures, as Streamlit's does, and leaves Keras alone. The same reasoning turns
off `runner.postScriptGC` in `.streamlit/config.toml`.
"""

from __future__ import annotations

import logging
import sys

_LOGGER = logging.getLogger(__name__)
_MARK = "_fer_keeps_keras_state"


def _clean_without_keras() -> None:
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        try:
            plt.close("all")
        except Exception:  # noqa: BLE001  (Streamlit's own clean-up ignores failures too)
            pass


setattr(_clean_without_keras, _MARK, True)


def keep_keras_state() -> bool:
    """Stop Streamlit from calling `keras.backend.clear_session()` after each (fragment) run.

    Idempotent. Returns True when the clean-up hook is ours now; False (with a warning in the
    log) when this Streamlit version has no such hook to replace, i.e. nothing clears Keras.
    """
    from streamlit.runtime.scriptrunner import script_runner

    current = getattr(script_runner, "_clean_problem_modules", None)
    if current is None:
        _LOGGER.warning("streamlit has no _clean_problem_modules hook: nothing to replace")
        return False
    if not getattr(current, _MARK, False):
        _clean_without_keras.replaced = current  # Streamlit's own, for tests
        script_runner._clean_problem_modules = _clean_without_keras
    return True

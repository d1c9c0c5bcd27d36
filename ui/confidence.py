"""The one control for how sure a face's emotion must be to be named (Live, photos, Analyse)."""

from __future__ import annotations

import streamlit as st

from fer_core.labels import DEFAULT_UNCERTAIN_BELOW


def uncertain_slider(key: str) -> float:
    """The threshold under which a face is shown as "uncertain" instead of named."""
    return st.slider(
        "Uncertain below", 0.0, 0.9, DEFAULT_UNCERTAIN_BELOW, 0.05, key=key,
        help="A face whose most likely emotion has a probability below this is shown as "
        "'uncertain (its best guess?)' in gray instead of being named. 0: always name one.",
    )

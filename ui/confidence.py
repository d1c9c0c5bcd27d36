"""The controls for how a face's emotion is judged on Live, photos and Analyse: how sure it must
be to be named, and whether its mirror image is classified too."""

from __future__ import annotations

import streamlit as st

from fer_core.labels import DEFAULT_MIRROR_VIEW, DEFAULT_UNCERTAIN_BELOW, MIRROR_LABEL


def uncertain_slider(key: str) -> float:
    """The threshold under which a face is shown as "uncertain" instead of named."""
    return st.slider(
        "Uncertain below", 0.0, 0.9, DEFAULT_UNCERTAIN_BELOW, 0.05, key=key,
        help="A face whose most likely emotion has a probability below this is shown as "
        "'uncertain (its best guess?)' in gray instead of being named. 0: always name one.",
    )


def mirror_checkbox(key: str) -> bool:
    """Whether each face is classified with its mirror image too (flip TTA)."""
    return st.checkbox(
        MIRROR_LABEL, DEFAULT_MIRROR_VIEW, key=key,
        help="Average the model's answer for each face and for its mirror image, as Evaluate's "
        "flip TTA does: the shipped model scores 70.2% on FER2013 PublicTest instead of 68.7%, "
        "at about twice the classification time per face (0.8 ms instead of 0.45 ms here). Models "
        "that mirror faces themselves (`accurate`) always do.",
    )

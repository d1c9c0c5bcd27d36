"""The Live page's sidebar settings for face detection and stability, read in one call."""

from __future__ import annotations

from typing import NamedTuple

import streamlit as st

from fer_core.infer import DEFAULT_RESCAN_EVERY, DEFAULT_SMOOTHING
from ui.confidence import mirror_checkbox, uncertain_slider

DETECT_WIDTHS = {"240 px": 240, "320 px": 320, "480 px": 480, "640 px": 640, "full size": 0}


class LiveSettings(NamedTuple):
    """What the sidebar chose: the Haar detector's parameters, then tracking and smoothing."""

    scale_factor: float
    min_neighbors: int
    min_size: int
    detect_width: int  # webcam frames are shrunk to this width before a scan; 0: full size
    smoothing: float
    rescan_every: int
    uncertain_below: float  # faces less sure than this are shown as "uncertain"
    mirror: bool  # classify each face and its mirror image (flip TTA)


def live_settings() -> LiveSettings:
    """The sliders in the sidebar (keys `live_*`), as LiveSettings."""
    with st.sidebar:
        st.header("Face detection")
        scale_factor = st.slider(
            "Scale factor", 1.05, 1.5, 1.1, 0.05, key="live_scale",
            help="Step between the sizes the detector tries: lower finds more faces, runs "
            "slower.",
        )
        min_neighbors = st.slider(
            "Min neighbours", 1, 10, 5, key="live_neighbors",
            help="Overlapping hits a face needs: higher drops false faces, may miss real ones.",
        )
        min_size = st.slider("Min face size (px)", 20, 200, 40, 5, key="live_min_size")
        detect_width = DETECT_WIDTHS[
            st.select_slider(
                "Detection width", list(DETECT_WIDTHS), value="320 px", key="live_width",
                help="Webcam frames are shrunk to this width before the face scan (faster).",
            )
        ]
        st.header("Stability")
        smoothing = st.slider(
            "Smoothing", 0.0, 0.95, DEFAULT_SMOOTHING, 0.05, key="live_smoothing",
            help="Weight of the past in each face's running average of probabilities (0: off).",
        )
        rescan_every = st.slider(
            "Full scan every N frames", 1, 30, DEFAULT_RESCAN_EVERY, key="live_rescan",
            help="Between full scans, known faces are looked for near their last place "
            "(faster). 1: scan the whole frame every time.",
        )
        st.header("Confidence")
        uncertain_below = uncertain_slider("live_uncertain")
        mirror = mirror_checkbox("live_mirror")
    return LiveSettings(scale_factor, min_neighbors, min_size, detect_width, smoothing,
                        rescan_every, uncertain_below, mirror)

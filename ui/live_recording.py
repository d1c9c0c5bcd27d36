"""The Live page's Record toggle: each face's emotions over the webcam stream, then the same
per-face shares, timelines and CSV as the Analyse page (`fer_core.recording`)."""

from __future__ import annotations

import streamlit as st

from fer_core.recording import Recorder
from ui.analysis_view import faces_view

REFRESH_S = 2.0  # a light fragment: the webcam callback shares the CPU


def recording_view(recorder: Recorder) -> None:
    st.subheader("Record")

    def toggled() -> None:
        if st.session_state["live_record"]:
            recorder.start()  # a new recording replaces the last one
        else:
            recorder.stop()

    st.toggle("Record each face's emotions", key="live_record", on_change=toggled,
              help="Keeps every face's probabilities while the webcam runs; turn it off to see "
              "the timelines and download the table (one row per face per frame).")
    if recorder.recording:
        _recording_count(recorder)
        return
    if recorder.full:
        st.warning(f"The recording stopped by itself at {recorder.max_rows:,} rows.")
    if recorder.frames:
        table = recorder.frame()
        st.download_button("Download the recording (CSV)", recorder.csv(),
                           file_name="webcam-emotions.csv", mime="text/csv", key="live_rec_csv")
        faces_view(table, thumbnails=None, key="live_rec", smooth=False, uncertain_below=None)


@st.fragment(run_every=REFRESH_S)
def _recording_count(recorder: Recorder) -> None:
    st.caption(f"Recording: {recorder.frames:,} frames, {recorder.row_count:,} face rows.")

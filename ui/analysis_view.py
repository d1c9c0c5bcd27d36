"""The Analyse page's views: a running analysis's progress (polled), and a finished one's
summary, timelines per face, shares, thumbnails and downloads."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from fer_core import analysis_jobs as jobs
from fer_core.analyze import emotion_share_by_face, smoothed
from fer_core.charts import face_timeline_figure
from fer_core.infer import DEFAULT_SMOOTHING
from fer_core.labels import DEFAULT_UNCERTAIN_BELOW, EMOTIONS, UNCERTAIN
from fer_core.text import format_seconds

POLL_S = 2.0
MAX_TIMELINES = 8  # faces drawn as timelines, most frames first


@st.fragment(run_every=POLL_S)
def progress_panel(folder: Path) -> None:
    """Progress bar with ETA and a Stop button; reruns the page when the analysis ends."""
    status = jobs.read_status(folder)
    if status.state != jobs.RUNNING:
        st.rerun()
    done = f"{status.frames:,}" + (f" of {status.total:,}" if status.total else "")
    eta = f" · about {format_seconds(status.eta_s)} left" if status.eta_s is not None else ""
    st.progress(status.fraction or 0.0, text=f"{status.name}: {done} frames analysed{eta}")
    if st.button("Stop", key="analysis_stop",
                 help="Stops at the next frame and keeps the rows written so far."):
        jobs.stop_analysis(folder)
        st.toast("Stopping…")


def result_view(status: jobs.AnalysisStatus) -> None:
    if status.state == jobs.FAILED:
        st.error(f"The analysis of {status.name} failed: {status.error}")
        return
    summary = status.summary or {}
    if status.state == jobs.STOPPED:
        st.warning(f"Stopped after {summary.get('frames', 0):,} frames; the rows so far are kept.")
    for problem in summary.get("problems", [])[:5]:
        st.warning(problem)
    cols = st.columns(5)
    cols[0].metric("Frames analysed", f"{summary.get('frames', 0):,}")
    cols[1].metric("Frames with faces", f"{summary.get('frames_with_faces', 0):,}")
    cols[2].metric("Faces (rows)", f"{summary.get('faces', 0):,}")
    cols[3].metric("Distinct faces", f"{summary.get('distinct_face_ids', 0):,}")
    cols[4].metric("Frames/s of analysis", f"{summary.get('frames_per_second', 0):.0f}")
    st.caption(f"Model {status.model}, " + ("each face classified with its mirror image too."
                                            if status.mirror else "one view of each face."))
    rows_path = status.folder / "rows.csv"
    if not rows_path.is_file():
        return
    rows = _rows(str(rows_path), rows_path.stat().st_mtime_ns)
    d1, d2 = st.columns(2)
    d1.download_button("Download the table (CSV)", rows_path.read_bytes(),
                       file_name=f"{Path(status.name).stem}-emotions.csv", mime="text/csv",
                       key="analysis_csv")
    video = status.folder / "annotated.mp4"
    if video.is_file():
        d2.download_button("Download the annotated video (mp4)", video.read_bytes(),
                           file_name=f"{Path(status.name).stem}-annotated.mp4",
                           mime="video/mp4", key="analysis_video")
    faces_view(rows, thumbnails=status.folder / "faces", key="analysis", smooth=True,
               uncertain_below=status.uncertain_below)


def faces_view(rows: pd.DataFrame, *, thumbnails: Path | None, key: str, smooth: bool,
               uncertain_below: float | None = DEFAULT_UNCERTAIN_BELOW) -> None:
    """Per face: the share of time in each emotion, and its timeline (with thumbnails when
    there are any); `smooth`: average each face's probabilities as the Live page does (the
    Live page's own recording is smoothed already). `uncertain_below`: the analysis's
    threshold, or None for a Live recording, whose threshold could move while it ran (each
    row's `uncertain` flag says what was shown)."""
    if rows.empty:
        st.info("No face was found in any analysed frame.")
        return
    st.subheader("Share of time in each emotion, per face")
    shares = emotion_share_by_face(rows, uncertain_below or 0.0)
    if uncertain_below is None:
        if UNCERTAIN in shares.columns:
            st.caption("Frames shown as uncertain while recording (top probability below the "
                       "threshold set at that moment) count as uncertain.")
    elif uncertain_below > 0:
        st.caption(f"Frames where a face's top probability is below {uncertain_below:.0%} "
                   "count as uncertain.")
    st.dataframe(shares.style.format({c: "{:.0%}" for c in shares.columns[2:]}),
                 hide_index=True, key=f"{key}_shares")
    faces = rows["face_id"].value_counts().index[:MAX_TIMELINES]
    st.subheader("Timelines")
    st.caption(("Each face's probabilities, smoothed as on the Live page (weight of the past "
                f"{DEFAULT_SMOOTHING}). " if smooth else "Each face's probabilities. ")
               + "Faces with the most frames first.")
    for face_id in faces:
        own = rows[rows["face_id"] == face_id].sort_values("time_s")
        probs = own[list(EMOTIONS)].to_numpy()
        left, right = st.columns([1, 4])
        with left:
            for thumb in sorted(thumbnails.glob(f"{face_id}-*.png"))[:3] if thumbnails else []:
                st.image(str(thumb), width=72)
        right.plotly_chart(face_timeline_figure(
            own["time_s"].to_numpy(), smoothed(probs, DEFAULT_SMOOTHING) if smooth else probs,
            title=f"face {face_id} · {len(own):,} frames"), key=f"{key}_timeline_{face_id}")
    with st.expander("The table"):
        st.dataframe(rows.head(1000), hide_index=True, key=f"{key}_rows")


@st.cache_data(max_entries=4, show_spinner=False)
def _rows(path: str, stamp: int) -> pd.DataFrame:
    del stamp  # only part of the cache key
    return pd.read_csv(path)

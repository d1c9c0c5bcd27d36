"""Analyse page: emotions of every face in a recorded video, a photo, a folder or a zip of
photos. A thin view over `fer_core.analysis_jobs` (each analysis a background process with
its own folder, so a closed tab loses nothing) and `fer_core.analyze` (rows, summary)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from fer_core import analysis_jobs as jobs
from fer_core import catalog
from fer_core.analyze import VIDEO, VIDEO_SUFFIXES, AnalysisError, input_kind
from fer_core.data.sources import IMAGE_SUFFIXES
from fer_core.uploads import MAX_UPLOAD_BYTES
from ui.analysis_view import progress_panel, result_view
from ui.confidence import mirror_checkbox, uncertain_slider
from ui.frame import page_setup

SELECTED = "analysis_selected"  # session_state: the analysis shown (its folder name)

page_setup(__file__)
st.title("Analyse")
st.caption("Emotions of every face in a recorded video, a photo, a folder or a zip of photos: "
           "a table with one row per face per frame, timelines per face, and the video with "
           "boxes drawn in. Analyses run in the background; close the tab and come back.")

models = {ref.spec: ref for ref in catalog.choices(finished_only=True, default_first=True)}
with st.form("analysis_new"):
    st.subheader("New analysis")
    upload = st.file_uploader(
        "Video, photo or zip of photos",
        type=[s.lstrip(".") for s in (*VIDEO_SUFFIXES, *IMAGE_SUFFIXES, ".zip")],
        key="analysis_upload", max_upload_size=MAX_UPLOAD_BYTES // 2**20)
    typed = st.text_input("…or a path on this machine (a file or a folder of photos)",
                          key="analysis_path")
    c1, c2, c3, c4 = st.columns(4)
    spec = c1.selectbox("Model", list(models) or ["default"], key="analysis_model",
                        format_func=lambda s: models[s].label if s in models else s)
    every = c2.number_input("Analyse every Nth frame", 1, 100, 1, key="analysis_every")
    annotated = c3.checkbox("Write the annotated video", True, key="analysis_annotated",
                            help="An H.264 mp4 with boxes and labels (videos only; no audio).")
    with c4:
        uncertain_below = uncertain_slider("analysis_uncertain")
        mirror = mirror_checkbox("analysis_mirror")
    started = st.form_submit_button("Start", type="primary")

if started:
    try:
        if upload is not None:
            is_video = Path(upload.name).suffix.lower() in VIDEO_SUFFIXES
            folder = jobs.new_analysis(upload.name, data=upload.getvalue(), model=spec,
                                       every=int(every), annotated=annotated and is_video,
                                       uncertain_below=uncertain_below, mirror=mirror)
        elif typed.strip():
            path = Path(typed.strip()).expanduser()
            is_video = input_kind(path) == VIDEO  # AnalysisError: missing, or not an input
            folder = jobs.new_analysis(path.name, input_path=path, model=spec, every=int(every),
                                       annotated=annotated and is_video,
                                       uncertain_below=uncertain_below, mirror=mirror)
        else:
            raise AnalysisError("choose a file to upload or type a path first")
        jobs.start_analysis(folder)
        st.session_state[SELECTED] = folder.name
    except (AnalysisError, OSError) as exc:
        st.error(f"Cannot start the analysis: {exc}")

analyses = {a.id: a for a in jobs.list_analyses()}
if not analyses:
    st.info("No analysis yet: upload a video or photos above and press Start.")
    st.stop()
if st.session_state.get(SELECTED) not in analyses:
    st.session_state[SELECTED] = next(iter(analyses))
shown = st.selectbox("Analyses", list(analyses), key=SELECTED,
                     format_func=lambda i: analyses[i].label)
status = jobs.read_status(analyses[shown].folder)
st.caption(f"State: **{status.state}** · model {status.model} · folder `{status.folder}`")
if status.state == jobs.RUNNING:
    progress_panel(status.folder)
else:
    result_view(status)

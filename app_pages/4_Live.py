"""Live: the emotion of every face in the browser's webcam, in real time, and in photos.

A thin view over `fer_core.detect` (Haar face detection) and `fer_core.infer` (classifier,
tracking, smoothing, drawing). The webcam runs through streamlit-webrtc: the browser sends its
camera to this server, the frame callback (in a worker thread, so `fer_core` only and no
`st.*`) boxes and labels the faces and sends the frames back; a `StreamMonitor` guarded by a
lock carries counts, timings and the latest faces to the panel beside the video
(`ui.live_panel`). The sidebar is `ui.live_settings`, the Photo tab `ui.live_photo`.

Network: by default no STUN/TURN server is used (`iceServers: []`), which works on this
machine and on a LAN without internet. For remote use set `FER_ICE_SERVERS` to the JSON list
of ICE servers, e.g. `[{"urls": "stun:stun.example.org:3478"}]`. Browsers allow the camera
only on localhost or over HTTPS.
"""

from __future__ import annotations

import time

import fer_core  # noqa: F401  (CPU flags before TensorFlow loads)
import av
import streamlit as st
from streamlit_webrtc import WebRtcMode, webrtc_streamer

from fer_core import catalog
from fer_core.backends import with_mirror_view
from fer_core.charts import live_timeline_figure
from fer_core.detect import FaceDetector
from fer_core.infer import FaceTracker, process_frame
from fer_core.paths import default_model_path
from fer_core.recording import Recorder
from fer_core.stream import StreamMonitor
from fer_core.webrtc import (
    ask_browser_to_show_frames_at_once,
    drop_stale_video_frames,
    ice_servers,
    release_video_frames_at_marker,
    send_each_frames_own_result,
    skipped_before,
)
from ui.frame import page_setup
from ui.live_panel import stream_panel
from ui.live_photo import photo_view
from ui.live_recording import recording_view
from ui.live_settings import live_settings
from ui.model_upload import with_uploaded_model
from ui.runtime_picker import picked_model

TIMELINE_S = 30  # seconds of the main face's history on the timeline
PANEL_REFRESH_S = 1.0  # how often the numbers beside the video redraw while playing
TIMELINE_REFRESH_S = 3.0  # how often the timeline chart redraws (a chart costs the browser)
TIMELINE_STEP_S = 0.25  # one timeline point per this many seconds
PHOTO_DETECT_WIDTH = 1024  # photos are scanned at more detail than webcam frames
STREAM_KEY = "live_stream"  # session_state: this browser session's tracker + monitor


@st.cache_resource(max_entries=8)
def detector_for(
    scale_factor: float, min_neighbors: int, min_size: int, width: int
) -> FaceDetector:
    return FaceDetector(scale_factor, min_neighbors, min_size, detect_width=width)


def new_stream() -> dict:
    """This browser session's face tracker and stream monitor, fresh."""
    return {"tracker": FaceTracker(), "monitor": StreamMonitor(history_s=TIMELINE_S),
            "recorder": Recorder()}


page_setup(__file__)
st.title("Live")
st.caption(
    "Every face in your webcam boxed and labelled with its emotion, in real time; or a photo. "
    "Faces are found with OpenCV's Haar cascade and classified by a FER2013 model."
)

# ---------------------------------------------------------------- model
# the shipped model first, then finished runs only (a webcam wants a trained model)
choices = with_uploaded_model(
    {ref.spec: ref for ref in catalog.choices(finished_only=True, default_first=True)},
    key="live_model_file", select_key="live_model")
if catalog.DEFAULT not in choices:
    st.warning(
        f"The default model has not been trained yet ({default_model_path()} does not exist). "
        + ("Pick a finished run below." if choices else "")
    )
if not choices:
    st.info("No model to use yet: train one on the **Train** page; finished runs appear here.")
    st.stop()
spec = st.selectbox("Model", list(choices), format_func=lambda s: choices[s].label,
                    key="live_model")
try:
    loaded, runs_on = picked_model(choices[spec])
    classifier = loaded.classifier
except (ValueError, OSError) as exc:
    st.error(f"Cannot use model {spec}: {exc}")
    st.stop()
st.sidebar.caption(runs_on)

settings = live_settings()
if settings.mirror:
    classifier = with_mirror_view(classifier)


def detector_at(width: int) -> FaceDetector:
    """The cached detector with the sidebar's settings, scanning at `width` (0: full size)."""
    return detector_for(settings.scale_factor, settings.min_neighbors, settings.min_size, width)


detector = detector_at(settings.detect_width)
smoothing, rescan_every = settings.smoothing, settings.rescan_every
uncertain_below = settings.uncertain_below
webcam_tab, photo_tab = st.tabs(["Webcam", "Photo"])

# ---------------------------------------------------------------- webcam
with webcam_tab:
    stream = st.session_state.setdefault(STREAM_KEY, new_stream())
    tracker: FaceTracker = stream["tracker"]
    monitor: StreamMonitor = stream["monitor"]
    recorder: Recorder = stream.setdefault("recorder", Recorder())

    async def process_newest(frames: list[av.VideoFrame]) -> list[av.VideoFrame]:
        # Runs in the webrtc worker thread: fer_core only, never st.*; nothing may escape.
        # Only the newest frame is processed; the ones queued behind it are dropped (and
        # counted), so the boxes never fall behind the camera.
        frame = frames[-1]
        dropped = len(frames) - 1 + sum(skipped_before(f) for f in frames)
        try:
            image = frame.to_ndarray(format="bgr24")
            annotated, faces = process_frame(
                image, detector, classifier, tracker=tracker, smoothing=smoothing,
                rescan_every=rescan_every, scan_in_background=True, monitor=monitor,
                uncertain_below=uncertain_below, captured_at=frame.time, dropped=dropped,
            )
            recorder.add(frame.time if frame.time is not None else time.time(), faces)
            return [av.VideoFrame.from_ndarray(annotated, format="bgr24")]  # pts set by webrtc
        except Exception as exc:  # a frame that cannot be converted: pass it through
            monitor.record_error(exc)
            return [frame]

    release_video_frames_at_marker()  # a camera frame is decoded when its last packet is in
    ask_browser_to_show_frames_at_once()  # no jitter buffer between the boxes and the user
    drop_stale_video_frames()  # frames waiting upstream of the callback are dropped too
    send_each_frames_own_result()  # not the previous frame's: one camera interval less lag
    servers, ice_problem = ice_servers()
    if ice_problem:
        st.warning(ice_problem)
    video_col, panel_col = st.columns([3, 2])
    with video_col:
        ctx = webrtc_streamer(
            key="live-webcam",
            mode=WebRtcMode.SENDRECV,
            rtc_configuration={"iceServers": servers},
            media_stream_constraints={"video": True, "audio": False},
            queued_video_frames_callback=process_newest,
            async_processing=True,
        )
        st.caption(
            "Press START and allow the camera. Browsers give the camera only to pages on "
            "localhost or HTTPS."
        )
    playing = bool(ctx is not None and ctx.state.playing)

    @st.fragment(run_every=PANEL_REFRESH_S if playing else None)
    def live_panel() -> None:
        stream_panel(monitor.snapshot(), playing)  # light elements only: see ui.live_panel

    @st.fragment(run_every=TIMELINE_REFRESH_S if playing else None)
    def live_timeline() -> None:
        timeline = monitor.timeline(TIMELINE_STEP_S)
        if timeline:
            st.plotly_chart(live_timeline_figure(timeline, window_s=TIMELINE_S),
                            key="live_timeline")

    with panel_col:
        live_panel()
        live_timeline()
    if st.button("Reset tracking and statistics", key="live_reset"):
        st.session_state[STREAM_KEY] = new_stream()
        st.rerun()
    recording_view(recorder)

# ---------------------------------------------------------------- photos
with photo_tab:
    photo_view(lambda: detector_at(max(settings.detect_width, PHOTO_DETECT_WIDTH)), classifier,
               uncertain_below=uncertain_below)

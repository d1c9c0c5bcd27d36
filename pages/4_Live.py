"""Live: the emotion of every face in the browser's webcam, in real time, and in photos.

A thin view over `fer_core.detect` (Haar face detection) and `fer_core.infer` (classifier,
tracking, smoothing, drawing). The webcam runs through streamlit-webrtc: the browser sends its
camera to this server, the frame callback (in a worker thread, so `fer_core` only and no
`st.*`) boxes and labels the faces and sends the frames back; a `StreamMonitor` guarded by a
lock carries counts, timings and the latest faces to the panel beside the video.

Network: by default no STUN/TURN server is used (`iceServers: []`), which works on this
machine and on a LAN without internet. For remote use set `FER_ICE_SERVERS` to the JSON list
of ICE servers, e.g. `[{"urls": "stun:stun.example.org:3478"}]`. Browsers allow the camera
only on localhost or over HTTPS.
"""

from __future__ import annotations

import time

import fer_core  # noqa: F401  (CPU flags before TensorFlow loads)
import av
import plotly.graph_objects as go
import streamlit as st
from streamlit_webrtc import WebRtcMode, webrtc_streamer

from fer_core import catalog
from fer_core.detect import FaceDetector
from fer_core.infer import (
    DEFAULT_RESCAN_EVERY,
    DEFAULT_SMOOTHING,
    FacePrediction,
    FaceTracker,
    decode_image,
    process_frame,
)
from fer_core.labels import EMOTIONS
from fer_core.paths import default_model_path
from fer_core.stream import DROP_WARNING, StreamMonitor
from fer_core.webrtc import drop_stale_video_frames, ice_servers, skipped_before
from ui.models import loaded_model

TIMELINE_S = 30  # seconds of the main face's history on the timeline
PANEL_REFRESH_S = 1.0  # how often the numbers beside the video redraw while playing
TIMELINE_REFRESH_S = 3.0  # how often the timeline chart redraws (a chart costs the browser)
TIMELINE_STEP_S = 0.25  # one timeline point per this many seconds
PHOTO_DETECT_WIDTH = 1024  # photos are scanned at more detail than webcam frames
DETECT_WIDTHS = {"240 px": 240, "320 px": 320, "480 px": 480, "640 px": 640, "full size": 0}
STREAM_KEY = "live_stream"  # session_state: this browser session's tracker + monitor


@st.cache_resource(max_entries=8)
def detector_for(
    scale_factor: float, min_neighbors: int, min_size: int, width: int
) -> FaceDetector:
    return FaceDetector(scale_factor, min_neighbors, min_size, detect_width=width)


def probs_figure(faces: list[FacePrediction], height: int = 260) -> go.Figure:
    """Horizontal bars of the 7 probabilities, one colour per face."""
    fig = go.Figure()
    for n, face in enumerate(faces[:4], start=1):
        name = f"face {face.track_id if face.track_id is not None else n}"
        fig.add_bar(y=list(EMOTIONS), x=list(face.probs), orientation="h", name=name)
    fig.update_layout(
        barmode="group", height=height, margin={"l": 0, "r": 0, "t": 10, "b": 0},
        xaxis={"range": [0, 1], "tickformat": ".0%"}, yaxis={"autorange": "reversed"},
        legend={"orientation": "h", "y": -0.15},
    )
    return fig


def timeline_figure(timeline: list[tuple[float, tuple[float, ...]]]) -> go.Figure:
    """The main face's probabilities over the last TIMELINE_S seconds."""
    now = time.time()
    xs = [t - now for t, _ in timeline]
    fig = go.Figure()
    for i, emotion in enumerate(EMOTIONS):
        fig.add_scatter(x=xs, y=[p[i] for _, p in timeline], mode="lines", name=emotion)
    fig.update_layout(
        height=240, margin={"l": 0, "r": 0, "t": 10, "b": 0},
        xaxis={"range": [-TIMELINE_S, 0], "title": "seconds ago"},
        yaxis={"range": [0, 1], "tickformat": ".0%"}, legend={"orientation": "h", "y": -0.3},
    )
    return fig


st.set_page_config(page_title="Live · FER workbench", page_icon=":material/videocam:",
                   layout="wide")
st.title("Live")
st.caption(
    "Every face in your webcam boxed and labelled with its emotion, in real time; or a photo. "
    "Faces are found with OpenCV's Haar cascade and classified by a FER2013 model."
)

# ---------------------------------------------------------------- model
# the shipped model first, then finished runs only (a webcam wants a trained model)
choices = {ref.spec: ref for ref in catalog.choices(finished_only=True, default_first=True)}
with st.sidebar:
    own_model = st.file_uploader(
        "Your own model (.keras)", type=["keras"], key="live_model_file",
        help="A Keras 3 .keras file taking 48x48 grey faces and giving 7 emotions. It is "
        "checked and loaded in safe mode: no code from Lambda layers runs.",
    )
if own_model is not None:
    try:  # untrusted: size, format and safe-mode load are checked before it is kept
        own = catalog.upload(own_model.getvalue(), own_model.name)
        choices = {own.spec: own, **choices}
        if st.session_state.get("live_model_upload_id") != own_model.file_id:
            st.session_state["live_model_upload_id"] = own_model.file_id
            st.session_state["live_model"] = own.spec  # a new upload is selected once
    except (ValueError, OSError) as exc:
        st.error(f"That model file cannot be used: {exc}")
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
    classifier = loaded_model(choices[spec]).classifier
except (ValueError, OSError) as exc:
    st.error(f"Cannot use model {spec}: {exc}")
    st.stop()

with st.sidebar:
    st.header("Face detection")
    scale_factor = st.slider(
        "Scale factor", 1.05, 1.5, 1.1, 0.05, key="live_scale",
        help="Step between the sizes the detector tries: lower finds more faces, runs slower.",
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
        help="Between full scans, known faces are looked for near their last place (faster). "
        "1: scan the whole frame every time.",
    )

detector = detector_for(scale_factor, min_neighbors, min_size, detect_width)
webcam_tab, photo_tab = st.tabs(["Webcam", "Photo"])

# ---------------------------------------------------------------- webcam
with webcam_tab:
    stream = st.session_state.setdefault(
        STREAM_KEY, {"tracker": FaceTracker(), "monitor": StreamMonitor(history_s=TIMELINE_S)}
    )
    tracker: FaceTracker = stream["tracker"]
    monitor: StreamMonitor = stream["monitor"]

    async def process_newest(frames: list[av.VideoFrame]) -> list[av.VideoFrame]:
        # Runs in the webrtc worker thread: fer_core only, never st.*; nothing may escape.
        # Only the newest frame is processed; the ones queued behind it are dropped (and
        # counted), so the boxes never fall behind the camera.
        frame = frames[-1]
        dropped = len(frames) - 1 + sum(skipped_before(f) for f in frames)
        try:
            image = frame.to_ndarray(format="bgr24")
            annotated, _ = process_frame(
                image, detector, classifier, tracker=tracker, smoothing=smoothing,
                rescan_every=rescan_every, monitor=monitor, captured_at=frame.time,
                dropped=dropped,
            )
            return [av.VideoFrame.from_ndarray(annotated, format="bgr24")]  # pts set by webrtc
        except Exception as exc:  # a frame that cannot be converted: pass it through
            monitor.record_error(exc)
            return [frame]

    drop_stale_video_frames()  # frames waiting upstream of the callback are dropped too
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
        # Light elements only: this reruns every PANEL_REFRESH_S while the camera plays, and
        # each rerun costs the server and the browser CPU that the stream needs.
        snap = monitor.snapshot()
        fps, lag = st.columns(2)
        dropped, frame_ms = st.columns(2)
        fps.metric("Frames/s", f"{snap['fps']:.0f}",
                   help=f"processed per second, of {snap['camera_fps']:.0f} arriving")
        lag.metric(
            "Behind camera", "-" if snap["lag_ms"] is None else f"{snap['lag_ms']:.0f} ms",
            help="median extra delay of a frame from its capture time stamp to the end of its "
            "processing, over the fastest frame seen (95th percentile: "
            + ("-" if snap["lag_p95_ms"] is None else f"{snap['lag_p95_ms']:.0f} ms") + ")",
        )
        dropped.metric("Dropped", f"{snap['drop_share']:.0%}",
                       help=f"{snap['dropped']} frames skipped since START to stay current")
        frame_ms.metric(
            "Per frame", f"{snap['frame_ms']:.0f} ms",
            help=f"median of recent frames: detection {snap['detect_ms']:.1f} ms, "
            f"classification {snap['classify_ms']:.1f} ms",
        )
        st.caption(
            f"{snap['frames']} frames processed · {snap['dropped']} dropped · "
            f"{snap['errors']} failed · detection {snap['detect_ms']:.1f} ms · "
            f"classification {snap['classify_ms']:.1f} ms"
        )
        if playing and snap["drop_share"] > DROP_WARNING:
            st.warning(
                f"This machine cannot keep up with the camera: {snap['drop_share']:.0%} of its "
                f"frames are dropped ({snap['fps']:.0f} of {snap['camera_fps']:.0f} a second are "
                "processed). The boxes stay current; to process more frames, lower the "
                "detection width, scan the full frame less often, or close other programs."
            )
        if snap["errors"]:
            st.warning(f"{snap['errors']} frame(s) failed and were passed through; "
                       f"last error: {snap['last_error']}")
        faces = snap["faces"]
        if not playing and not snap["frames"]:
            st.info("Start the webcam to see each face's emotion here.")
        elif not faces:
            st.info("No face in view.")
        else:
            main = faces[0]
            st.markdown(f"**Main face: {main.label}** ({main.confidence:.0%}) · "
                        f"{len(faces)} face(s) in view")
            for emotion, p in zip(EMOTIONS, main.probs, strict=True):
                st.progress(float(min(max(p, 0.0), 1.0)), text=f"{emotion} {p:.0%}")
            if len(faces) > 1:
                st.caption(" · ".join(
                    f"face {f.track_id}: {f.label} {f.confidence:.0%}" for f in faces[1:]
                ))

    @st.fragment(run_every=TIMELINE_REFRESH_S if playing else None)
    def live_timeline() -> None:
        timeline = monitor.timeline(TIMELINE_STEP_S)
        if timeline:
            st.plotly_chart(timeline_figure(timeline), key="live_timeline")

    with panel_col:
        live_panel()
        live_timeline()
    if st.button("Reset tracking and statistics", key="live_reset"):
        st.session_state[STREAM_KEY] = {
            "tracker": FaceTracker(), "monitor": StreamMonitor(history_s=TIMELINE_S)
        }
        st.rerun()

# ---------------------------------------------------------------- photos
with photo_tab:
    source = st.radio("Source", ["Upload an image", "Take a snapshot"], horizontal=True,
                      key="photo_source")
    if source == "Upload an image":
        picture = st.file_uploader("Image", type=["jpg", "jpeg", "png", "webp"], key="photo_file")
    else:
        picture = st.camera_input("Snapshot", key="photo_camera")
    if picture is not None:
        name = getattr(picture, "name", "snapshot")
        try:
            image = decode_image(picture.getvalue(), name)
        except ValueError as exc:
            st.error(str(exc))
            image = None
        if image is not None:
            photo_detector = detector_for(
                scale_factor, min_neighbors, min_size, max(detect_width, PHOTO_DETECT_WIDTH)
            )
            photo_monitor = StreamMonitor()
            annotated, faces = process_frame(image, photo_detector, classifier,
                                             monitor=photo_monitor)
            if not faces and not photo_monitor.errors:
                st.info(
                    f"No face found in {name} with the current detector settings. Try a lower "
                    "'Min neighbours' or 'Min face size' in the sidebar, or classify the whole "
                    "image as one face."
                )
                if st.checkbox("Classify the whole image as one face", key="photo_whole"):
                    annotated, faces = process_frame(image, photo_detector, classifier,
                                                     monitor=photo_monitor, whole_image=True)
            if photo_monitor.errors:
                st.error(f"Could not process {name}: {photo_monitor.last_error}")
            left, right = st.columns([3, 2])
            left.image(annotated, channels="BGR", caption=f"{name}: {len(faces)} face(s)")
            if faces:
                right.plotly_chart(probs_figure(faces, height=320), key="photo_probs")
                right.dataframe(
                    {
                        "face": list(range(1, len(faces) + 1)),
                        "emotion": [f.label for f in faces],
                        "confidence": [round(f.confidence, 3) for f in faces],
                        "box (x, y, w, h)": [str(tuple(f.box)) for f in faces],
                    },
                    hide_index=True,
                )

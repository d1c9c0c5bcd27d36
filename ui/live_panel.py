"""The numbers beside the Live page's video: frame rate, lag, dropped frames, timings, and
the main face's probabilities, drawn from one `StreamMonitor.snapshot()`.

The page calls `stream_panel` inside a fragment that reruns every second while the camera
plays, so it draws light elements only (metrics, text, progress bars; no chart): each rerun
costs the server and the browser CPU that the stream needs.
"""

from __future__ import annotations

import streamlit as st

from fer_core.labels import EMOTIONS
from fer_core.stream import DROP_WARNING


def stream_panel(snap: dict, playing: bool) -> None:
    """Metrics 2x2, a caption of the counts, warnings, then the faces in view.

    The units are in the labels and the values bare numbers: a metric in a quarter of the
    panel holds about four characters of its large value font, and "39 ms" was cut off."""
    fps, lag = st.columns(2)
    dropped, frame_ms = st.columns(2)
    fps.metric("Frames/s", f"{snap['fps']:.0f}",
               help=f"processed per second, of {snap['camera_fps']:.0f} arriving")
    lag.metric(
        "Behind camera, ms", "-" if snap["lag_ms"] is None else f"{snap['lag_ms']:.0f}",
        help="median extra delay of a frame from its capture time stamp to the end of its "
        "processing, over the fastest frame seen (95th percentile: "
        + ("-" if snap["lag_p95_ms"] is None else f"{snap['lag_p95_ms']:.0f} ms") + ")",
    )
    dropped.metric("Dropped", f"{snap['drop_share']:.0%}",
                   help=f"{snap['dropped']} frames skipped since START to stay current")
    frame_ms.metric(
        "Per frame, ms", f"{snap['frame_ms']:.0f}",
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
    _faces(snap["faces"], started=playing or bool(snap["frames"]))


def _faces(faces: list, started: bool) -> None:
    if not started:
        st.info("Start the webcam to see each face's emotion here.")
    elif not faces:
        st.info("No face in view.")
    else:
        main = faces[0]
        st.markdown(f"**Main face: {main.shown}** ({main.confidence:.0%}) · "
                    f"{len(faces)} face(s) in view")
        for emotion, p in zip(EMOTIONS, main.probs, strict=True):
            st.progress(float(min(max(p, 0.0), 1.0)), text=f"{emotion} {p:.0%}")
        if len(faces) > 1:
            st.caption(" · ".join(
                f"face {f.track_id}: {f.shown} {f.confidence:.0%}" for f in faces[1:]
            ))

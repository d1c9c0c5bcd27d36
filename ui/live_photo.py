"""The Live page's Photo tab: an uploaded image or a camera snapshot, its faces boxed and
labelled, their probabilities as bars and a table."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from fer_core.charts import face_probabilities_figure
from fer_core.detect import FaceDetector
from fer_core.infer import decode_image, process_frame
from fer_core.labels import DEFAULT_UNCERTAIN_BELOW
from fer_core.runtimes import FaceModel
from fer_core.stream import StreamMonitor

# a face's box (FacePrediction.box) as four columns: one "(x, y, w, h)" column was cut off
BOX_COLUMNS = {"x": "left edge", "y": "top edge", "w": "width", "h": "height"}


def photo_view(detector: Callable[[], FaceDetector], classifier: FaceModel, *,
               uncertain_below: float = DEFAULT_UNCERTAIN_BELOW) -> None:
    """Source choice, then the annotated picture; `detector` is called once a picture is
    there (photos are scanned at more detail than webcam frames). Faces less sure than
    `uncertain_below` are shown as uncertain."""
    source = st.radio("Source", ["Upload an image", "Take a snapshot"], horizontal=True,
                      key="photo_source")
    if source == "Upload an image":
        picture = st.file_uploader("Image", type=["jpg", "jpeg", "png", "webp"], key="photo_file")
    else:
        picture = st.camera_input("Snapshot", key="photo_camera")
    if picture is None:
        return
    name = getattr(picture, "name", "snapshot")
    try:
        image = decode_image(picture.getvalue(), name)
    except ValueError as exc:
        st.error(str(exc))
        return
    photo_detector = detector()
    monitor = StreamMonitor()
    annotated, faces = process_frame(image, photo_detector, classifier, monitor=monitor,
                                     uncertain_below=uncertain_below)
    if not faces and not monitor.errors:
        st.info(
            f"No face found in {name} with the current detector settings. Try a lower "
            "'Min neighbours' or 'Min face size' in the sidebar, or classify the whole "
            "image as one face."
        )
        if st.checkbox("Classify the whole image as one face", key="photo_whole"):
            annotated, faces = process_frame(image, photo_detector, classifier,
                                             monitor=monitor, whole_image=True,
                                             uncertain_below=uncertain_below)
    if monitor.errors:
        st.error(f"Could not process {name}: {monitor.last_error}")
    left, right = st.columns([3, 2])
    left.image(annotated, channels="BGR", caption=f"{name}: {len(faces)} face(s)")
    if faces:
        right.plotly_chart(face_probabilities_figure(faces, height=320), key="photo_probs")
        st.dataframe(  # under both columns: seven columns do not fit beside the photo
            {
                "face": list(range(1, len(faces) + 1)),
                "emotion": [f.shown for f in faces],
                "confidence": [round(f.confidence, 3) for f in faces],
                **{axis: [int(f.box[i]) for f in faces] for i, axis in enumerate(BOX_COLUMNS)},
            },
            hide_index=True, width="content",
            column_config={axis: st.column_config.NumberColumn(help=f"{what} of the face's box, "
                                                                    "in pixels of the photo")
                           for axis, what in BOX_COLUMNS.items()},
        )

"""Issue 12, Live page: metric values that fit the 2x2 panel, the photo table's box as four
columns, and the model uploader's own size limit (not the server's, set for datasets)."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import streamlit_webrtc
from PIL import Image
from streamlit.testing.v1 import AppTest

import fer_core  # noqa: F401  (CPU flags before TensorFlow loads)
from face_frames import face_frame
from fer_core.models import create_model
from fer_core.uploads import MAX_MODEL_UPLOAD_BYTES

PAGE = str(Path(__file__).resolve().parents[1] / "app_pages" / "4_Live.py")
VALUE_CHARS = 4  # what a quarter of the panel shows of a metric's large value font


@pytest.fixture
def live_page(tmp_path, monkeypatch, fer_dirs) -> AppTest:
    """The Live page run once with a tiny default model, no runs and a stand-in for the
    webrtc component (AppTest cannot render custom components)."""
    model = tmp_path / "tiny.keras"
    create_model("fernet", width=4, convs=1).save(model)
    fer_dirs.default_model(model)
    monkeypatch.delenv("FER_ICE_SERVERS", raising=False)
    monkeypatch.setattr(streamlit_webrtc, "webrtc_streamer", lambda **_: SimpleNamespace(
        state=SimpleNamespace(playing=False, signalling=False)))
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception, at.exception
    return at


def _panel_script() -> None:
    from fer_core.detect import Box
    from fer_core.infer import FacePrediction
    from ui.live_panel import stream_panel

    face = FacePrediction(Box(0, 0, 50, 50), "happy", 0.6, (0.1, 0.0, 0.1, 0.6, 0.1, 0.05, 0.05),
                          track_id=1)
    stream_panel({"frames": 12345, "errors": 0, "dropped": 4321, "last_error": None,
                  "fps": 29.6, "camera_fps": 30.0, "drop_share": 0.35, "lag_ms": 1234.4,
                  "lag_p95_ms": 2345.6, "frame_ms": 394.2, "detect_ms": 12.3,
                  "classify_ms": 380.1, "faces": [face], "timeline": []}, True)


def test_panel_values_are_bare_numbers_with_units_in_the_labels() -> None:
    at = AppTest.from_function(_panel_script, default_timeout=60).run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {"Frames/s": "30", "Behind camera, ms": "1234", "Dropped": "35%",
                       "Per frame, ms": "394"}
    assert all(len(v) <= VALUE_CHARS for v in metrics.values())


def test_photo_table_has_the_box_as_four_columns(live_page) -> None:
    image = face_frame(3)
    buf = io.BytesIO()
    Image.fromarray(image[:, :, ::-1]).save(buf, format="PNG")
    live_page.file_uploader(key="photo_file").set_value(("three.png", buf.getvalue(),
                                                         "image/png"))
    live_page.run()
    assert not live_page.exception
    table = live_page.dataframe[0].value
    assert list(table.columns) == ["face", "emotion", "confidence", "x", "y", "w", "h"]
    assert len(table) == 3
    boxes = table[["x", "y", "w", "h"]].to_numpy()
    assert np.issubdtype(boxes.dtype, np.integer) and (boxes[:, 2:] > 0).all()
    assert (boxes[:, 0] + boxes[:, 2] <= image.shape[1]).all()


def test_model_uploader_says_the_model_limit(live_page) -> None:
    uploader = live_page.sidebar.get("file_uploader")[0]
    limit_mb = MAX_MODEL_UPLOAD_BYTES // 2**20
    assert uploader.proto.max_upload_size_mb == limit_mb  # the widget shows "100MB per file"
    assert f"up to {limit_mb} MB" in uploader.proto.help

"""AppTest of app_pages/4_Live.py. AppTest cannot render custom components, so
`streamlit_webrtc.webrtc_streamer` is replaced by a fake that records the page's call; the
captured frame callback is then driven with real `av.VideoFrame`s, as the webrtc worker would."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pytest
import streamlit_webrtc
from PIL import Image
from streamlit.testing.v1 import AppTest

import fer_core  # (CPU flags before TensorFlow loads; fer_core.EMOTIONS below)
from fer_core.files import file_sha256
from face_frames import face_frame

PAGE = str(Path(__file__).resolve().parents[1] / "app_pages" / "4_Live.py")


@pytest.fixture
def env(tmp_path, monkeypatch, tiny_model, fer_dirs):
    """The default model is the tiny one; no runs; no ICE servers; a fake webrtc_streamer."""
    fer_dirs.default_model(tiny_model)
    monkeypatch.delenv("FER_ICE_SERVERS", raising=False)
    monkeypatch.delenv("FER_FRAME_LOG", raising=False)
    calls: list[dict] = []

    def fake_webrtc_streamer(**kwargs):
        calls.append(kwargs)
        return SimpleNamespace(state=SimpleNamespace(playing=False, signalling=False))

    monkeypatch.setattr(streamlit_webrtc, "webrtc_streamer", fake_webrtc_streamer)
    return SimpleNamespace(calls=calls, runs=fer_dirs.runs, tmp=tmp_path, dirs=fer_dirs)


def _run() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def _frame_callback(call: dict):
    """The page's queued-frames callback as a plain function of one frame, as the webrtc
    worker drives it (a list of the frames queued since the last call; here one)."""
    queued = call["queued_video_frames_callback"]

    def drive(frame):
        (out,) = asyncio.run(queued([frame]))
        return out

    return drive


def _png(image_bgr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image_bgr[:, :, ::-1]).save(buf, format="PNG")
    return buf.getvalue()


def test_webrtc_call_is_sendrecv_without_ice_servers(env):
    at = _run()
    (call,) = env.calls
    assert call["mode"] == streamlit_webrtc.WebRtcMode.SENDRECV
    assert call["rtc_configuration"] == {"iceServers": []}
    assert call["media_stream_constraints"] == {"video": True, "audio": False}
    assert callable(call["queued_video_frames_callback"]) and call["async_processing"]
    assert at.selectbox(key="live_model").value == "default"
    assert any("Start the webcam" in i.value for i in at.info)


def test_ice_servers_from_environment(env, monkeypatch):
    servers = [{"urls": "stun:stun.example.org:3478"},
               {"urls": "turn:turn.example.org", "username": "u", "credential": "p"}]
    monkeypatch.setenv("FER_ICE_SERVERS", json.dumps(servers))
    _run()
    assert env.calls[-1]["rtc_configuration"] == {"iceServers": servers}
    monkeypatch.setenv("FER_ICE_SERVERS", "stun:not-json")
    at = _run()
    assert env.calls[-1]["rtc_configuration"] == {"iceServers": []}
    assert any("FER_ICE_SERVERS" in w.value for w in at.warning)


def test_callback_labels_faces_and_survives_bad_frames(env, monkeypatch):
    log = env.dirs.frame_log()
    at = _run()
    callback = _frame_callback(env.calls[-1])
    frame = face_frame(3)
    out = callback(av.VideoFrame.from_ndarray(frame, format="bgr24"))
    monitor = at.session_state["live_stream"]["monitor"]
    assert monitor.snapshot()["errors"] == 0, monitor.snapshot()["last_error"]
    assert isinstance(out, av.VideoFrame)
    annotated = out.to_ndarray(format="bgr24")
    assert annotated.shape == frame.shape and not np.array_equal(annotated, frame)
    odd = [
        av.VideoFrame.from_ndarray(np.zeros((2, 2, 3), np.uint8), format="bgr24"),
        av.VideoFrame.from_ndarray(np.zeros((49, 63), np.uint8), format="gray"),
        av.VideoFrame.from_ndarray(np.zeros((480, 640, 4), np.uint8), format="bgra"),
        av.VideoFrame.from_ndarray(np.zeros((720, 640), np.uint8), format="yuv420p"),
    ]
    for bad in odd:
        back = callback(bad)
        assert isinstance(back, av.VideoFrame)
        assert (back.width, back.height) == (bad.width, bad.height)
    snap = monitor.snapshot()
    assert snap["frames"] == 5 and snap["errors"] == 0
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [len(entry["faces"]) for entry in lines] == [3, 0, 0, 0, 0]
    # The panel shows what the callback saw on the next redraw.
    at.run()
    assert not at.exception
    assert any("5 frames processed · 0 dropped · 0 failed" in c.value for c in at.caption)
    assert any("No face in view" in i.value for i in at.info)  # the last frame had none


def test_faces_are_classified_with_their_mirror_image_unless_unticked(env, monkeypatch):
    from fer_core import infer
    from fer_core.backends import MirroredFaceModel, TemperedFaceModel

    used = []  # the classifier the webcam callback hands to process_frame, frame by frame
    real = infer.process_frame
    monkeypatch.setattr(infer, "process_frame",
                        lambda image, detector, classifier, **kw: used.append(classifier)
                        or real(image, detector, classifier, **kw))

    def mirrored(model) -> bool:
        inner = model.model if isinstance(model, TemperedFaceModel) else model
        return isinstance(inner, MirroredFaceModel)

    at = _run()
    box = at.sidebar.checkbox(key="live_mirror")
    assert box.value is True
    frame = av.VideoFrame.from_ndarray(face_frame(1), format="bgr24")
    _frame_callback(env.calls[-1])(frame)
    box.uncheck().run()
    assert not at.exception
    _frame_callback(env.calls[-1])(frame)
    assert [mirrored(c) for c in used] == [True, False]
    assert at.session_state["live_stream"]["monitor"].snapshot()["errors"] == 0


def test_callback_counts_errors_and_page_shows_them(env):
    at = _run()
    callback = _frame_callback(env.calls[-1])

    class Unconvertible:
        pts, time_base = None, None

        def to_ndarray(self, format: str):
            raise ValueError("corrupt frame")

    bad = Unconvertible()
    assert callback(bad) is bad
    at.run()
    assert any("1 failed" in c.value for c in at.caption)
    assert any("corrupt frame" in w.value for w in at.warning)


def test_no_default_model_says_so_and_offers_finished_runs(env, monkeypatch):
    env.dirs.default_model()  # a file that does not exist
    at = _run()
    assert any("not been trained yet" in w.value for w in at.warning)
    assert any("Train" in i.value for i in at.info)
    assert not env.calls  # nothing to stream with

    from tiny_run import make_tiny_run

    info = make_tiny_run(env.runs, name="liveexample")
    at = _run()
    assert at.selectbox(key="live_model").options == [f"run liveexample · fernet ({info.id})"]
    assert env.calls and env.calls[-1]["rtc_configuration"] == {"iceServers": []}


def test_photo_upload_labels_faces(env):
    at = _run()
    at.file_uploader(key="photo_file").set_value(("three.png", _png(face_frame(3)), "image/png"))
    at.run()
    assert not at.exception
    assert "three.png: 3 face(s)" in _image_captions(at)
    table = at.dataframe[0].value
    named = {*fer_core.EMOTIONS, *(f"uncertain ({e}?)" for e in fer_core.EMOTIONS)}
    assert len(table) == 3 and set(table["emotion"]) <= named


def test_faces_less_sure_than_the_threshold_are_called_uncertain(env):
    at = _run()
    at.file_uploader(key="photo_file").set_value(("three.png", _png(face_frame(3)), "image/png"))
    at.slider(key="live_uncertain").set_value(0.0).run()
    table = at.dataframe[0].value
    assert set(table["emotion"]) <= set(fer_core.EMOTIONS)  # 0: every face named
    at.slider(key="live_uncertain").set_value(0.9).run()
    table = at.dataframe[0].value
    for emotion, confidence in zip(table["emotion"], table["confidence"], strict=True):
        assert (emotion.startswith("uncertain (")) == (confidence < 0.9), (emotion, confidence)


def test_photo_without_face_offers_whole_image(env):
    at = _run()
    at.file_uploader(key="photo_file").set_value(("bg.png", _png(face_frame(0)), "image/png"))
    at.run()
    assert any("No face found in bg.png" in i.value for i in at.info)
    at.checkbox(key="photo_whole").check().run()
    assert not at.exception
    assert len(at.dataframe[0].value) == 1


def test_photo_that_is_not_an_image(env):
    at = _run()
    at.file_uploader(key="photo_file").set_value(("fake.jpg", b"not an image", "image/jpeg"))
    at.run()
    assert not at.exception
    assert any("fake.jpg: not a readable image" in e.value for e in at.error)


def _image_captions(at: AppTest) -> list[str]:
    return [img.caption for el in at.get("image") for img in el.proto.imgs]


def test_webrtc_loads_after_tensorflow_without_crashing():
    """`import tensorflow; import aiortc` segfaults unless fer_core loaded pylibsrtp first
    (fer_core/cpu.py): opening Live after a page that used TensorFlow must not kill the server."""
    import subprocess
    import sys

    code = "import fer_core, tensorflow, aiortc; print('alive')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False, cwd=Path(__file__).resolve().parents[1], timeout=300)
    assert done.returncode == 0 and "alive" in done.stdout, done.stderr[-2000:]


def test_own_model_upload_is_checked_then_used(env, tiny_model, monkeypatch):
    """A user's .keras file becomes a model choice once it loads in safe mode; a file that
    is not a model, or whose Lambda layer would run code, is an error and the page goes on."""
    import keras

    at = _run()
    at.file_uploader(key="live_model_file").set_value(
        ("mine.keras", tiny_model.read_bytes(), "application/octet-stream"))
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key="live_model").options[0] == "uploaded mine.keras"
    chosen = Path(at.selectbox(key="live_model").value)  # chosen, and kept in the cache folder
    assert chosen.parent == env.dirs.cache / "models" and chosen.read_bytes() == \
        tiny_model.read_bytes()
    assert env.calls[-1]["queued_video_frames_callback"]

    inputs = keras.Input((48, 48, 1))
    hostile = keras.Model(inputs, keras.layers.Dense(7)(keras.layers.Flatten()(
        keras.layers.Lambda(lambda x: x * 2.0)(inputs))))
    hostile.save(env.tmp / "hostile.keras")
    for name, blob in (("hostile.keras", (env.tmp / "hostile.keras").read_bytes()),
                       ("notes.keras", b"just text")):
        at = _run()
        at.file_uploader(key="live_model_file").set_value((name, blob, "application/octet-stream"))
        at.run()
        assert not at.exception, at.exception
        assert any(f"upload:{name}" in e.value for e in at.error), [e.value for e in at.error]
        assert at.selectbox(key="live_model").value == "default"  # the page still works


@pytest.fixture(scope="module")
def tiny_exports(tiny_model, tmp_path_factory) -> dict[str, Path]:
    from fer_core.export import export_file

    folder = tmp_path_factory.mktemp("live-exports")
    return {fmt: export_file(tiny_model, folder / f"tiny.{fmt}") for fmt in ("onnx", "tflite")}


@pytest.mark.parametrize("fmt, runtime", [("onnx", "ONNX Runtime"), ("tflite", "LiteRT")])
def test_an_uploaded_onnx_or_tflite_model_labels_webcam_faces(env, tiny_exports, fmt, runtime):
    log = env.dirs.frame_log()
    at = _run()
    at.file_uploader(key="live_model_file").set_value(
        (f"mine.{fmt}", tiny_exports[fmt].read_bytes(), "application/octet-stream"))
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key="live_model").options[0] == f"uploaded mine.{fmt}"
    assert Path(at.selectbox(key="live_model").value).suffix == f".{fmt}"
    assert any(f"Runs on {runtime}" in c.value for c in at.sidebar.caption)
    callback = _frame_callback(env.calls[-1])
    callback(av.VideoFrame.from_ndarray(face_frame(3), format="bgr24"))
    assert [len(json.loads(line)["faces"]) for line in log.read_text().splitlines()] == [3]


def test_the_default_model_runs_on_its_fastest_export(env, tiny_model, tiny_exports, monkeypatch):
    """With a measured export beside the shipped .keras file, Automatic runs it; the Runtime
    box can go back to Keras; a damaged export falls back to Keras with a warning."""
    from fer_core import model_card

    folder = env.tmp / "shipped"
    folder.mkdir()
    shipped = folder / "default.keras"
    shipped.write_bytes(tiny_model.read_bytes())
    env.dirs.default_model(shipped)
    export = folder / "default.onnx"
    export.write_bytes(tiny_exports["onnx"].read_bytes())
    model_card.write_card(export, {
        "format": "onnx", "int8": False,
        "source": {"path": "default.keras", "sha256": file_sha256(shipped)},
        "publictest": {"accuracy": 0.5, "source_accuracy": 0.5, "top_label_agreement": 1.0},
        "speed": {"ms_single": 1.0, "source_ms_single": 4.0}})
    at = _run()
    runtime = at.selectbox(key="live_runtime")
    assert runtime.value == "auto" and "ONNX Runtime (default.onnx)" in runtime.options
    assert any("ONNX Runtime (default.onnx): 1.00 ms for one face against 4.00 ms" in c.value
               for c in at.sidebar.caption)
    runtime.set_value(str(shipped))
    at.run()
    assert any(c.value.startswith("Keras/TensorFlow") for c in at.sidebar.caption)

    export.write_bytes(b"damaged")
    at = _run()
    assert any("default.onnx could not be used" in w.value for w in at.warning)
    assert any("Keras/TensorFlow: default.onnx failed to load" in c.value
               for c in at.sidebar.caption)
    assert env.calls[-1]["queued_video_frames_callback"]


def test_recording_keeps_each_faces_emotions_and_offers_the_table(env):
    at = _run()
    at.toggle(key="live_record").set_value(True)
    at.run()
    assert not at.exception, at.exception
    callback = _frame_callback(env.calls[-1])
    for i in range(4):
        frame = av.VideoFrame.from_ndarray(face_frame(3), format="bgr24")
        frame.pts, frame.time_base = i * 3000, __import__("fractions").Fraction(1, 90000)
        callback(frame)
    callback(av.VideoFrame.from_ndarray(face_frame(0), format="bgr24"))  # no face: no row
    recorder = at.session_state["live_stream"]["recorder"]
    assert recorder.recording and recorder.frames == 5 and len(recorder.rows()) == 12
    at.toggle(key="live_record").set_value(False)
    at.run()
    assert not at.exception, at.exception
    table = recorder.frame()
    assert list(table.columns[:4]) == ["source", "frame", "time_s", "face_id"]
    assert set(table["source"]) == {"webcam"} and table["face_id"].nunique() == 3
    assert sorted(set(table["time_s"])) == pytest.approx([0, 1 / 30, 2 / 30, 3 / 30], abs=1e-3)
    assert any(d.label == "Download the recording (CSV)" for d in at.get("download_button"))
    assert len([c for c in at.get("plotly_chart")]) >= 3  # a timeline per face
    at.toggle(key="live_record").set_value(True)  # a new recording replaces the last
    at.run()
    assert recorder.recording and recorder.frames == 0


def test_a_recordings_shares_count_what_was_shown_while_it_ran(env):
    """Faces shown as uncertain while recording stay uncertain in the per-face shares after
    the threshold moves, as in the recording's CSV."""
    at = _run()
    at.slider(key="live_uncertain").set_value(0.9)  # the slider's highest
    at.toggle(key="live_record").set_value(True)
    at.run()
    callback = _frame_callback(env.calls[-1])
    for i in range(3):
        frame = av.VideoFrame.from_ndarray(face_frame(1), format="bgr24")
        frame.pts, frame.time_base = i * 3000, __import__("fractions").Fraction(1, 90000)
        callback(frame)
    at.toggle(key="live_record").set_value(False)
    at.slider(key="live_uncertain").set_value(0.0)
    at.run()
    assert not at.exception, at.exception
    table = at.session_state["live_stream"]["recorder"].frame()
    assert table["uncertain"].all()  # the tiny model is never 90% sure
    shares = [d.value for d in at.dataframe if "frames" in d.value.columns]
    assert len(shares) == 1 and (shares[0]["uncertain"] == 1.0).all()
    assert any("shown as uncertain while recording" in c.value for c in at.caption)

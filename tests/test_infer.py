"""Tests of fer_core.infer: the classifier, crops, tracking/smoothing, and `process_frame` on
real faces and on every kind of bad frame (it must never raise)."""

from __future__ import annotations

import io
import json
import os
import struct
import threading
import time
import zlib

import numpy as np
import pytest

import fer_core  # noqa: F401  (CPU flags before TensorFlow loads)
from face_frames import face_centers, face_frame
from fer_core.detect import Box, FaceDetector
from fer_core.infer import (
    UNCERTAIN_COLOR,
    Classifier,
    FaceTracker,
    StreamMonitor,
    as_bgr,
    crop_faces,
    decode_image,
    process_frame,
)
from fer_core.labels import CONFIDENCE_DECIMALS, EMOTIONS, NUM_CLASSES
from fer_core.models import create_model, load_model

pytestmark = pytest.mark.usefixtures("fer_dirs")


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    """A tiny registered model saved and loaded back the way the page loads models."""
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    create_model("fernet", width=4, convs=1).save(path)
    return path


@pytest.fixture(scope="module")
def classifier(model_path) -> Classifier:
    return Classifier(load_model(model_path))


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


def test_classifier_matches_the_keras_model(classifier):
    faces = np.random.default_rng(0).integers(0, 256, (5, 48, 48), dtype=np.uint8)
    probs = classifier.predict(faces)
    expected = np.asarray(classifier.model(faces[..., None].astype(np.float32), training=False))
    assert probs.shape == (5, NUM_CLASSES) and probs.dtype == np.float32
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    assert classifier.predict(np.zeros((0, 48, 48), np.uint8)).shape == (0, NUM_CLASSES)


def test_classifier_is_traced_once_for_any_batch_size(classifier):
    for n in (1, 2, 3, 7):
        classifier.predict(np.zeros((n, 48, 48, 1), np.uint8))
    assert classifier._fn.experimental_get_tracing_count() == 1


def test_small_batches_take_the_xla_copy_with_the_same_probabilities(classifier):
    faces = np.random.default_rng(2).integers(0, 256, (9, 48, 48), dtype=np.uint8)
    large = classifier.predict(faces)  # more than SMALL_BATCH: the plain graph
    for n in range(1, Classifier.SMALL_BATCH + 1):
        np.testing.assert_allclose(classifier.predict(faces[:n]), large[:n], atol=1e-5)
    assert classifier._small_fn is not None
    assert classifier._small_fn.experimental_get_tracing_count() == 1


def test_a_model_xla_cannot_compile_keeps_the_plain_graph(model_path):
    import tensorflow as tf

    classifier = Classifier(load_model(model_path), warmup=False)

    def refuse(_batch):
        raise tf.errors.InvalidArgumentError(None, None, "unsupported op for XLA")

    classifier._small_fn = refuse
    faces = np.random.default_rng(3).integers(0, 256, (2, 48, 48), dtype=np.uint8)
    probs = classifier.predict(faces)
    assert classifier._small_fn is None and probs.shape == (2, NUM_CLASSES)
    np.testing.assert_allclose(probs, classifier.predict(np.concatenate([faces] * 3))[:2],
                               atol=1e-5)


def test_classifier_rejects_wrong_crops_and_wrong_models(classifier):
    with pytest.raises(ValueError, match="48, 48"):
        classifier.predict(np.zeros((2, 32, 32), np.uint8))
    import keras

    inputs = keras.Input((48, 48, 1))
    logits = keras.layers.Dense(7)(keras.layers.Flatten()(inputs))
    with pytest.raises(ValueError, match="softmax"):
        Classifier(keras.Model(inputs, logits))
    five = keras.layers.Dense(5, activation="softmax")(keras.layers.Flatten()(inputs))
    with pytest.raises(ValueError, match="7 class"):
        Classifier(keras.Model(inputs, five))


def test_classifier_shared_by_threads(classifier):
    faces = np.random.default_rng(1).integers(0, 256, (3, 48, 48), dtype=np.uint8)
    expected = classifier.predict(faces)
    out: list[np.ndarray] = []
    threads = [
        threading.Thread(target=lambda: out.extend(classifier.predict(faces) for _ in range(5)))
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(out) == 15 and all(np.allclose(o, expected, atol=1e-5) for o in out)


def test_crops_keep_edge_faces_square_and_sized():
    gray = np.arange(100 * 120, dtype=np.uint32).reshape(100, 120).astype(np.uint8)
    boxes = [Box(10, 10, 40, 40), Box(0, 0, 30, 30), Box(100, 80, 20, 20), Box(0, 0, 120, 100)]
    crops = crop_faces(gray, boxes, margin=0.2)
    assert crops.shape == (4, 48, 48) and crops.dtype == np.uint8


@pytest.mark.parametrize(
    "frame, shape",
    [
        (np.zeros((4, 6), np.uint8), (4, 6, 3)),
        (np.zeros((4, 6, 1), np.uint8), (4, 6, 3)),
        (np.zeros((4, 6, 4), np.uint8), (4, 6, 3)),
        (np.ones((4, 6, 3), np.float32), (4, 6, 3)),
        (np.full((4, 6, 3), 65535, np.uint16), (4, 6, 3)),
    ],
)
def test_as_bgr_accepts_common_formats(frame, shape):
    out = as_bgr(frame)
    assert out.shape == shape and out.dtype == np.uint8
    if frame.dtype != np.uint8 and frame.size:
        assert out.max() == 255


@pytest.mark.parametrize("n_faces", [1, 3])
def test_process_frame_labels_every_real_face(detector, classifier, n_faces):
    frame = face_frame(n_faces)
    monitor = StreamMonitor()
    annotated, faces = process_frame(frame, detector, classifier, monitor=monitor)
    assert len(faces) == n_faces
    assert annotated.shape == frame.shape and not np.array_equal(annotated, frame)
    for center in face_centers(n_faces):
        assert any(f.box.x <= center[0] <= f.box.x + f.box.w for f in faces)
    crops = crop_faces(_gray(frame), [f.box for f in faces])
    expected = classifier.predict(crops)
    for face, probs in zip(faces, expected, strict=True):
        assert face.label == EMOTIONS[int(np.argmax(probs))]
        assert face.confidence == pytest.approx(float(probs.max()), abs=1e-5)
        assert sum(face.probs) == pytest.approx(1.0, abs=1e-4) and len(face.probs) == 7
    snap = monitor.snapshot()
    assert snap["frames"] == 1 and snap["errors"] == 0 and len(snap["faces"]) == n_faces
    assert snap["detect_ms"] > 0 and snap["classify_ms"] > 0 and len(snap["timeline"]) == 1


def _gray(frame: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)


def test_process_frame_no_face(detector, classifier):
    frame = face_frame(0)
    annotated, faces = process_frame(frame, detector, classifier)
    assert faces == [] and np.array_equal(annotated, frame)


def test_process_frame_faces_at_the_edges(detector, classifier):
    touching = np.ascontiguousarray(face_frame(1)[:, 250:])  # face box starts ~10 px from the edge
    annotated, faces = process_frame(touching, detector, classifier)
    assert len(faces) == 1 and annotated.shape == touching.shape
    cut = np.roll(face_frame(1), -300, axis=1)  # face half out of the left edge
    cut[:, 300:] = face_frame(0)[:, 300:]
    for image in (touching, cut, touching[:130], touching[350:]):
        annotated, faces = process_frame(image, detector, classifier)
        assert annotated.shape == image.shape
        for face in faces:
            assert face.box.x >= 0 and face.box.x + face.box.w <= image.shape[1]
            assert face.box.y >= 0 and face.box.y + face.box.h <= image.shape[0]


def test_process_frame_many_faces(classifier):
    row = np.concatenate([face_frame(3)] * 2, axis=1)
    frame = np.concatenate([row, row], axis=0)  # 12 faces on 1280x960
    annotated, faces = process_frame(frame, FaceDetector(detect_width=640), classifier)
    assert len(faces) == 12 and annotated.shape == frame.shape
    assert len({f.box for f in faces}) == 12


@pytest.mark.parametrize(
    "frame",
    [
        np.zeros((0, 0, 3), np.uint8),
        np.zeros((1, 1, 3), np.uint8),
        np.zeros((7, 3, 3), np.uint8),
        np.zeros((481, 641, 3), np.uint8),
        np.zeros((480, 640), np.uint8),
        np.zeros((480, 640, 4), np.uint8),
        np.zeros((2, 2, 2), np.uint8),
        np.zeros((5,), np.uint8),
        None,
    ],
    ids=["empty", "1px", "7x3", "odd", "gray", "bgra", "2ch", "1d", "none"],
)
def test_process_frame_never_raises(detector, classifier, frame):
    monitor = StreamMonitor()
    annotated, faces = process_frame(frame, detector, classifier, monitor=monitor)
    assert faces == []
    snap = monitor.snapshot()
    assert snap["frames"] + snap["errors"] == 1
    if frame is None or frame.size == 0 or frame.ndim == 1 or frame.shape[-1] == 2:
        assert snap["errors"] == 1 and snap["last_error"]
    else:
        assert snap["errors"] == 0 and annotated.shape[:2] == frame.shape[:2]


def test_process_frame_survives_a_failing_model(detector):
    class Broken:
        def predict(self, faces):
            raise RuntimeError("model exploded")

    monitor = StreamMonitor()
    frame = face_frame(1)
    for _ in range(3):
        annotated, faces = process_frame(frame, detector, Broken(), monitor=monitor)
        assert faces == [] and annotated.shape == frame.shape
    snap = monitor.snapshot()
    assert snap["errors"] == 3 and "model exploded" in snap["last_error"]


def test_grayscale_and_bgra_input_find_the_face(detector, classifier):
    frame = face_frame(1)
    gray = _gray(frame)
    bgra = np.dstack([frame, np.full(frame.shape[:2], 255, np.uint8)])
    for image in (gray, bgra):
        annotated, faces = process_frame(image, detector, classifier)
        assert len(faces) == 1 and annotated.shape == frame.shape


def test_whole_image_as_one_face(detector, classifier):
    _, faces = process_frame(face_frame(0), detector, classifier, whole_image=True)
    assert len(faces) == 1 and faces[0].box == Box(0, 0, 640, 480)


def test_tracker_keeps_ids_and_smooths(detector, classifier):
    tracker = FaceTracker()
    frame = face_frame(3)
    seen = [process_frame(frame, detector, classifier, tracker=tracker, smoothing=0.8)[1]]
    for shift in (4, 8, 12, 16, 20, 24):
        moved = np.roll(frame, shift, axis=1)
        seen.append(process_frame(moved, detector, classifier, tracker=tracker, smoothing=0.8)[1])
    ids = [sorted(f.track_id for f in faces) for faces in seen]
    assert all(i == ids[0] for i in ids) and len(ids[0]) == 3


def test_smoothing_is_an_exponential_average():
    tracker = FaceTracker()
    box = [Box(10, 10, 50, 50)]
    a = np.eye(7, dtype=np.float32)[[3]]
    b = np.eye(7, dtype=np.float32)[[0]]
    ids1, _ = tracker.update(box, a, smoothing=0.75)
    ids2, p2 = tracker.update([Box(12, 10, 50, 50)], b, smoothing=0.75)
    assert ids1 == ids2
    np.testing.assert_allclose(p2[0], 0.75 * a[0] + 0.25 * b[0])
    ids3, p3 = tracker.update([Box(300, 300, 50, 50)], b, smoothing=0.75)
    assert ids3 != ids1
    np.testing.assert_allclose(p3[0], b[0])


def test_rescans_every_n_frames_and_after_losing_a_face():
    tracker = FaceTracker()
    assert tracker.plan(3).boxes is None  # nothing known: scan
    tracker.update([Box(0, 0, 40, 40)], np.full((1, 7), 1 / 7), 0.0)
    plan = [tracker.plan(3) for _ in range(5)]
    assert [p.boxes is None for p in plan] == [False, False, True, False, False]
    tracker.update([], np.zeros((0, 7)), 0.0, refound_from=1)  # the face was not found again
    assert tracker.plan(3).boxes is None


def test_between_scans_the_cascade_confirms_every_nth_frame_and_the_rest_follow():
    tracker = FaceTracker()
    tracker.update([Box(0, 0, 40, 40)], np.full((1, 7), 1 / 7), 0.0)
    assert tracker.plan(10, confirm_every=3).previous is None  # no frame kept yet: the cascade
    gray = np.zeros((60, 60), np.uint8)
    tracker.remember(gray)
    kinds = []
    for _ in range(8):
        plan = tracker.plan(10, confirm_every=3)
        kinds.append("scan" if plan.boxes is None else "follow" if plan.previous is not None else "near")
    assert kinds == ["follow", "follow", "near", "follow", "follow", "near", "follow", "follow"]
    assert tracker.plan(10, confirm_every=3).boxes is None  # the 10th frame: a full scan
    assert all(tracker.plan(10).previous is None for _ in range(5))  # confirm_every=1: never follow


def test_a_background_scan_does_not_hold_the_frame_up_and_its_new_faces_are_looked_for():
    tracker = FaceTracker()
    tracker.update([Box(0, 0, 40, 40)], np.full((1, 7), 1 / 7), 0.0)
    plans = [tracker.plan(3, scan_in_background=True) for _ in range(3)]
    assert [p.boxes is not None for p in plans] == [True, True, True]  # never a full scan
    assert [p.scan_later for p in plans] == [False, False, True]

    class Detector:
        def detect(self, gray):
            return [Box(0, 0, 40, 40), Box(100, 100, 50, 50)]  # the known face and a new one

        def twin(self):
            return self

    tracker.scan_later_for(Detector(), np.zeros((200, 200), np.uint8))
    for _ in range(100):
        plan = tracker.plan(3, scan_in_background=True)
        if len(plan.boxes) == 2:
            break
        time.sleep(0.01)
    assert plan.boxes == [Box(0, 0, 40, 40), Box(100, 100, 50, 50)] and plan.previous is None
    assert len(tracker.plan(3, scan_in_background=True).boxes) == 1  # taken once


def test_a_face_that_walks_in_is_found_by_the_background_scan(detector, classifier):
    three = face_frame(3)
    one = three.copy()
    one[:, :215] = one[:, 415:] = 128  # only the middle face, until the other two walk in

    class Watched:
        """The detector, noting which thread each full scan ran in."""

        def __init__(self) -> None:
            self.scans: list[str] = []

        def detect(self, gray):
            self.scans.append(threading.current_thread().name)
            return detector.detect(gray)

        def twin(self):
            return self  # the scan thread's detector: still watched

        def __getattr__(self, name):
            return getattr(detector, name)

    watched, tracker, counts = Watched(), FaceTracker(), []
    for i in range(14):
        start = time.perf_counter()
        _, faces = process_frame(one if i < 4 else three, watched, classifier, tracker=tracker,
                                 rescan_every=6, scan_in_background=True)
        counts.append(len(faces))
        time.sleep(max(0.0, 0.04 - (time.perf_counter() - start)))  # a 25 fps camera
    assert counts[:4] == [1, 1, 1, 1]
    assert counts[-1] == 3  # the two new faces came in a frame or two after a rescan
    assert watched.scans[0] == threading.current_thread().name  # nothing known: inline
    assert len(watched.scans) >= 2 and all(n.startswith("fer-face-scan") for n in watched.scans[1:])


def test_followed_faces_keep_their_ids_on_a_moving_video(detector, classifier):
    tracker = FaceTracker()
    frame = face_frame(3)
    ids, xs = [], []
    for i in range(12):
        _, faces = process_frame(np.roll(frame, 3 * i, axis=1), detector, classifier,
                                 tracker=tracker, rescan_every=30, confirm_every=3)
        assert len(faces) == 3
        ids.append(sorted(f.track_id for f in faces))
        xs.append(sorted(f.box[0] + f.box[2] / 2 for f in faces))
    assert all(i == ids[0] for i in ids)
    for i, row in enumerate(xs):  # every box's centre moved with its face, 3 px a frame
        assert all(abs((x - x0) - 3 * i) <= 6 for x, x0 in zip(row, xs[0], strict=True))


def test_frame_log_lines(detector, classifier, fer_dirs):
    log = fer_dirs.frame_log()
    process_frame(face_frame(3), detector, classifier)
    process_frame(face_frame(0), detector, classifier)
    process_frame(np.zeros((0, 0, 3), np.uint8), detector, classifier)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(lines) == 3
    assert [len(entry["faces"]) for entry in lines] == [3, 0, 0] and "error" in lines[2]
    face = lines[0]["faces"][0]
    assert set(face) == {"box", "label", "uncertain", "probs"} and len(face["box"]) == 4
    assert face["label"] in EMOTIONS and len(face["probs"]) == 7 and lines[0]["t"] > 0


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_decode_image_formats(fmt):
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(face_frame(1)[:, :, ::-1]).save(buf, format=fmt)
    image = decode_image(buf.getvalue(), f"x.{fmt.lower()}")
    assert image.shape == (480, 640, 3) and image.dtype == np.uint8
    with pytest.raises(ValueError, match=r"bad\.jpg: not a readable image"):
        decode_image(b"\xff\xd8 truncated", "bad.jpg")



# ======================================================== a webcam under load


def _frames(n: int, rng: np.random.Generator):
    """Webcam-like abuse: mostly small random frames of 1, 3 or 4 channels, 1-pixel and
    empty frames, and now and then a real face (so the classifier runs too)."""
    from face_frames import face_frame

    faces = [face_frame(1, 160, 120), face_frame(3, 320, 240)]
    for i in range(n):
        k = i % 10
        if k == 0:
            yield faces[(i // 10) % 2]
        elif k == 1:
            yield np.zeros((0, int(rng.integers(0, 5)), 3), np.uint8)
        elif k == 2:
            yield rng.integers(0, 256, (1, 1, 3), dtype=np.uint8)
        else:
            h, w = (int(v) for v in rng.integers(1, 97, 2))
            shape = {1: (h, w), 3: (h, w, 3), 4: (h, w, 4)}[int(rng.choice([1, 3, 4]))]
            yield rng.integers(0, 256, shape, dtype=np.uint8)


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_live_processing_survives_2000_random_frames_without_growing(tmp_path) -> None:
    """Fault / live callback under load: 2,000 frames of random sizes and content (empty and
    1-pixel ones included) through process_frame with tracking and smoothing, as the webcam
    callback runs it: nothing escapes, only the empty frames count as errors, and resident
    memory grows by less than 8 MB after a 300-frame warm-up."""
    from fer_core.detect import FaceDetector
    from fer_core.infer import Classifier, FaceTracker, StreamMonitor, process_frame
    from fer_core.models import create_model, load_model

    create_model("fernet", width=4, convs=1).save(tmp_path / "tiny.keras")
    classifier = Classifier(load_model(tmp_path / "tiny.keras"))
    detector = FaceDetector()
    tracker, monitor = FaceTracker(), StreamMonitor()
    rng = np.random.default_rng(8)
    for frame in _frames(300, rng):
        process_frame(frame, detector, classifier, tracker=tracker, smoothing=0.6,
                      monitor=monitor)
    before = _rss_mb()
    faces_seen = 0
    for frame in _frames(2000, rng):
        annotated, faces = process_frame(frame, detector, classifier, tracker=tracker,
                                         smoothing=0.6, monitor=monitor)
        faces_seen += len(faces)
        if frame.size:
            assert annotated.shape[:2] == frame.shape[:2] and annotated.shape[-1] == 3
    grown = _rss_mb() - before
    snap = monitor.snapshot()
    assert snap["frames"] + snap["errors"] == 2300
    assert snap["errors"] == 230 and "empty frame" in snap["last_error"]  # the empty ones
    assert faces_seen >= 200  # the real faces were found and classified
    assert grown < 8, f"RSS grew by {grown:.1f} MB over 2,000 frames"



# ======================================================== decompression bombs


def _png(width: int, height: int) -> bytes:
    """A grey PNG declaring width x height whose data is a few rows only (a bomb header)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    rows = zlib.compress(b"".join(b"\0" + bytes(width) for _ in range(min(height, 4))), 9)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", rows) + chunk(b"IEND", b""))


def _gif(width: int, height: int) -> bytes:
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\x00\x00\x00" + \
        b",\x00\x00\x00\x00" + struct.pack("<HH", width, height) + b"\x00\x02\x02\x44\x01\x00;"


@pytest.mark.parametrize("make,width,height", [(_png, 20000, 20000), (_png, 13000, 13000),
                                               (_png, 8000, 6000), (_png, 100_000, 500),
                                               (_gif, 65535, 65535), (_gif, 9000, 9000)])
def test_image_bombs_are_refused_before_decoding(make, width, height) -> None:
    """Decompression bombs: an image whose header declares more than 40 megapixels is a
    ValueError naming the file (the Live page's handler), before any pixel is decoded."""
    import tracemalloc

    from fer_core.infer import decode_image

    data = make(width, height)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"bomb\.img: .*(pixels|too large)"):
            decode_image(data, "bomb.img")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20, f"{peak / 2**20:.0f} MB allocated"


def test_small_images_still_decode() -> None:
    from PIL import Image

    from fer_core.infer import decode_image

    buf = io.BytesIO()
    Image.new("RGB", (64, 32), (10, 20, 30)).save(buf, "PNG")
    assert decode_image(buf.getvalue(), "ok.png").shape == (32, 64, 3)
    with pytest.raises(ValueError, match="cut.png: not a readable image"):
        decode_image(buf.getvalue()[:40], "cut.png")



def test_the_background_scan_does_not_wait_for_the_frames_detector(detector):
    tracker = FaceTracker()
    tracker.update([Box(0, 0, 40, 40)], np.full((1, 7), 1 / 7), 0.0)
    with detector._lock:  # a frame's detect_near holding the cascade
        tracker.scan_later_for(detector, face_frame(3)[..., 0].copy())
        for _ in range(300):
            plan = tracker.plan(3, scan_in_background=True)
            if len(plan.boxes) > 1:
                break
            time.sleep(0.01)
    assert len(plan.boxes) == 4  # the known box, and the 3 faces the scan found on its own cascade


def test_faces_below_the_threshold_are_marked_and_drawn_uncertain(detector, classifier):
    frame = face_frame(3)
    _, named = process_frame(frame, detector, classifier)
    assert named and not any(f.uncertain for f in named)
    assert all(f.shown == f.label for f in named)
    # above the top confidence as the rule rounds it (an untrained model's 0.14297 is 0.1430)
    top = round(max(f.confidence for f in named), CONFIDENCE_DECIMALS)
    drawn, faces = process_frame(frame, detector, classifier,
                                 uncertain_below=top + 10 ** -CONFIDENCE_DECIMALS)
    assert all(f.uncertain for f in faces)
    assert all(f.shown == f"uncertain ({f.label}?)" for f in faces)
    assert [f.label for f in faces] == [f.label for f in named]  # the best guess is kept
    x, y, w, h = faces[0].box
    assert tuple(drawn[y + h // 2, x]) == UNCERTAIN_COLOR  # the box's left edge, in gray
    assert faces[0].to_json()["uncertain"] is True

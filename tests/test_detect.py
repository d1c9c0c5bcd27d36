"""Tests of fer_core.detect: Haar face detection on real faces, downscaling, re-finding, threads."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

from face_frames import face_centers, face_frame
from fer_core.detect import Box, FaceDetector, cascade_path, iou



def _gray(n_faces: int) -> np.ndarray:
    return cv2.cvtColor(face_frame(n_faces), cv2.COLOR_BGR2GRAY)


def _contains(box: Box, point: tuple[int, int]) -> bool:
    return box.x <= point[0] <= box.x + box.w and box.y <= point[1] <= box.y + box.h


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


def test_cascade_ships_with_opencv():
    assert cascade_path().is_file()


@pytest.mark.parametrize("n_faces", [1, 3])
def test_finds_each_real_face(detector, n_faces):
    boxes = detector.detect(_gray(n_faces))
    assert len(boxes) == n_faces
    for center in face_centers(n_faces):
        assert sum(_contains(b, center) for b in boxes) == 1, (center, boxes)
    areas = [b.w * b.h for b in boxes]
    assert areas == sorted(areas, reverse=True)


def test_no_face_on_background(detector):
    assert detector.detect(_gray(0)) == []


def test_boxes_are_in_frame_pixels_whatever_the_detection_width():
    gray = _gray(1)
    full = FaceDetector(detect_width=0).detect(gray)
    small = FaceDetector(detect_width=240).detect(gray)
    assert len(full) == len(small) == 1
    assert iou(full[0], small[0]) > 0.7


def test_min_size_filters_small_faces():
    gray = _gray(3)
    assert len(FaceDetector(min_size=160).detect(gray)) < 3


@pytest.mark.parametrize("shape", [(0, 0), (1, 1), (5, 3), (23, 700), (481, 641)])
def test_tiny_and_odd_images(detector, shape):
    boxes = detector.detect(np.zeros(shape, np.uint8))
    assert boxes == []


def test_rejects_color_image(detector):
    with pytest.raises(ValueError, match="2-D gray"):
        detector.detect(np.zeros((10, 10, 3), np.uint8))


@pytest.mark.parametrize(
    "kwargs, word",
    [({"scale_factor": 1.0}, "scale_factor"), ({"min_neighbors": -1}, "min_neighbors"),
     ({"min_size": 0}, "min_size")],
)
def test_bad_settings_name_the_setting(kwargs, word):
    with pytest.raises(ValueError, match=word):
        FaceDetector(**kwargs)


def test_detect_near_refinds_known_faces_and_drops_gone_ones(detector):
    gray = _gray(3)
    boxes = detector.detect(gray)
    again = detector.detect_near(gray, boxes)
    assert len(again) == 3
    for old in boxes:
        assert max(iou(old, new) for new in again) > 0.6
    # A face that moved far away is not found near its old place.
    far = Box(300, 10, 80, 80)
    assert detector.detect_near(_gray(0), [far]) == []


def test_detect_near_follows_a_moving_face(detector):
    frame = face_frame(1)
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    (box,) = detector.detect(gray)
    shifted = cv2.cvtColor(np.roll(frame, 25, axis=1), cv2.COLOR_BGR2GRAY)
    (moved,) = detector.detect_near(shifted, [box])
    assert 15 <= moved.x - box.x <= 35


def test_follow_moves_boxes_with_their_faces_and_drops_faces_that_left(detector):
    frame = face_frame(3)
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    boxes = detector.detect(gray)
    moved = cv2.cvtColor(np.roll(np.roll(frame, 9, axis=1), -5, axis=0), cv2.COLOR_BGR2GRAY)
    followed = detector.follow(gray, moved, boxes)
    assert len(followed) == 3
    for old in boxes:
        new = max(followed, key=lambda b: iou(old, b))
        assert (new.w, new.h) == (old.w, old.h)
        assert abs(new.x - old.x - 9) <= 2 and abs(new.y - old.y + 5) <= 2
    # With the faces gone, neither the match nor the cascade's fallback finds a box.
    assert detector.follow(gray, _gray(0), boxes) == []


def test_follow_refuses_frames_of_another_size(detector):
    with pytest.raises(ValueError, match="one size"):
        detector.follow(np.zeros((10, 10), np.uint8), np.zeros((12, 10), np.uint8), [])


def test_one_detector_shared_by_threads(detector):
    gray = _gray(3)
    expected = detector.detect(gray)
    results: list[list[Box]] = []

    def work() -> None:
        for _ in range(3):
            results.append(detector.detect(gray))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 9 and all(r == expected for r in results)


def test_a_twin_detector_finds_the_same_faces_with_its_own_cascade():
    detector = FaceDetector(scale_factor=1.2, min_neighbors=4, min_size=30, detect_width=200)
    twin = detector.twin()
    assert repr(twin) == repr(detector) and twin.cascade == detector.cascade
    assert twin._cascade is not detector._cascade and twin._lock is not detector._lock
    gray = np.random.default_rng(0).integers(0, 255, (120, 160), dtype=np.uint8)
    assert twin.detect(gray) == detector.detect(gray)

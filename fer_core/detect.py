"""Face detection with OpenCV's Haar frontal-face cascade.

A full scan (`detect`) runs the cascade on a downscaled copy of the gray frame (a 640-pixel-wide
webcam frame is scanned at 320 pixels: about 4x less work) and maps the boxes back to the
frame's own pixel grid. On a video stream most frames only need the faces already known to be
found again: `detect_near` searches a small window around each previous box, at face sizes
close to the previous one, which costs a few milliseconds per face instead of tens for a scan.

One `FaceDetector` may be shared by several threads (Streamlit's `st.cache_resource` hands the
same object to every session): OpenCV does not promise that `detectMultiScale` on one cascade
is re-entrant, so calls are serialised by a lock.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

CASCADE_FILE = "haarcascade_frontalface_default.xml"


class Box(NamedTuple):
    """A face box in frame pixels: top-left corner, width and height."""

    x: int
    y: int
    w: int
    h: int


def cascade_path(name: str = CASCADE_FILE) -> Path:
    """Where OpenCV's wheel keeps a cascade (default: the frontal-face one)."""
    return Path(cv2.data.haarcascades) / name


class FaceDetector:
    """Finds frontal faces in a gray image.

    scale_factor: step between the cascade's image scales (smaller finds more, runs slower).
    min_neighbors: overlapping hits a box needs to count (higher drops false faces).
    min_size: smallest face side, in pixels of the full-size frame.
    detect_width: the frame is shrunk to at most this width before scanning (0: never shrink).
    cascade: which of OpenCV's shipped cascade files to use.
    """

    def __init__(
        self,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        min_size: int = 40,
        detect_width: int = 320,
        cascade: str = CASCADE_FILE,
    ) -> None:
        if not scale_factor > 1.0:
            raise ValueError(f"scale_factor must be above 1.0, got {scale_factor}")
        if min_neighbors < 0:
            raise ValueError(f"min_neighbors must be 0 or more, got {min_neighbors}")
        if min_size < 1:
            raise ValueError(f"min_size must be at least 1 pixel, got {min_size}")
        if detect_width < 0:
            raise ValueError(f"detect_width must be 0 or more, got {detect_width}")
        self.scale_factor = float(scale_factor)
        self.min_neighbors = int(min_neighbors)
        self.min_size = int(min_size)
        self.detect_width = int(detect_width)
        self.cascade = cascade
        path = cascade_path(cascade)
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise RuntimeError(f"could not load the Haar cascade {path}")
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"FaceDetector(scale_factor={self.scale_factor}, min_neighbors={self.min_neighbors}, "
            f"min_size={self.min_size}, detect_width={self.detect_width})"
        )

    def twin(self) -> "FaceDetector":
        """A detector with the same settings and its own cascade, for another thread: one
        cascade scans one image at a time (its lock), so a twin lets two scans overlap."""
        return FaceDetector(self.scale_factor, self.min_neighbors, self.min_size,
                            self.detect_width, self.cascade)

    def detect(self, gray: np.ndarray) -> list[Box]:
        """Boxes of the faces in a 2-D uint8 image, largest first; [] for an empty image."""
        if gray.ndim != 2:
            raise ValueError(f"detect() needs a 2-D gray image, got shape {gray.shape}")
        height, width = gray.shape
        if height == 0 or width == 0:
            return []
        scale = 1.0
        small = gray
        if self.detect_width and width > self.detect_width:
            scale = self.detect_width / width
            small_size = (self.detect_width, max(1, round(height * scale)))
            small = cv2.resize(gray, small_size, interpolation=cv2.INTER_AREA)
        # The cascade's own window is 24 px: asking for less only wastes scales.
        side = max(24, round(self.min_size * scale))
        if side > min(small.shape):
            return []
        with self._lock:
            found = self._cascade.detectMultiScale(
                small,
                scaleFactor=self.scale_factor,
                minNeighbors=self.min_neighbors,
                minSize=(side, side),
            )
        boxes = [_to_frame(b, scale, 0, 0, width, height) for b in np.asarray(found).reshape(-1, 4)]
        return sorted(boxes, key=lambda b: b.w * b.h, reverse=True)

    def detect_near(self, gray: np.ndarray, boxes: list[Box], search: float = 0.5) -> list[Box]:
        """Find each known face again near its previous box; faces not found are left out.

        The window around a box is `search` box-widths wider on each side and is scaled so the
        face is about `_NEAR_SIDE` pixels, then scanned for faces between 1/`_NEAR_RANGE` and
        `_NEAR_RANGE` times that.
        A face is known to be there and the window is small, so two fewer overlapping hits
        than a full scan's `min_neighbors` suffice: on FER2013 faces placed in photos and moved
        8 px, that re-finds 95% instead of 87% (a face not re-found costs a full scan next
        frame), with no false box on background windows (benchmarks/face_detectors.py scenes).
        """
        if gray.ndim != 2:
            raise ValueError(f"detect_near() needs a 2-D gray image, got shape {gray.shape}")
        height, width = gray.shape
        found_boxes: list[Box] = []
        for box in boxes:
            margin = round(max(box.w, box.h) * search)
            x0, y0 = max(0, box.x - margin), max(0, box.y - margin)
            x1, y1 = min(width, box.x + box.w + margin), min(height, box.y + box.h + margin)
            if x1 - x0 < 2 or y1 - y0 < 2:
                continue
            scale = _NEAR_SIDE / max(box.w, box.h)
            roi = gray[y0:y1, x0:x1]
            small_size = (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale)))
            small = cv2.resize(roi, small_size, interpolation=cv2.INTER_AREA)
            lo, hi = round(_NEAR_SIDE / _NEAR_RANGE), round(_NEAR_SIDE * _NEAR_RANGE)
            if lo > min(small.shape):
                continue
            with self._lock:
                hits = self._cascade.detectMultiScale(
                    small,
                    scaleFactor=self.scale_factor,
                    minNeighbors=max(1, self.min_neighbors - NEAR_NEIGHBORS_LESS),
                    minSize=(lo, lo),
                    maxSize=(hi, hi),
                )
            mapped = (_to_frame(h, scale, x0, y0, width, height) for h in np.reshape(hits, (-1, 4)))
            hits = [h for h in mapped if h.w >= self.min_size and iou(h, box) > 0.0]
            if not hits:
                continue
            best = max(hits, key=lambda h: iou(h, box))
            if all(iou(best, other) < 0.5 for other in found_boxes):
                found_boxes.append(best)
        return sorted(found_boxes, key=lambda b: b.w * b.h, reverse=True)


    def follow(
        self, previous: np.ndarray, gray: np.ndarray, boxes: list[Box], search: float = 0.25
    ) -> list[Box]:
        """Move each box of `previous` (the frame it was found in) to where its face is in
        `gray`; a face the image match is not sure of is looked for with `detect_near`.

        The face is shrunk to `_FOLLOW_SIDE` pixels and matched (normalised cross-correlation)
        over a window `search` box-widths wider on each side, so a face may move that far
        between two frames; the box keeps its size. On 362 FER2013 faces placed in photos and
        moved up to 8 px this takes 0.28 ms a face where `detect_near` takes 2.1, follows all of
        them, and the boxes sit closer to the true place (IoU with the moved box: median 0.99,
        1st percentile 0.96; `detect_near`'s median 0.88). A face's match scores at least 0.885
        on 99% of them; a face replaced by background scores at most 0.72, below
        `FOLLOW_MIN_SCORE`, and gets no box. The box does not track a face that grows or shrinks, so callers
        confirm followed boxes with the cascade every few frames (`infer.FaceTracker`).
        """
        if previous.shape != gray.shape or gray.ndim != 2:
            raise ValueError(
                f"follow() needs two 2-D gray frames of one size, got {previous.shape} and {gray.shape}"
            )
        followed: list[Box] = []
        unsure: list[Box] = []
        for box in boxes:
            moved = _match(previous, gray, box, search)
            if moved is None:
                unsure.append(box)
            elif all(iou(moved, other) < 0.5 for other in followed):
                followed.append(moved)
        for box in self.detect_near(gray, unsure) if unsure else []:
            if all(iou(box, other) < 0.5 for other in followed):
                followed.append(box)
        return sorted(followed, key=lambda b: b.w * b.h, reverse=True)


def _match(previous: np.ndarray, gray: np.ndarray, box: Box, search: float) -> Box | None:
    """Where the face in `box` of `previous` is in `gray`, or None when the match is unsure."""
    height, width = gray.shape
    x, y = min(max(0, box.x), width - 1), min(max(0, box.y), height - 1)
    w, h = min(box.w, width - x), min(box.h, height - y)
    if w < 2 or h < 2:
        return None
    scale = _FOLLOW_SIDE / max(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    template = cv2.resize(previous[y : y + h, x : x + w], size, interpolation=cv2.INTER_AREA)
    margin = round(max(w, h) * search)
    x0, y0 = max(0, x - margin), max(0, y - margin)
    x1, y1 = min(width, x + w + margin), min(height, y + h + margin)
    window_size = (max(size[0], round((x1 - x0) * scale)), max(size[1], round((y1 - y0) * scale)))
    window = cv2.resize(gray[y0:y1, x0:x1], window_size, interpolation=cv2.INTER_AREA)
    if float(template.std()) < 1.0:
        return None  # a flat patch matches anything equally well
    scores = cv2.matchTemplate(window, template, cv2.TM_CCOEFF_NORMED)
    _, best, _, (bx, by) = cv2.minMaxLoc(scores)
    if not best >= FOLLOW_MIN_SCORE:
        return None
    # One pixel of the shrunk window is several of the frame's: place the peak between pixels
    # (a parabola through it and its neighbours), or slow faces would stick and jump.
    fx = bx + _peak_offset(scores[by, max(0, bx - 1) : bx + 2], bx)
    fy = by + _peak_offset(scores[max(0, by - 1) : by + 2, bx], by)
    nx = min(max(0, round(x0 + fx / scale)), width - w)
    ny = min(max(0, round(y0 + fy / scale)), height - h)
    return Box(nx, ny, w, h)


def _peak_offset(values: np.ndarray, at: int) -> float:
    """Sub-pixel offset (-0.5..0.5) of a peak from three scores around it; 0 at an edge."""
    if at == 0 or len(values) != 3:
        return 0.0
    left, mid, right = (float(v) for v in values)
    curve = left - 2.0 * mid + right
    return 0.0 if curve >= 0 else max(-0.5, min(0.5, 0.5 * (left - right) / curve))


# Face side, in pixels, that `detect_near` scales each search window to: twice the cascade's
# 24-pixel window, big enough to find the face reliably, small enough to scan in a few ms.
_NEAR_SIDE = 48
# How much a face's size may change between two frames for `detect_near` to find it again.
# 1.25 scans 5 of the cascade's sizes where 1.4 scanned 7: on FER2013 faces placed in photos
# and moved up to 8 px it re-finds 96.1% instead of 96.7%, in 2.1 ms a face instead of 2.5.
_NEAR_RANGE = 1.25
NEAR_NEIGHBORS_LESS = 2  # detect_near needs this many fewer overlapping hits than a full scan
# `follow` matches faces shrunk to this side, in pixels, and trusts a match scoring at least
# FOLLOW_MIN_SCORE (normalised cross-correlation, 1.0 is a perfect match).
_FOLLOW_SIDE = 24
FOLLOW_MIN_SCORE = 0.8


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0.0 when they do not touch)."""
    ix = max(0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    iy = max(0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    inter = ix * iy
    union = a.w * a.h + b.w * b.h - inter
    return inter / union if union > 0 else 0.0


def _to_frame(
    box: np.ndarray, scale: float, x_off: int, y_off: int, width: int, height: int
) -> Box:
    """Map a box found on a scaled (and offset) copy back to frame pixels, clipped to the frame."""
    x, y, w, h = (float(v) / scale for v in box)
    x, y = x + x_off, y + y_off
    x0, y0 = max(0, round(x)), max(0, round(y))
    x1, y1 = min(width, round(x + w)), min(height, round(y + h))
    return Box(x0, y0, max(1, x1 - x0), max(1, y1 - y0))

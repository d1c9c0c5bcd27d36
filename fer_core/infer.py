"""Classify faces in video frames and photos: the fast classifier, tracking, smoothing, drawing.

`process_frame` is the one function the Live page's webcam callback, its photo view and
`benchmarks/live_pipeline.py` all call. It never raises: a bad frame or a failing model is
counted in the `StreamMonitor`, the frame goes back as it came, and the stream goes on.

Speed matters here (a webcam delivers 15-30 frames a second on a 2-core CPU):
- `Classifier` traces the Keras model once into a `tf.function` with a fixed input signature;
  `model.predict` would rebuild a data pipeline on every call (tens of ms).
- every face of a frame goes through the model in one batch;
- with a `FaceTracker`, the detector scans the whole frame only every few frames and otherwise
  looks for the known faces near where they were (`FaceDetector.detect_near`), and on most
  frames only follows them by an image match (`FaceDetector.follow`).

When the environment variable `FER_FRAME_LOG` names a file, every processed frame appends one
JSON line `{"t": ..., "faces": [{"box": [x, y, w, h], "label": ..., "probs": [7 floats]}]}`
to it (the browser test reads it to see what the server saw).
"""

from __future__ import annotations

import io
import json
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np

import fer_core.cpu  # noqa: F401  (TF flags before TensorFlow loads)
import tensorflow as tf
from fer_core.detect import Box, FaceDetector, iou
from fer_core.labels import EMOTIONS, IMG_SIZE, NUM_CLASSES, UNCERTAIN, is_uncertain
from fer_core.runtimes import KERAS, FaceModel, as_batch, warm_up
from fer_core.stream import FrameTiming, StreamMonitor

FRAME_LOG_ENV = "FER_FRAME_LOG"
# Page defaults: a full-frame face scan every 15th frame (half a second at 30 fps; the others
# re-find the known faces near where they were, and a face lost triggers a full scan at
# once), and the weight of the past in the per-face exponential average of probabilities. A
# full Haar scan costs many times a re-find (benchmarks/face_detectors.py times a scan), so
# scanning less often saves CPU per frame with the same faces found:
# `benchmarks/live_pipeline.py --rescan-every 5` against the default measures the difference.
DEFAULT_RESCAN_EVERY = 15
# Between full scans the cascade looks for the known faces every 3rd frame; the two frames in
# between move each box to where an image match finds its face (`FaceDetector.follow`, a tenth
# of a re-find's cost), so a face that turned away or grew is noticed within 3 frames.
DEFAULT_CONFIRM_EVERY = 3
DEFAULT_SMOOTHING = 0.6
UNCERTAIN_COLOR = (128, 128, 128)  # BGR of a face shown as uncertain (`labels.UNCERTAIN`)

# BGR colour per emotion for boxes and labels, in EMOTIONS order.
EMOTION_COLORS: tuple[tuple[int, int, int], ...] = (
    (40, 40, 220),  # angry: red
    (40, 140, 60),  # disgust: green
    (160, 60, 160),  # fear: purple
    (40, 200, 240),  # happy: yellow
    (200, 120, 40),  # sad: blue
    (30, 140, 250),  # surprise: orange
    (200, 200, 200),  # neutral: light gray
)


@dataclass(frozen=True)
class FacePrediction:
    """One classified face: where it is, the top emotion, and all seven probabilities."""

    box: Box
    label: str
    confidence: float
    probs: tuple[float, ...]
    track_id: int | None = None
    uncertain: bool = False  # the top probability is below the threshold the user set

    @property
    def shown(self) -> str:
        """What to call the face: its emotion, or "uncertain (happy?)"."""
        return f"{UNCERTAIN} ({self.label}?)" if self.uncertain else self.label

    def to_json(self) -> dict:
        return {
            "box": [int(v) for v in self.box],
            "label": self.label,
            "uncertain": self.uncertain,
            "probs": [round(p, 5) for p in self.probs],
        }


class Classifier:
    """A Keras FER model behind one traced `tf.function`; safe to share between threads.

    Input: (N, 48, 48) or (N, 48, 48, 1) grey levels 0..255. Output: (N, 7) float32
    probabilities. The model is traced and run once at construction (warm-up), so the first
    webcam frame does not pay for tracing, and a model with the wrong output is refused there.

    Batches of up to `SMALL_BATCH` faces (a webcam frame) run through an XLA-compiled copy:
    on a 2-core CPU it was faster for a few faces but slower for large batches, which take
    the plain graph (`benchmarks/classify_speed.py` times the classifier per batch size;
    the latest figures are in models/MODEL_CARD.md). XLA compiles once per batch size, so
    warm-up compiles each small size; a model XLA cannot compile simply keeps the plain graph.
    """

    SMALL_BATCH = 4
    runtime = KERAS

    def __init__(self, model, *, warmup: bool = True) -> None:
        self.model = model
        self.name = getattr(model, "name", "model")
        spec = tf.TensorSpec((None, IMG_SIZE, IMG_SIZE, 1), tf.float32)

        def call(x):
            return model(x, training=False)

        self._fn = tf.function(call, input_signature=[spec])
        self._small_fn = tf.function(call, input_signature=[spec], jit_compile=True)
        self._lock = threading.Lock()
        if warmup:
            warm_up(self)  # each small batch size compiles here, and the output is checked

    def tracing_count(self) -> int:
        """How many times the model has been traced (or compiled): constant after warm-up, as
        long as nothing clears TensorFlow's state under it."""
        small = self._small_fn.experimental_get_tracing_count() if self._small_fn else 0
        return self._fn.experimental_get_tracing_count() + small

    def predict(self, faces: np.ndarray) -> np.ndarray:
        """Probabilities for a batch of 48x48 face crops (an empty batch gives (0, 7))."""
        faces = as_batch(faces)
        if len(faces) == 0:
            return np.zeros((0, NUM_CLASSES), np.float32)
        batch = tf.constant(faces)
        with self._lock:
            if self._small_fn is not None and len(faces) <= self.SMALL_BATCH:
                try:
                    return np.asarray(self._small_fn(batch), dtype=np.float32)
                except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError):
                    self._small_fn = None  # an op XLA cannot compile: the plain graph from now on
            out = self._fn(batch)
        return np.asarray(out, dtype=np.float32)


def as_bgr(frame: np.ndarray) -> np.ndarray:
    """A uint8 HxWx3 BGR copy-or-view of a gray, gray+channel, BGR or BGRA frame."""
    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        if np.issubdtype(frame.dtype, np.floating):
            top = 1.0 if frame.size and np.nanmax(frame) <= 1.0 else 255.0
            frame = np.clip(np.nan_to_num(frame) * (255.0 / top), 0, 255).astype(np.uint8)
        elif frame.dtype == np.uint16:
            frame = (frame >> 8).astype(np.uint8)
        else:
            frame = np.clip(frame, 0, 255).astype(np.uint8)
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.ndim == 3 and frame.shape[2] == 1:
        return cv2.cvtColor(frame[:, :, 0], cv2.COLOR_GRAY2BGR)
    if frame.ndim == 3 and frame.shape[2] == 3:
        return np.ascontiguousarray(frame)
    if frame.ndim == 3 and frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    raise ValueError(f"a frame must be HxW, HxWx1, HxWx3 or HxWx4; got shape {frame.shape}")


def decode_image(data: bytes, name: str = "image", *, max_pixels: int = 40_000_000) -> np.ndarray:
    """An uploaded JPEG/PNG/WebP/... file as a BGR uint8 array, turned upright by its EXIF tag.

    Raises ValueError naming the file when it is not a readable image, or when its header
    declares more than `max_pixels`: a few hundred KB of PNG can declare 20000 x 20000
    pixels (gigabytes once decoded), so the size is checked before any pixel is decoded.
    PIL's own decompression-bomb error (and its warning, where warnings are errors) are
    refusals too. No global warning filter is changed: the server decodes in many threads."""
    from PIL import Image, ImageOps

    bombs = (Image.DecompressionBombError, Image.DecompressionBombWarning)
    try:
        img = Image.open(io.BytesIO(data))  # reads the header only
    except bombs as exc:
        raise ValueError(f"{name}: the image is too large to decode ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - untrusted bytes: any failure is a refusal
        raise ValueError(f"{name}: not a readable image ({type(exc).__name__}: {exc})") from exc
    with img:
        width, height = img.size
        if width * height > max_pixels:
            raise ValueError(f"{name}: the image is {width:,} x {height:,} pixels "
                             f"({width * height / 1e6:,.0f} megapixels), more than the "
                             f"{max_pixels / 1e6:g} megapixels accepted")
        try:
            rgb = np.asarray(ImageOps.exif_transpose(img).convert("RGB"))
        except bombs as exc:
            raise ValueError(f"{name}: the image is too large to decode ({exc})") from None
        except Exception as exc:  # noqa: BLE001 - a truncated or malformed body
            raise ValueError(f"{name}: not a readable image ({type(exc).__name__}: "
                             f"{exc})") from exc
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


# How much a detected face's box grows on each side (a share of its side) before it is cropped.
# The cascade's box already spans what a FER2013 image shows: on PublicTest faces set in a
# larger image its side is 0.98 of the FER2013 image's (median), centred. Cropped with margin
# 0 the shipped model keeps its label on the original 48x48 face for 84.6% of them (accuracy
# 69.0%); with 0.1, the guess used before, 80.9% (66.4%); 0.025 is level with 0 (84.7%,
# 69.2%: 2 faces of 2,723). `python benchmarks/crop_framing.py`.
CROP_MARGIN = 0.0


def crop_faces(gray: np.ndarray, boxes: list[Box], margin: float = CROP_MARGIN) -> np.ndarray:
    """48x48 gray crops, one per box: the box made square, grown by `margin` of its side on
    each side, padded by edge replication where it leaves the frame (faces at the edge keep
    their shape)."""
    crops = np.empty((len(boxes), IMG_SIZE, IMG_SIZE), np.uint8)
    height, width = gray.shape
    for i, box in enumerate(boxes):
        side = max(box.w, box.h) * (1.0 + 2.0 * margin)
        cx, cy = box.x + box.w / 2.0, box.y + box.h / 2.0
        x0, y0 = round(cx - side / 2.0), round(cy - side / 2.0)
        x1, y1 = x0 + max(1, round(side)), y0 + max(1, round(side))
        patch = gray[max(0, y0) : min(height, y1), max(0, x0) : min(width, x1)]
        pads = (max(0, -y0), max(0, y1 - height), max(0, -x0), max(0, x1 - width))
        if any(pads):
            patch = cv2.copyMakeBorder(patch, *pads, borderType=cv2.BORDER_REPLICATE)
        interp = cv2.INTER_AREA if patch.shape[0] > IMG_SIZE else cv2.INTER_LINEAR
        crops[i] = cv2.resize(patch, (IMG_SIZE, IMG_SIZE), interpolation=interp)
    return crops


class FramePlan(NamedTuple):
    """Where to look for a frame's faces: everywhere (`boxes` None), near `boxes` with the
    cascade, or (with `previous`, the frame they were found in) by following them; and
    whether to scan this frame for new faces in the background afterwards (`scan_later`)."""

    boxes: list[Box] | None
    previous: np.ndarray | None
    scan_later: bool = False


@dataclass
class _Track:
    id: int
    box: Box
    probs: np.ndarray
    missed: int = 0


class FaceTracker:
    """Per-stream memory: which face is which across frames, and their smoothed probabilities.

    Faces are matched to the previous frame's by box overlap (IoU, greedily, best pairs first);
    a track not matched for `max_missed` frames is forgotten. One tracker per video stream.
    """

    def __init__(self, iou_threshold: float = 0.3, max_missed: int = 5) -> None:
        self.iou_threshold = iou_threshold
        self.max_missed = max_missed
        self._tracks: list[_Track] = []
        self._next_id = 1
        self._since_scan = 0
        self._since_look = 0
        self._lost = False
        self._gray: np.ndarray | None = None
        self._scan: Future | None = None  # a background scan for new faces
        self._scan_pool: ThreadPoolExecutor | None = None
        self._scan_twins: tuple[FaceDetector, FaceDetector] | None = None  # (detector, twin)
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self._tracks.clear()
            self._since_scan = 0
            self._since_look = 0
            self._lost = False
            self._gray = None
            if self._scan is not None:
                self._scan.cancel()
            self._scan = None

    def plan(self, rescan_every: int, confirm_every: int = 1, *,
             scan_in_background: bool = False) -> FramePlan:
        """How to find this frame's faces.

        A full scan (`boxes` None) when no face is known, a face was lost last frame, or
        `rescan_every` frames have passed. Otherwise the cascade looks near the known boxes,
        and between such looks (up to `confirm_every - 1` frames in a row) the boxes are
        followed from the last frame (`previous`, kept by `remember`).

        scan_in_background: the periodic scan (faces known, none lost) does not hold the frame
        up: the cascade looks near the known faces and `scan_later` asks for the frame to be
        scanned in the background (`scan_later_for`); faces that scan finds beyond the known
        ones are looked for near their place in the first frame planned after it ends.
        """
        with self._lock:
            seen = [t.box for t in self._tracks if t.missed == 0]
            found = self._new_from_scan(seen)
            if found:
                self._since_look = 0
                return FramePlan(seen + found, None)
            due = rescan_every <= 1 or self._since_scan >= rescan_every - 1
            if not seen or self._lost or (due and not scan_in_background):
                self._since_scan = self._since_look = 0
                return FramePlan(None, None)
            if due:
                self._since_scan = self._since_look = 0
                return FramePlan(seen, None, scan_later=True)
            self._since_scan += 1
            if self._gray is not None and self._since_look < confirm_every - 1:
                self._since_look += 1
                return FramePlan(seen, self._gray)
            self._since_look = 0
            return FramePlan(seen, None)

    def _new_from_scan(self, seen: list[Box]) -> list[Box]:
        """Boxes a finished background scan found away from every known face (lock held)."""
        if self._scan is None or not self._scan.done():
            return []
        scan, self._scan = self._scan, None
        try:
            boxes = scan.result()
        except Exception:  # a failed scan finds nothing; the next one will try again
            return []
        return [b for b in boxes if all(iou(b, known) < self.iou_threshold for known in seen)]

    def scan_later_for(self, detector: FaceDetector, gray: np.ndarray) -> None:
        """Scan `gray` for faces in a background thread (see `plan`); one scan at a time: while
        one runs, asking again does nothing."""
        with self._lock:
            if self._scan is not None:
                return
            if self._scan_pool is None:
                self._scan_pool = ThreadPoolExecutor(1, thread_name_prefix="fer-face-scan")
            if self._scan_twins is None or self._scan_twins[0] is not detector:
                self._scan_twins = (detector, detector.twin())  # frames keep `detector`'s lock
            self._scan = self._scan_pool.submit(self._scan_twins[1].detect, gray)

    def remember(self, gray: np.ndarray) -> None:
        """Keep the frame whose faces were just found, for `plan` to follow them from."""
        with self._lock:
            self._gray = gray

    def update(
        self, boxes: list[Box], probs: np.ndarray, smoothing: float, *, refound_from: int = -1
    ) -> tuple[list[int], np.ndarray]:
        """Match this frame's faces to tracks; return their track ids and smoothed probabilities.

        smoothing: weight of the past in the exponential average (0: this frame only).
        refound_from: how many known faces were searched for (-1 after a full scan): finding
        fewer schedules a full scan for the next frame.
        """
        smoothing = float(min(max(smoothing, 0.0), 0.99))
        with self._lock:
            self._lost = 0 <= refound_from and len(boxes) < refound_from
            pairs = sorted(
                (
                    (iou(box, track.box), i, j)
                    for i, box in enumerate(boxes)
                    for j, track in enumerate(self._tracks)
                ),
                reverse=True,
            )
            match: dict[int, int] = {}
            used: set[int] = set()
            for score, i, j in pairs:
                if score < self.iou_threshold:
                    break
                if i not in match and j not in used:
                    match[i] = j
                    used.add(j)
            ids: list[int] = []
            smoothed = np.array(probs, dtype=np.float32, copy=True)
            for i, box in enumerate(boxes):
                if i in match:
                    track = self._tracks[match[i]]
                    track.probs = smoothing * track.probs + (1.0 - smoothing) * smoothed[i]
                    track.box, track.missed = box, 0
                else:
                    track = _Track(self._next_id, box, smoothed[i].copy())
                    self._next_id += 1
                    self._tracks.append(track)
                    used.add(len(self._tracks) - 1)
                smoothed[i] = track.probs
                ids.append(track.id)
            for j, track in enumerate(self._tracks):
                if j not in used:
                    track.missed += 1
            self._tracks = [t for t in self._tracks if t.missed <= self.max_missed]
            return ids, smoothed


_LOG_LOCK = threading.Lock()


def _log_frame(faces: list[FacePrediction], error: str | None = None) -> None:
    path = os.environ.get(FRAME_LOG_ENV)
    if not path:
        return
    entry: dict = {"t": round(time.time(), 3), "faces": [f.to_json() for f in faces]}
    if error:
        entry["error"] = error
    try:
        with _LOG_LOCK, open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")
    except OSError:
        pass  # the log is a diagnostic; a full disk must not stop the stream


def draw_faces(image: np.ndarray, faces: list[FacePrediction]) -> np.ndarray:
    """Draw box, label and confidence for each face onto `image` (BGR, modified in place)."""
    for face in faces:
        x, y, w, h = face.box
        color = UNCERTAIN_COLOR if face.uncertain else EMOTION_COLORS[EMOTIONS.index(face.label)]
        thick = max(1, round(w / 60))
        cv2.rectangle(image, (x, y), (x + w, y + h), color, thick)
        text = f"{face.shown} {face.confidence:.0%}"
        scale = max(0.35, min(1.2, w / 160))
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        top = y - th - base - 4 if y - th - base - 4 >= 0 else y  # inside the box at the top edge
        cv2.rectangle(image, (x, top), (x + tw + 4, top + th + base + 4), color, cv2.FILLED)
        cv2.putText(
            image, text, (x + 2, top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick,
            cv2.LINE_AA,
        )
    return image


def process_frame(
    frame_bgr: np.ndarray,
    detector: FaceDetector,
    classifier: FaceModel,
    *,
    tracker: FaceTracker | None = None,
    smoothing: float = 0.0,
    rescan_every: int = DEFAULT_RESCAN_EVERY,
    confirm_every: int = DEFAULT_CONFIRM_EVERY,
    scan_in_background: bool = False,
    monitor: StreamMonitor | None = None,
    margin: float = CROP_MARGIN,
    whole_image: bool = False,
    uncertain_below: float = 0.0,
    draw: bool = True,
    captured_at: float | None = None,
    dropped: int = 0,
) -> tuple[np.ndarray, list[FacePrediction]]:
    """Detect, classify and draw every face of one frame; never raises.

    frame_bgr: HxWx3 BGR (gray, HxWx1 and BGRA are accepted too); the annotated copy is BGR.
    tracker: per-stream state; with it faces keep ids, probabilities are smoothed by
      `smoothing` and full scans happen every `rescan_every` frames (without it, every frame);
      in between, the cascade confirms the known faces every `confirm_every` frames and the
      other frames follow them (1: the cascade every frame).
    scan_in_background: with a tracker, the periodic full scan runs in a thread after the
      frame instead of inside it, so a stream's frames take about the same time each (a full
      scan costs ~30 ms, a frame without one a few); new faces then appear a frame or two
      later. For live streams; a recorded video's analysis keeps scans in order.
    whole_image: skip detection and classify the whole image as one face (photos where the
      detector finds none).
    uncertain_below: faces whose top probability is below this are marked `uncertain` and
      drawn in gray as "uncertain (label?)" (0: every face is named).
    captured_at, dropped: the frame's capture time stamp (s) and the stream's frames skipped
      before it, passed to the monitor for lag and drop figures.
    Returns (annotated frame, faces largest first). On an error the frame comes back as it
    came (or as BGR if it could be converted), with no faces; the monitor counts the error.
    """
    started_at = time.time()
    start = time.perf_counter()
    image = frame_bgr
    try:
        image = as_bgr(frame_bgr)
        if image.shape[0] == 0 or image.shape[1] == 0:
            raise ValueError(f"empty frame of shape {np.shape(frame_bgr)}")
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        plan = FramePlan(None, None)
        if tracker is not None and not whole_image:
            plan = tracker.plan(rescan_every, confirm_every,
                                scan_in_background=scan_in_background)
        refind = plan.boxes
        if whole_image:
            boxes = [Box(0, 0, gray.shape[1], gray.shape[0])]
        elif refind is None:
            boxes = detector.detect(gray)
        elif plan.previous is not None and plan.previous.shape == gray.shape:
            boxes = detector.follow(plan.previous, gray, refind)
        else:
            boxes = detector.detect_near(gray, refind)
        if tracker is not None and not whole_image:
            tracker.remember(gray)
            if plan.scan_later:
                tracker.scan_later_for(detector, gray)
        t_detect = time.perf_counter()
        probs = classifier.predict(crop_faces(gray, boxes, 0.0 if whole_image else margin))
        ids: list[int | None] = [None] * len(boxes)
        if tracker is not None and not whole_image:
            ids, probs = tracker.update(
                boxes, probs, smoothing, refound_from=-1 if refind is None else len(refind)
            )
        t_classify = time.perf_counter()
        faces = []
        for box, p, track_id in zip(boxes, probs, ids, strict=True):
            top = int(np.argmax(p))
            faces.append(FacePrediction(
                box=box, label=EMOTIONS[top], confidence=float(p[top]),
                probs=tuple(float(v) for v in p), track_id=track_id,
                uncertain=bool(is_uncertain(p[top], uncertain_below))))
        annotated = draw_faces(image.copy(), faces) if draw else image
        end = time.perf_counter()
        if monitor is not None:
            timing = FrameTiming(
                detect_ms=(t_detect - start) * 1e3,
                classify_ms=(t_classify - t_detect) * 1e3,
                total_ms=(end - start) * 1e3,
                faces=len(faces),
                full_scan=refind is None,
            )
            monitor.record(
                timing, faces, captured_at=captured_at, started_at=started_at, dropped=dropped
            )
        _log_frame(faces)
        return annotated, faces
    except Exception as exc:  # the stream must survive any bad frame or model failure
        if monitor is not None:
            monitor.record_error(exc)
        _log_frame([], error=f"{type(exc).__name__}: {exc}")
        return image, []

"""What a live video stream is doing: frame rate, dropped frames, lag and timings.

The webcam's frame thread writes a `StreamMonitor` (one per browser stream) and the page's
panel reads consistent copies of it (`snapshot`), so both sides only ever take its lock for
microseconds. No TensorFlow, no Streamlit.

Lag is measured with the frames' own capture time stamps (a WebRTC frame's `pts` in seconds,
on the sender's clock): `now - captured_at` is the transit, decode and queueing delay plus an
unknown clock offset. The smallest such value seen since the stream started is taken as the
offset plus the delay every frame has, so the monitor reports how much later than the best
frame each frame was done: the time frames spent waiting in queues and being processed.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field

import numpy as np

# Above this share of dropped frames (over the last few seconds) the panel says the machine
# cannot keep up with the camera.
DROP_WARNING = 0.2


@dataclass(frozen=True)
class FrameTiming:
    """Where one frame's time went, in milliseconds."""

    detect_ms: float
    classify_ms: float
    total_ms: float
    faces: int
    full_scan: bool


@dataclass
class StreamMonitor:
    """Counts, recent timings, frame rate, dropped frames and lag of one stream, plus the
    latest faces and the main face's recent probabilities; written by the frame thread
    under a lock."""

    history_s: float = 30.0
    window: int = 90  # recent frames that rates and medians are computed over
    frames: int = 0
    errors: int = 0
    dropped: int = 0
    last_error: str | None = None
    latest: list = field(default_factory=list)
    _timings: collections.deque = field(default_factory=collections.deque)
    _stamps: collections.deque = field(default_factory=collections.deque)  # (time, dropped)
    _lags: collections.deque = field(default_factory=collections.deque)
    _timeline: collections.deque = field(default_factory=collections.deque)
    _best_offset: float | None = None
    _last_capture: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(
        self,
        timing: FrameTiming,
        faces: list,
        *,
        captured_at: float | None = None,
        started_at: float | None = None,
        dropped: int = 0,
    ) -> None:
        """One processed frame.

        captured_at: the frame's capture time stamp in seconds (any fixed origin), for lag.
        started_at: `time.time()` when its processing started (default: now - total_ms).
        dropped: frames of the stream skipped since the previous processed one.
        """
        now = time.time()
        start = started_at if started_at is not None else now - timing.total_ms / 1e3
        with self._lock:
            self.frames += 1
            self.dropped += max(0, dropped)
            self._push(self._timings, timing)
            self._push(self._stamps, (now, max(0, dropped)))
            if captured_at is not None:
                self._record_lag(captured_at, start, start + timing.total_ms / 1e3)
            self.latest = list(faces)
            if faces:
                self._timeline.append((now, faces[0].probs))
            while self._timeline and self._timeline[0][0] < now - self.history_s:
                self._timeline.popleft()

    def _push(self, queue: collections.deque, item) -> None:
        queue.append(item)
        while len(queue) > self.window:
            queue.popleft()

    def _record_lag(self, captured_at: float, start: float, end: float) -> None:
        if self._last_capture is not None and captured_at < self._last_capture:
            self._best_offset = None  # time stamps went back: a new stream, a new clock
        self._last_capture = captured_at
        offset = start - captured_at
        if self._best_offset is None or offset < self._best_offset:
            self._best_offset = offset
        self._push(self._lags, (end - captured_at) - self._best_offset)

    def record_error(self, exc: BaseException) -> None:
        with self._lock:
            self.errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"

    def last_timing(self) -> FrameTiming | None:
        with self._lock:
            return self._timings[-1] if self._timings else None

    def snapshot(self) -> dict:
        """A consistent copy for drawing: counts; `fps` (frames processed per second),
        `camera_fps` (processed + dropped), `drop_share` over the recent frames; lag p50/p95 in
        ms; median timings; the latest faces; the main face's (time, probs) history."""
        with self._lock:
            stamps = list(self._stamps)
            timings = list(self._timings)
            lags = [1e3 * v for v in self._lags]
            fps = camera_fps = drop_share = 0.0
            # No frame for 2 s: the stream stopped or stalled, so it runs at 0 FPS.
            if len(stamps) > 1 and stamps[-1][0] > stamps[0][0] and time.time() - stamps[-1][0] < 2.0:
                span = stamps[-1][0] - stamps[0][0]
                later = stamps[1:]  # frames (and drops) that arrived after the first stamp
                fps = len(later) / span
                skipped = sum(d for _, d in later)
                camera_fps = (len(later) + skipped) / span
                drop_share = skipped / (len(later) + skipped)

            def med(attr: str) -> float:
                return float(np.median([getattr(t, attr) for t in timings])) if timings else 0.0

            return {
                "frames": self.frames,
                "errors": self.errors,
                "dropped": self.dropped,
                "last_error": self.last_error,
                "fps": fps,
                "camera_fps": camera_fps,
                "drop_share": drop_share,
                "lag_ms": float(np.percentile(lags, 50)) if lags else None,
                "lag_p95_ms": float(np.percentile(lags, 95)) if lags else None,
                "frame_ms": med("total_ms"),
                "detect_ms": med("detect_ms"),
                "classify_ms": med("classify_ms"),
                "faces": list(self.latest),
                "timeline": list(self._timeline),
            }

    def timeline(self, step_s: float = 0.25) -> list[tuple[float, tuple[float, ...]]]:
        """The main face's history thinned to at most one point per `step_s` seconds (a chart
        of 30 s at 30 frames/s need not draw 900 points per line)."""
        with self._lock:
            points = list(self._timeline)
        thinned: list[tuple[float, tuple[float, ...]]] = []
        for t, probs in points:
            if not thinned or t - thinned[-1][0] >= step_s:
                thinned.append((t, probs))
        return thinned

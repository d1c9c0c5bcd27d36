"""fer_core.stream: frame rate, dropped frames and lag of a live stream."""

from __future__ import annotations

import time

import pytest

from fer_core.stream import DROP_WARNING, FrameTiming, StreamMonitor

TIMING = FrameTiming(detect_ms=2.0, classify_ms=3.0, total_ms=5.0, faces=0, full_scan=True)


def _feed(monitor: StreamMonitor, n: int, *, interval: float, dropped: int = 0,
          delay=lambda i: 0.0, t0: float = 1000.0) -> None:
    """n processed frames, each `dropped` camera frames after the last, captured
    `interval` s apart, processed `delay(i)` s after their capture (plus a constant)."""
    now = time.time()
    step = (dropped + 1) * interval
    for i in range(n):
        captured = t0 + i * step
        monitor.record(TIMING, [], captured_at=captured, dropped=dropped if i else 0,
                       started_at=now - 10 + i * step + delay(i))


def test_rates_and_drops_from_what_is_processed():
    monitor = StreamMonitor(window=60)
    base = time.time() - 2.0
    for i in range(61):  # processed every 2nd camera frame of a 30 fps camera, for 2 s
        monitor._stamps.append((base + i / 30.0, 1 if i else 0))
    snap = monitor.snapshot()
    assert snap["fps"] == pytest.approx(30.0, rel=0.05)
    assert snap["camera_fps"] == pytest.approx(60.0, rel=0.05)
    assert snap["drop_share"] == pytest.approx(0.5, abs=0.01)
    assert not snap["drop_share"] <= DROP_WARNING


def test_lag_is_delay_over_the_fastest_frame():
    monitor = StreamMonitor()
    _feed(monitor, 50, interval=1 / 30, delay=lambda i: 0.0 if i == 0 else 0.100)
    snap = monitor.snapshot()
    # each frame took 5 ms and waited 100 ms more than the first one
    assert snap["lag_ms"] == pytest.approx(105.0, abs=2.0)
    assert snap["lag_p95_ms"] == pytest.approx(105.0, abs=2.0)


def test_lag_restarts_with_a_new_stream():
    monitor = StreamMonitor()
    _feed(monitor, 10, interval=1 / 30, delay=lambda i: 0.5 if i else 0.0)
    _feed(monitor, 10, interval=1 / 30, t0=10.0)  # time stamps go back: another stream
    assert monitor.snapshot()["lag_ms"] < 50


def test_counts_errors_and_dropped_frames():
    monitor = StreamMonitor()
    _feed(monitor, 5, interval=1 / 30, dropped=2)
    monitor.record_error(ValueError("bad frame"))
    snap = monitor.snapshot()
    assert (snap["frames"], snap["dropped"], snap["errors"]) == (5, 8, 1)
    assert snap["last_error"] == "ValueError: bad frame"


def test_no_frames_no_figures():
    snap = StreamMonitor().snapshot()
    assert (snap["fps"], snap["camera_fps"], snap["drop_share"]) == (0.0, 0.0, 0.0)
    assert snap["lag_ms"] is None and snap["frame_ms"] == 0.0


def test_timeline_is_thinned():
    monitor = StreamMonitor(history_s=60)
    now = time.time()
    for i in range(300):  # 10 s at 30 fps
        monitor._timeline.append((now - 10 + i / 30, (1.0,) * 7))
    thinned = monitor.timeline(step_s=0.25)
    assert 38 <= len(thinned) <= 41
    assert all(b[0] - a[0] >= 0.25 - 1e-9 for a, b in zip(thinned, thinned[1:]))

"""A real browser on the Live page: shared by tests/test_browser_live.py and
benchmarks/live_browser.py.

- `write_y4m`: the raw video file Chromium's fake camera plays (looped), optionally with the
  frame number drawn as a barcode in the bottom-left corner, so that the browser can tell
  which camera frame each processed frame it shows came from;
- `streamlit_server`: `streamlit run app.py` as the README starts it, on a free local port;
- `stamp_script(fps)`: JavaScript injected into every frame of the page. It keeps a muted copy of
  the camera track, notes when each camera frame (by barcode) reaches the page, and when each
  processed frame is drawn in the component's output <video>: capture-to-draw lag per frame,
  and the rate of new processed frames, measured where the user sees them.
- `PEERS_SCRIPT`, `rtc_stats`, `answered_video_extensions`: the page's peer connections, their
  WebRTC statistics and the RTP header extensions the server accepted.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", "--no-sandbox",
    "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
    # a hidden or headless tab must not throttle timers or video
    "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
]

# The barcode: BITS cells of CELL_W x CELL_H pixels at the bottom-left, white = 1.
BITS = 10
CELL_W, CELL_H = 24, 16
MARGIN = 8


def require_browser() -> None:
    """Skip (or fail under CI=true, where they are installed) when Chromium or playwright is
    missing: in CI a skip would hide a broken page."""
    import pytest

    problems = []
    if not CHROMIUM.is_file():
        problems.append(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problems.append("the playwright Python package is missing")
    if problems:
        message = "browser test needs: " + "; ".join(problems)
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message} (CI=true: CI must install them)")
        pytest.skip(message)


def stamp(frame: np.ndarray, index: int) -> np.ndarray:
    """Draw `index` (0..2**BITS-1) as a barcode in the frame's bottom-left corner, in place."""
    height = frame.shape[0]
    y0 = height - MARGIN - CELL_H
    for bit in range(BITS):
        x0 = MARGIN + bit * CELL_W
        frame[y0 : y0 + CELL_H, x0 : x0 + CELL_W] = 255 if (index >> bit) & 1 else 0
    return frame


def write_y4m(path: Path, frames: list[np.ndarray], fps: int, *, barcode: bool = False) -> None:
    """A raw 4:2:0 YUV4MPEG2 file, the format Chromium's fake capture device reads."""
    height, width = frames[0].shape[:2]
    with open(path, "wb") as fh:
        fh.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for i, frame in enumerate(frames):
            if barcode:
                frame = stamp(frame.copy(), i % (1 << BITS))
            fh.write(b"FRAME\n")
            fh.write(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"streamlit did not answer on {url} within {timeout:.0f} s")


@contextlib.contextmanager
def streamlit_server(env: dict[str, str], log_path: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """`streamlit run app.py` (the README's command) on a free port: (url, process)."""
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)]
    full_env = dict(os.environ, **env)
    full_env.pop("FER_ICE_SERVERS", None)
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, proc, timeout=120)
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def read_frame_log(path: Path) -> list[dict]:
    """The server's FER_FRAME_LOG lines (fer_core.infer), one dict per processed frame."""
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


STAMP_SCRIPT = """
(() => {
  const BITS = %(bits)d, CW = %(cw)d, CH = %(ch)d, M = %(margin)d, FPS = %(fps)d;
  const SRC_W = %(width)d;  // the camera's frame width, where the code was drawn
  const STALE_MS = 3000;  // a capture older than this is from an earlier loop of the video
  const md = navigator.mediaDevices;
  if (!md || !md.getUserMedia) return;
  const stats = window.__ferStats = {captured: {}, shown: [], outputs: 0};
  const canvas = document.createElement('canvas');
  canvas.width = BITS * CW; canvas.height = 1;
  const ctx = canvas.getContext('2d', {willReadFrequently: true});
  function read(video) {
    // WebRTC may send a smaller picture than the camera's (bandwidth adaptation): the code
    // was drawn at the camera's width, so read it where it lands at this one
    const s = video.videoWidth / SRC_W;
    const y = video.videoHeight - (M + CH / 2) * s;
    ctx.drawImage(video, M * s, y, BITS * CW * s, 1, 0, 0, BITS * CW, 1);
    const px = ctx.getImageData(0, 0, BITS * CW, 1).data;
    let value = 0;
    for (let b = 0; b < BITS; b++) {
      const x = b * CW + CW / 2;
      let sum = 0;
      for (let dx = -4; dx < 4; dx++) sum += px[4 * (x + dx)];
      if (sum / 8 > 128) value |= 1 << b;
    }
    return value;
  }
  function watch(video, onFrame) {
    const step = (now) => {
      if (video.videoWidth) { try { onFrame(read(video), performance.timeOrigin + now); } catch (e) {} }
      video.requestVideoFrameCallback(step);
    };
    video.requestVideoFrameCallback(step);
  }
  // When this camera frame reached the page; the local <video> may skip a frame, so an
  // unseen one is dated from the nearest earlier one seen (frames come 1000/FPS ms apart).
  function captureTime(index, shownAt) {
    for (let back = 0; back <= 10 && index - back >= 0; back++) {
      const seen = stats.captured[index - back];
      if (seen !== undefined && shownAt - seen < STALE_MS) return seen + back * 1000 / FPS;
    }
    return null;
  }
  const original = md.getUserMedia.bind(md);
  md.getUserMedia = async (constraints) => {
    const stream = await original(constraints);
    const tracks = stream.getVideoTracks().map((t) => t.clone());
    if (tracks.length) {
      const local = document.createElement('video');
      local.muted = true; local.playsInline = true; local.srcObject = new MediaStream(tracks);
      local.play();
      watch(local, (index, t) => { stats.captured[index] = t; });
      const known = new Set([local]);
      const poll = setInterval(() => {
        for (const video of document.querySelectorAll('video')) {
          if (known.has(video)) continue;
          known.add(video); stats.outputs += 1;
          let last = -1;
          watch(video, (index, t) => {
            if (index === last) return;  // the same processed frame sent again
            last = index;
            const c = captureTime(index, t);
            stats.shown.push([t, index, c === null ? null : t - c]);
          });
        }
      }, 200);
      window.addEventListener('unload', () => clearInterval(poll));
    }
    return stream;
  };
})();
"""


# JavaScript injected into every frame of the page: keeps every peer connection the page makes
# in `window.__ferPeers`, for WebRTC's own statistics (`rtc_stats`) and the negotiated session
# (`answered_video_extensions`).
PEERS_SCRIPT = """(() => {
  const Native = window.RTCPeerConnection;
  if (!Native) return;
  const pcs = window.__ferPeers = [];
  window.RTCPeerConnection = function (...args) { const pc = new Native(...args); pcs.push(pc); return pc; };
  window.RTCPeerConnection.prototype = Native.prototype;
  Object.setPrototypeOf(window.RTCPeerConnection, Native);
})();
"""


def stamp_script(fps: int, width: int = 640) -> str:
    """STAMP_SCRIPT for a camera of `fps` frames a second and `width` pixels."""
    return STAMP_SCRIPT % {"bits": BITS, "cw": CELL_W, "ch": CELL_H, "margin": MARGIN, "fps": fps,
                           "width": width}


RTC_STATS_SCRIPT = """async () => {
  const out = {};
  for (const pc of window.__ferPeers || []) {
    const report = await pc.getStats();
    report.forEach((r) => {
      if (r.kind !== 'video') return;
      if (r.type === 'inbound-rtp') Object.assign(out, {
        in_frames: r.framesDecoded, in_dropped: r.framesDropped, in_decode_s: r.totalDecodeTime,
        in_jitter_s: r.jitterBufferDelay, in_jitter_n: r.jitterBufferEmittedCount,
        in_width: r.frameWidth, in_height: r.frameHeight});
      if (r.type === 'outbound-rtp') Object.assign(out, {
        out_frames: r.framesEncoded, out_encode_s: r.totalEncodeTime, out_width: r.frameWidth,
        out_height: r.frameHeight, out_limit: r.qualityLimitationReason});
    });
  }
  return out;
}"""


def rtc_stats(frame) -> dict:
    """WebRTC's video statistics of the page's peer connections (cumulative counters)."""
    return frame.evaluate(RTC_STATS_SCRIPT)


ANSWER_EXTENSIONS_SCRIPT = """() => (window.__ferPeers || []).flatMap((pc) => {
  const sdp = (pc.remoteDescription && pc.remoteDescription.sdp) || '';
  const video = sdp.split('\\r\\nm=').find((m) => m.startsWith('video')) || '';
  return [...video.matchAll(/a=extmap:\\d+(?:\\/\\w+)? (\\S+)/g)].map((m) => m[1]);
})"""


def answered_video_extensions(frame) -> list[str]:
    """The RTP header extensions (URIs) the server's answer accepted for video."""
    return frame.evaluate(ANSWER_EXTENSIONS_SCRIPT)


def webrtc_frame(page):
    """The Frame object of the webrtc component's iframe (where STAMP_SCRIPT keeps its stats)."""
    for frame in page.frames:
        if "webrtc" in (frame.name or "") or "streamlit_webrtc" in frame.url:
            return frame
    handle = page.query_selector('iframe[title*="webrtc"]')
    return handle.content_frame() if handle else None

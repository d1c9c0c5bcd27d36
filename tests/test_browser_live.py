"""Real-browser end-to-end test of the Live page's webcam.

Starts `streamlit run app.py` on 127.0.0.1 with `FER_FRAME_LOG` set and a tiny model as the
default, opens /Live in headless Chromium (Debian's `chromium`, driven by Python playwright)
whose fake camera plays a y4m video of real faces made here, presses START inside the
webrtc component's iframe, and reads the server's frame log: frames must arrive, and faces
must be found and labelled. Skips when chromium or playwright is missing, except in CI
(`CI=true`), where they are installed and a skip would hide a broken webcam.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from face_frames import face_frame
from fer_core.labels import EMOTIONS

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
FPS = 15
VIDEO_FRAMES = 45  # 3 s, looped by Chromium
ATTEMPTS = 3  # connection attempts (START clicks) before failing
WAIT_PER_ATTEMPT_S = 30
WANT_FRAMES = 5  # frames with faces; a loaded 2-core machine may manage only ~1 FPS


def _require_browser() -> None:
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


def write_y4m(path: Path, frames: list[np.ndarray], fps: int = FPS) -> None:
    """A raw 4:2:0 YUV4MPEG2 file, the format Chromium's fake capture device reads."""
    height, width = frames[0].shape[:2]
    with open(path, "wb") as fh:
        fh.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            fh.write(b"FRAME\n")
            fh.write(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"streamlit exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"streamlit did not answer on {url} within {timeout:.0f} s")


def _read_log(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.fixture
def server(tmp_path):
    """A streamlit server for app.py: (base url, frame log path, server log path)."""
    _require_browser()
    import fer_core  # noqa: F401
    from fer_core.models import create_model

    model = tmp_path / "tiny.keras"
    create_model("fernet", width=4, convs=1).save(model)
    port = _free_port()
    log = tmp_path / "frames.jsonl"
    server_log = tmp_path / "server.log"
    env = dict(
        os.environ, FER_FRAME_LOG=str(log), FER_DEFAULT_MODEL=str(model),
        FER_RUNS_DIR=str(tmp_path / "runs"),
    )
    env.pop("FER_ICE_SERVERS", None)
    cmd = [
        sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
        "--server.port", str(port), "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
    ]
    with open(server_log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url, proc, timeout=120)
        yield url, log, server_log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_webcam_faces_are_labelled_in_a_real_browser(server, tmp_path):
    from playwright.sync_api import sync_playwright

    url, log, server_log = server
    base = face_frame(3)
    clip = [np.roll(base, round(6 * np.sin(i / 4)), axis=1) for i in range(VIDEO_FRAMES)]
    video = tmp_path / "faces.y4m"
    write_y4m(video, clip)
    args = [
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={video}", "--no-sandbox", "--disable-gpu",
        "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync",
    ]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=args)
        try:
            context = browser.new_context(permissions=["camera"])
            context.grant_permissions(["camera"], origin=url)
            page = context.new_page()
            page.goto(f"{url}/Live", timeout=120_000)
            component = page.frame_locator('iframe[title*="webrtc"]')
            start = component.get_by_role("button", name="START")
            start.wait_for(timeout=180_000)  # the first run imports TensorFlow, loads the model
            entries: list[dict] = []
            for attempt in range(1, ATTEMPTS + 1):
                start.click()
                deadline = time.time() + WAIT_PER_ATTEMPT_S
                while time.time() < deadline:
                    entries = _read_log(log)
                    if sum(1 for e in entries if e["faces"]) >= WANT_FRAMES:
                        break
                    time.sleep(0.5)
                if sum(1 for e in entries if e["faces"]) >= WANT_FRAMES:
                    break
                stop = component.get_by_role("button", name="STOP")
                if stop.count():
                    stop.click()
                    time.sleep(1)
            panel_text = page.inner_text("body")
        finally:
            browser.close()

    server_out = server_log.read_text(errors="replace")[-3000:]
    assert entries, f"no frame reached the server after {ATTEMPTS} attempts; log:\n{server_out}"
    with_faces = [e for e in entries if e["faces"]]
    assert len(with_faces) >= WANT_FRAMES, (
        f"{len(entries)} frames, {len(with_faces)} with faces; server log:\n{server_out}"
    )
    assert not any("error" in e for e in entries), [e["error"] for e in entries if "error" in e]
    counts = [len(e["faces"]) for e in with_faces]
    assert max(counts) == 3, counts
    for entry in with_faces:
        for face in entry["faces"]:
            assert face["label"] in EMOTIONS
            assert len(face["probs"]) == 7 and abs(sum(face["probs"]) - 1.0) < 1e-3
            # the log rounds probabilities to 5 digits: a near-uniform tiny model can tie there
            assert face["probs"][EMOTIONS.index(face["label"])] == max(face["probs"])
            x, y, w, h = face["box"]
            assert 0 <= x and 0 <= y and x + w <= 640 and y + h <= 480 and w >= 40
    span = entries[-1]["t"] - entries[0]["t"]
    fps = (len(entries) - 1) / span if span > 0 else 0.0
    print(
        f"\nbrowser e2e: {len(entries)} frames, {len(with_faces)} with faces, "
        f"faces per frame median {int(np.median(counts))}, server-side FPS {fps:.1f}, "
        f"attempts {attempt}"
    )
    assert "Live" in panel_text

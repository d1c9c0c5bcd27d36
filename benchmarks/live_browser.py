"""The Live page's webcam as a user meets it: frames per second and capture-to-draw lag in a
real browser.

Starts the app as the README does (`streamlit run app.py`, shipped default model), opens /Live
in headless Chromium whose fake camera plays a 640x480 y4m video of real faces (1 or 3 faces,
moving, 30 fps, each frame numbered by a barcode in a corner), presses START, lets the stream
settle, then measures over a steady window in the page itself:
- frames/s: new processed frames drawn in the output video per second;
- lag: from the moment a camera frame reached the page to the moment the processed version of
  that frame was drawn (p50 and p95);
- CPU per drawn frame: the Streamlit server's and Chromium's, from /proc.
The "busy" scenario runs one CPU-bound process beside them. Each scenario runs --runs times
(median reported); `benchmarks/live_pipeline.py`'s figures (the same frame function with no
browser, codec or Streamlit) are printed beside them.

    python benchmarks/live_browser.py [--runs 3] [--seconds 20] [--only 1face,3faces,busy]
                                      [--no-mirror] [--json]

The page runs with its default settings, so each face is classified with its mirror image
too (`fer_core.labels.DEFAULT_MIRROR_VIEW`); `--no-mirror` unticks that box (one view per
face) before pressing START.

Goals (issue 11, 2-core CPU, Chromium on the same cores): >= 25 frames/s with 1 face,
>= 20 with 3 faces, >= 10 with a busy process beside, lag p95 <= 150 ms.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from face_frames import face_frame  # noqa: E402
from live_browser_kit import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    PEERS_SCRIPT,
    rtc_stats,
    stamp_script,
    streamlit_server,
    webrtc_frame,
    write_y4m,
)
from fer_core.labels import DEFAULT_MIRROR_VIEW, MIRROR_LABEL  # noqa: E402

FPS = 30
VIDEO_FRAMES = 300  # 10 s, looped by Chromium; barcodes stay unique within a loop
SETTLE_S = 6.0  # after the first processed frame, before the window opens
SCENARIOS = {"1face": (1, False), "3faces": (3, False), "busy": (1, True)}


def clip(n_faces: int) -> list[np.ndarray]:
    base = face_frame(n_faces)
    shifts = np.round(12 * np.sin(np.linspace(0, 8 * np.pi, VIDEO_FRAMES))).astype(int)
    return [np.roll(base, int(s), axis=1) for s in shifts]


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes, from /proc (0 for a vanished one)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / tick


def chromium_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if "chromium" in (entry / "comm").read_text():
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


def measure(url: str, server_pid: int, video: Path, seconds: float,
            screenshot: Path | None = None,
            mirror: bool = DEFAULT_MIRROR_VIEW) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=[*CHROMIUM_ARGS, f"--use-file-for-fake-video-capture={video}"],
        )
        try:
            context = browser.new_context(permissions=["camera"])
            context.add_init_script(PEERS_SCRIPT)
            context.add_init_script(stamp_script(FPS))
            page = context.new_page()
            page.goto(f"{url}/Live", timeout=180_000)
            start = page.frame_locator('iframe[title*="webrtc"]').get_by_role("button", name="START")
            start.wait_for(timeout=180_000)
            if mirror != DEFAULT_MIRROR_VIEW:
                box = page.get_by_role("checkbox", name=MIRROR_LABEL)
                box.set_checked(mirror, force=True)
                time.sleep(3)  # the page reruns with the other setting
                if box.is_checked() != mirror:
                    raise RuntimeError(f"could not set {MIRROR_LABEL!r} to {mirror}")
                start.wait_for(timeout=60_000)
            start.click()
            frame = None
            deadline = time.time() + 90
            while time.time() < deadline:
                frame = webrtc_frame(page)
                if frame is not None and frame.evaluate("window.__ferStats ? __ferStats.shown.length : 0") > 0:
                    break
                time.sleep(0.25)
            else:
                raise RuntimeError("no processed frame was drawn within 90 s of START")
            time.sleep(SETTLE_S)
            pids = [server_pid, *chromium_pids()]
            n0 = frame.evaluate("__ferStats.shown.length")
            cpu0, t0 = cpu_seconds([server_pid]), time.time()
            bcpu0 = cpu_seconds(pids[1:])
            rtc0 = rtc_stats(frame)
            time.sleep(seconds)
            rtc1 = rtc_stats(frame)
            shown = frame.evaluate("__ferStats.shown")
            elapsed = time.time() - t0
            cpu1, bcpu1 = cpu_seconds([server_pid]), cpu_seconds(pids[1:])
            outputs = frame.evaluate("__ferStats.outputs")
            if screenshot is not None:
                page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    window = shown[n0:]
    lags = [lag for _, _, lag in window if lag is not None and lag >= 0]
    frames = max(1, len(window))
    def per_frame_ms(total: str, count: str) -> float:
        n = rtc1.get(count, 0) - rtc0.get(count, 0)
        return 1e3 * (rtc1.get(total, 0) - rtc0.get(total, 0)) / n if n > 0 else float("nan")

    return {
        "fps": len(window) / elapsed,
        "lag_p50_ms": float(np.percentile(lags, 50)) if lags else float("nan"),
        "lag_p95_ms": float(np.percentile(lags, 95)) if lags else float("nan"),
        "server_cpu_ms": 1e3 * (cpu1 - cpu0) / frames,
        "browser_cpu_ms": 1e3 * (bcpu1 - bcpu0) / frames,
        "unmatched": len(window) - len(lags),
        "jitter_buffer_ms": per_frame_ms("in_jitter_s", "in_jitter_n"),
        "decode_ms": per_frame_ms("in_decode_s", "in_frames"),
        "encode_ms": per_frame_ms("out_encode_s", "out_frames"),
        "sent_fps": (rtc1.get("out_frames", 0) - rtc0.get("out_frames", 0)) / elapsed,
        "received_fps": (rtc1.get("in_frames", 0) - rtc0.get("in_frames", 0)) / elapsed,
        "sent_width": float(rtc1.get("out_width") or 0),
        "cpu_limited": float(rtc1.get("out_limit") == "cpu"),
        "videos": outputs,
    }


def pipeline_figures(mirror: bool = DEFAULT_MIRROR_VIEW) -> dict:
    """benchmarks/live_pipeline.py --json in its own process: the frame function alone."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "live_pipeline.py"), "--json", "--frames", "150",
         "--mirror" if mirror else "--no-mirror"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    try:
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--only", default=",".join(SCENARIOS))
    parser.add_argument("--no-pipeline", action="store_true", help="skip live_pipeline.py")
    parser.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                        help="environment variable for the app's server (to compare settings)")
    parser.add_argument("--mirror", action=argparse.BooleanOptionalAction,
                        default=DEFAULT_MIRROR_VIEW,
                        help="classify each face with its mirror image too (flip TTA), as the "
                        "pages do by default; --no-mirror unticks the box")
    parser.add_argument("--screenshot", type=Path, help="PNG of the page, first run only")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n]
    results: dict[str, list[dict]] = {n: [] for n in names}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        videos = {}
        for n_faces in {SCENARIOS[n][0] for n in names}:
            videos[n_faces] = tmp_path / f"faces{n_faces}.y4m"
            write_y4m(videos[n_faces], clip(n_faces), FPS, barcode=True)
        server_env = dict(item.split("=", 1) for item in args.server_env)
        with streamlit_server(server_env, tmp_path / "server.log") as (url, proc):
            for run in range(args.runs):
                for name in names:
                    n_faces, busy = SCENARIOS[name]
                    hog = None
                    if busy:
                        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
                    try:
                        shot = args.screenshot if run == 0 and name == names[0] else None
                        r = measure(url, proc.pid, videos[n_faces], args.seconds, shot,
                                    args.mirror)
                    finally:
                        if hog is not None:
                            hog.kill()
                            hog.wait()
                    results[name].append(r)
                    print(f"run {run + 1} {name}: " + ", ".join(
                        f"{k} {v:.1f}" for k, v in r.items()), file=sys.stderr, flush=True)
    pipeline = {} if args.no_pipeline else pipeline_figures(args.mirror)
    summary = {}
    print(f"\nLive page in headless Chromium, 640x480 camera at {FPS} fps, median of "
          f"{args.runs} runs of {args.seconds:.0f} s (steady state), "
          f"{'each face and its mirror image' if args.mirror else 'one view per face'}")
    print(f"{'scenario':<8} {'frames/s':>9} {'lag p50':>8} {'lag p95':>8} "
          f"{'server CPU':>11} {'Chromium CPU':>13} {'pipeline alone':>15}")
    for name in names:
        # a run whose lag could not be read (no barcode matched) is left out of the lag's median
        med = {k: statistics.median([r[k] for r in results[name] if math.isfinite(r[k])] or [math.nan])
               for k in results[name][0]}
        summary[name] = med
        alone = pipeline.get(str(SCENARIOS[name][0]), {}).get("median_ms")
        alone_txt = f"{alone:.1f} ms" if alone is not None else "-"
        print(f"{name:<8} {med['fps']:>9.1f} {med['lag_p50_ms']:>6.0f}ms {med['lag_p95_ms']:>6.0f}ms "
              f"{med['server_cpu_ms']:>8.1f} ms {med['browser_cpu_ms']:>10.1f} ms {alone_txt:>15}")
    print("(CPU per drawn frame; 'pipeline alone': benchmarks/live_pipeline.py median per frame)")
    if args.json:
        print(json.dumps({"browser": summary, "pipeline": pipeline}))


if __name__ == "__main__":
    main()

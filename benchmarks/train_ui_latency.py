"""How long the Train page takes to show a new epoch, in a real headless browser.

Starts `streamlit run app.py` on a temporary runs folder, opens the Train page in Chromium
(Debian's /usr/bin/chromium driven by Playwright), sets a short run on the demo set, presses
Start, and records in the page (a MutationObserver) when each "Epoch k/E" label first
appears. The trainer stamps every epoch event with its wall-clock time in events.jsonl, so
latency = label first seen - epoch event written (same machine clock). Optionally saves a
full-page screenshot mid-training.

    python benchmarks/train_ui_latency.py [--epochs 8] [--screenshot docs/train_page.png]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
OBSERVER = """() => {
  window.__epochSeen = {};
  const look = () => {
    const m = document.body.innerText.match(/Epoch (\\d+)\\/(\\d+)/);
    if (m && !(m[1] in window.__epochSeen)) window.__epochSeen[m[1]] = Date.now() / 1000;
    if (/finished after \\d+ epochs/.test(document.body.innerText) && !window.__finishedSeen)
      window.__finishedSeen = Date.now() / 1000;
  };
  new MutationObserver(look).observe(document.body, {subtree: true, childList: true,
                                                     characterData: true});
  look();
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"streamlit did not listen on port {port} within {timeout} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--screenshot", type=Path, help="save a full-page PNG mid-training")
    parser.add_argument("--shot-after", type=int, default=3,
                        help="take the screenshot once this many epochs are done")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="fer-ui-latency-"))
    env = dict(os.environ, FER_RUNS_DIR=str(work / "runs"), FER_CACHE_DIR=str(work / "cache"),
               PYTHONPATH=str(REPO))
    env.pop("FER2013_CSV", None)
    port = _free_port()
    log = open(work / "streamlit.log", "wb")  # noqa: SIM115  (closed in the finally below)
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.headless", "true"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_http(port)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/Train", wait_until="domcontentloaded")
            page.get_by_role("button", name="Start training").wait_for(timeout=120_000)
            epochs = page.get_by_role("spinbutton", name="Epochs", exact=True)
            epochs.fill(str(args.epochs))
            epochs.press("Enter")
            name = page.get_by_role("textbox", name="Run name")
            name.fill("browser demo")
            name.press("Enter")
            page.wait_for_timeout(1500)  # let the reruns for the two inputs settle
            page.evaluate(OBSERVER)
            t_click = time.time()
            page.get_by_role("button", name="Start training").click()
            run_dir = _wait_for_run(work / "runs")
            shot_taken = args.screenshot is None
            deadline = time.monotonic() + 60 * 10
            while time.monotonic() < deadline:
                status = json.loads((run_dir / "status.json").read_text())
                if not shot_taken and status.get("epoch", 0) >= args.shot_after:
                    _screenshot(page, args.screenshot)
                    shot_taken = True
                if status["state"] not in ("queued", "running"):
                    break
                time.sleep(0.2)
            page.wait_for_timeout(4000)
            seen = page.evaluate("() => window.__epochSeen")
            finished_seen = page.evaluate("() => window.__finishedSeen || null")
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()

    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    started = next(e for e in events if e["kind"] == "started")
    epoch_events = [e for e in events if e["kind"] == "epoch"]
    end = next((e for e in events if e["kind"] in ("finished", "stopped", "failed")), None)
    latencies = []
    for e in epoch_events:
        shown = seen.get(str(e["epoch"] + 1))
        if shown is not None and e["epoch"] < args.epochs:
            latencies.append(shown - e["time"])
    if end and finished_seen:
        latencies.append(finished_seen - end["time"])
    print(f"run {run_dir.name}: {len(epoch_events)} epochs, state {status['state']}")
    print(f"click -> job started (TF import, data, model): {started['time'] - t_click:.1f} s")
    print("epoch event -> page shows it (s): " + ", ".join(f"{x:.2f}" for x in latencies))
    if latencies:
        print(f"latency: median {statistics.median(latencies):.2f} s, "
              f"max {max(latencies):.2f} s over {len(latencies)} epoch ends")
    if args.screenshot:
        print(f"screenshot: {args.screenshot}")


def _screenshot(page, path: Path) -> None:
    """The top of the page (live panel, then the form) in a tall window: Streamlit scrolls
    its main container, not the document, so a "full page" shot would show one screen."""
    page.set_viewport_size({"width": 1400, "height": 2300})
    page.evaluate("""() => { const m = document.querySelector('[data-testid="stMain"]')
                               || document.querySelector('section.main');
                             if (m) m.scrollTo(0, 0); window.scrollTo(0, 0); }""")
    page.wait_for_timeout(2500)  # one or two polls: the panel shows the latest epoch
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": 1400, "height": 1000})


def _wait_for_run(root: Path, timeout: float = 30.0) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [p for p in root.glob("*") if p.is_dir() and not p.name.startswith(".")]
        if found:
            return found[0]
        time.sleep(0.1)
    raise RuntimeError(f"no run folder appeared in {root} within {timeout} s")


if __name__ == "__main__":
    main()

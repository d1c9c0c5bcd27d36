"""What an open Train page costs a running training job: epoch time with and without it.

Starts the app as the README does (`streamlit run app.py`, on a temporary runs folder), then
trains the same short run (the `quick` preset on the demo set) through `fer_core.jobs`, the
way the Train page starts jobs, several times: alternately with no browser, and with the
Train page open in headless Chromium, following the run live (its panel refreshes every
`ui.train_panel.POLL_RUNNING_S`). Epoch time is read from the run's own events (epochs after
the first, which pays for tracing). Prints the median epoch time of each case and the throughput lost.

    python benchmarks/train_page_cost.py [--pairs 3] [--epochs 6]

Goal (issue 11): an open Train page costs the training process at most 5% of its throughput.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from live_browser_kit import CHROMIUM, CHROMIUM_ARGS, streamlit_server  # noqa: E402

from fer_core import jobs, runs  # noqa: E402
from fer_core.config import config_from_preset  # noqa: E402


def epoch_seconds(run_dir: Path) -> list[float]:
    """Durations of epochs 2.. from the run's epoch events (time stamps)."""
    stamps = []
    for line in (run_dir / "events.jsonl").read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        if event.get("kind") == "epoch":
            stamps.append(float(event["time"]))
    return [b - a for a, b in zip(stamps, stamps[1:])]


def train(runs_dir: Path, epochs: int, url: str | None) -> list[float]:
    """One job, optionally watched by a browser on the Train page; its epoch durations."""
    config = config_from_preset("quick", data="demo", epochs=epochs, name="page-cost")
    run = jobs.start_job(config, runs_dir=runs_dir)
    browser = pw = None
    try:
        if url is not None:
            from playwright.sync_api import sync_playwright

            pw = sync_playwright().start()
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                         args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.goto(f"{url}/Train", timeout=180_000)
            page.get_by_text("Epoch").first.wait_for(timeout=180_000)
        deadline = time.time() + 1800
        while jobs.active_job(runs_dir) is not None and time.time() < deadline:
            time.sleep(0.5)
    finally:
        if browser is not None:
            browser.close()
        if pw is not None:
            pw.stop()
    info = runs.get_run(run.id, runs_dir)
    if info.state != "finished":
        raise RuntimeError(f"run {run.id} ended {info.state}: {info.status.get('error')}")
    return epoch_seconds(info.dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args()
    closed, opened = [], []
    with tempfile.TemporaryDirectory() as tmp:
        runs_dir = Path(tmp) / "runs"
        env = {"FER_RUNS_DIR": str(runs_dir)}
        with streamlit_server(env, Path(tmp) / "server.log") as (url, _proc):
            for pair in range(args.pairs):
                for watched in (False, True):
                    seconds = train(runs_dir, args.epochs, url if watched else None)
                    (opened if watched else closed).append(statistics.median(seconds))
                    print(f"pair {pair + 1}, page {'open' if watched else 'closed'}: epoch "
                          f"{statistics.median(seconds):.2f} s", file=sys.stderr, flush=True)
    base, page = statistics.median(closed), statistics.median(opened)
    print(f"\nquick preset on the demo set, {args.epochs} epochs, median of {args.pairs} runs each")
    print(f"{'Train page':<12} {'epoch s':>8}")
    print(f"{'closed':<12} {base:>8.2f}")
    print(f"{'open':<12} {page:>8.2f}")
    print(f"throughput lost to the open page: {100 * (1 - base / page):.1f}%")


if __name__ == "__main__":
    main()

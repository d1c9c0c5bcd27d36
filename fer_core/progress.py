"""What a run has done so far, for people: live progress (epoch, batch, elapsed, ETA, latest
numbers), its training time and best validation accuracy.

`live_progress` is the one place progress is computed from a run's status and events: the
Train page's live panel and `fer_core.jobs.job_status` both read it. No TensorFlow.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fer_core import runs
from fer_core.text import format_seconds

# How much of the end of events.jsonl the live panel reads each second: the latest batch,
# epoch and start events of any run (batch events are written at most once a second).
EVENTS_TAIL_BYTES = 1 << 19


@dataclass(frozen=True)
class LiveProgress:
    """What the progress panel draws for one run, from its status and latest events."""

    state: str
    epoch: int  # epoch in progress (1-based) while running, else epochs completed
    epochs: int
    batch: int
    steps: int
    epoch_fraction: float  # 0..1 of the current epoch
    run_fraction: float  # 0..1 of all epochs
    elapsed: float | None
    eta: float | None
    lr: float | None
    loss: float | None
    accuracy: float | None
    val_accuracy: float | None
    error: str | None
    # Before the first batch: what the job is doing ("" once batches run, or when it ended).
    # A job loads its data and builds the model before its "started" event, then traces
    # and compiles during the first batch: tens of seconds with nothing to draw.
    phase: str = ""
    data_loss: float | None = None  # cross-entropy alone; `loss` adds the L2 penalty

    @property
    def running(self) -> bool:
        return self.state in runs.ACTIVE_STATES


def best_val_accuracy(history: Iterable[Mapping[str, float]]) -> float | None:
    values = [r.get("val_accuracy") for r in history]
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return max(finite) if finite else None


def run_duration(info: runs.RunInfo, now: float | None = None) -> float | None:
    """Training seconds: the trainer's own count, or start to end (now, while running)."""
    status = info.status
    if status.get("elapsed") is not None and not info.active:
        return float(status["elapsed"])
    start = status.get("started_at")
    if not start:
        return None
    end = status.get("finished_at") if not info.active else None
    return max(0.0, float(end or now or time.time()) - float(start))


def live_progress(info: runs.RunInfo, events: list[dict[str, Any]],
                  now: float | None = None,
                  history: list[Mapping[str, float]] | None = None) -> LiveProgress:
    """Progress of a run from its status, its latest events and optionally its history (for
    the validation accuracy when no epoch event is among the events). While it runs, elapsed
    and ETA are advanced by the time since the latest event so they tick smoothly."""
    now = time.time() if now is None else now
    epochs = max(1, info.epochs)
    last = next((e for e in reversed(events) if e.get("kind") in ("batch", "epoch")), None)
    start = next((e for e in reversed(events) if e.get("kind") in ("started", "resumed")), None)
    epoch_events = [e for e in events if e.get("kind") == "epoch"]
    # the epoch event lands a moment before status.json catches up: trust whichever is ahead
    done = max(info.epoch, int(epoch_events[-1].get("epoch", 0)) if epoch_events else 0)
    steps = int((start or {}).get("steps_per_epoch") or (last or {}).get("steps") or 0)
    batch, epoch_fraction = 0, 0.0
    lr = (last or start or {}).get("lr")
    elapsed = info.status.get("elapsed")
    eta = info.status.get("eta") if info.active else 0.0
    if info.active:
        current = done + 1
        if last and last["kind"] == "batch" and int(last.get("epoch", 0)) == current:
            batch, steps = int(last["batch"]), int(last.get("steps") or steps)
            epoch_fraction = batch / max(1, steps)
        if last:
            since = max(0.0, now - float(last.get("time", now)))
            elapsed = float(last.get("elapsed") or 0.0) + since
            eta = None if last.get("eta") is None else max(0.0, float(last["eta"]) - since)
        elif info.status.get("started_at"):
            elapsed = now - float(info.status["started_at"])
    else:
        current = done
        epoch_fraction = 1.0 if done else 0.0
        if elapsed is None:
            elapsed = run_duration(info, now)
    run_fraction = 1.0 if info.state == "finished" else (done + (epoch_fraction if info.active
                                                                   else 0.0)) / epochs
    last_epoch = epoch_events[-1] if epoch_events else (dict(history[-1]) if history else {})
    source = last if last and last.get("kind") == "batch" and info.active else last_epoch
    phase = ""
    if info.state == "queued":
        phase = "Queued: the job's process is starting…"
    elif info.active and start is None:
        phase = "Starting: loading the data and building the model…"
    elif info.active and last is None:
        phase = "Compiling the model and training the first batch…"
    return LiveProgress(
        state=info.state, epoch=min(current, epochs), epochs=epochs, batch=batch, steps=steps,
        epoch_fraction=min(1.0, epoch_fraction), run_fraction=min(1.0, max(0.0, run_fraction)),
        elapsed=elapsed, eta=eta, lr=lr, loss=source.get("loss"),
        accuracy=source.get("accuracy"), val_accuracy=last_epoch.get("val_accuracy"),
        error=info.status.get("error"), phase=phase, data_loss=source.get("data_loss"),
    )


def progress_caption(p: LiveProgress) -> str:
    """One line under the bars: elapsed, ETA, learning rate, latest numbers."""
    parts = [f"elapsed {format_seconds(p.elapsed)}"]
    if p.running:
        parts.append(f"ETA {format_seconds(p.eta)}" if p.eta is not None else "ETA measuring…")
    if p.lr is not None:
        parts.append(f"learning rate {p.lr:.3g}")
    if p.data_loss is not None and math.isfinite(p.data_loss):
        penalty = (p.loss - p.data_loss) if p.loss is not None and math.isfinite(p.loss) else None
        parts.append(f"loss {p.data_loss:.4f}" + (f" (+{penalty:.3f} L2 penalty)"
                                                   if penalty is not None and penalty > 5e-4
                                                   else ""))
    elif p.loss is not None and math.isfinite(p.loss):
        parts.append(f"loss {p.loss:.4f}")
    if p.accuracy is not None:
        parts.append(f"train acc {100 * p.accuracy:.1f}%")
    if p.val_accuracy is not None:
        parts.append(f"val acc {100 * p.val_accuracy:.1f}%")
    return " · ".join(parts)

"""Measurements that can crash natively, each run in a child process with a timeout.

TensorFlow's CPU kernels can abort or segfault the whole process (oneDNN on AVX-512 with odd
batch sizes, issue 18), so nothing here trains in the caller's process: a Streamlit server
that times a configuration ("Estimate time" on the Train page) gets a number or a message,
never a crash.

- `measure_speed(config)`: training images per second of a config (`fer_core.train`'s
  timing, in a child).
- `probe_onednn()`: whether oneDNN kernels are safe and faster on this CPU. One child per
  setting trains and predicts every registered model on odd, even and size-1 batches (the
  crash probe), then times the `quick` and `default` presets (the speed measurement). oneDNN
  is chosen only when its child survived and was faster; the result is cached for
  `fer_core.cpu` (per CPU model and flags, and TensorFlow version).

`python -m fer_core.probe speed CONFIG_JSON` and `python -m fer_core.probe onednn-child`
are the children; they print one JSON object as their last line.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any, NamedTuple

from fer_core import cpu
from fer_core.config import ConfigError, TrainConfig
from fer_core.files import atomic_write
from fer_core.paths import REPO_ROOT

SPEED_TIMEOUT_S = 300.0  # a TensorFlow import, a model build and trace, a few timed steps
PROBE_TIMEOUT_S = 900.0  # per child: every model's crash checks and two timings
CRASH_BATCHES: tuple[int, ...] = (1, 2, 5, 7, 8, 9, 17, 33, 37)  # 37: 101 faces at batch 64
SPEED_PRESETS: tuple[str, ...] = ("quick", "default")
MIN_SPEEDUP = 1.05  # oneDNN is chosen only when it is at least this much faster


class ProbeError(RuntimeError):
    """A child process crashed, timed out or failed; the message says which and how."""


def _child_env(onednn: str | None) -> dict[str, str]:
    """The caller's environment for a child; `onednn` "0"/"1" forces that setting."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    if onednn is not None:
        env[cpu.ONEDNN_ENV] = onednn
        env.pop(cpu.AUTO_ENV, None)  # an explicit value: the child must not choose again
    return env


def run_child(args: list[str], *, timeout: float, onednn: str | None = None,
              what: str = "the measurement") -> dict[str, Any]:
    """Run `python -m fer_core.probe ARGS` and return the JSON object it printed last.

    ProbeError when the child is killed by a signal (a native crash), runs past `timeout`
    seconds, exits non-zero or prints no result; its message names the signal or the last
    line of the child's error output.
    """
    command = [sys.executable, "-m", "fer_core.probe", *args]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    env=_child_env(onednn), cwd=REPO_ROOT, start_new_session=True)
        except OSError as exc:
            raise ProbeError(f"{what} could not start a process: {exc}") from None
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise ProbeError(f"{what} did not finish within {timeout:g} s and was stopped") \
                from None
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    if rc < 0:
        name = signal.Signals(-rc).name if -rc in signal.valid_signals() else f"signal {-rc}"
        raise ProbeError(f"{what} crashed ({name}) in its own process; the app is unaffected")
    result = _last_json(stdout)
    if result is None or rc != 0:
        detail = (result or {}).get("error") or _last_line(stderr) or f"exit status {rc}"
        raise ProbeError(f"{what} failed: {detail}")
    return result


def _last_json(text: str) -> dict[str, Any] | None:
    for line in reversed(text.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        return value if isinstance(value, dict) else None
    return None


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:500] if lines else ""


# ---------------------------------------------------------------- speed of one config


class SpeedEstimate(NamedTuple):
    """What "Estimate time" measured: the training rate, and what a job spends before it."""

    images_per_second: float
    # The child's whole run less its timed steps: a new process, TensorFlow's import, the
    # model's build, and the warm-up steps that trace and compile it, as a job pays them
    # (a job also loads its data, which this leaves out).
    startup_seconds: float


def measure_speed(config: TrainConfig, *, steps: int = 5,
                  timeout: float = SPEED_TIMEOUT_S) -> SpeedEstimate:
    """Training images per second of `config` on this machine, and its start-up, timed in a
    child process.

    ConfigError for a config the engine refuses; ProbeError (a RuntimeError) when the
    child crashes, times out or fails.
    """
    started = time.monotonic()
    result = run_child(["speed", config.to_json(), "--steps", str(int(steps))], timeout=timeout,
                       what="timing this configuration")
    wall = time.monotonic() - started
    if "config_error" in result:
        field, problem = result["config_error"]
        raise ConfigError(field, problem)
    rate = float(result["images_per_second"])
    timed = int(steps) * config.batch_size / rate if rate > 0 else 0.0
    return SpeedEstimate(rate, max(0.0, wall - timed))


# ---------------------------------------------------------------- oneDNN: safe and faster?


def probe_onednn(*, timeout: float = PROBE_TIMEOUT_S, write: bool = True) -> dict[str, Any]:
    """Probe oneDNN off and on in child processes; returns (and caches) the choice.

    {"enable", "reason", "seconds", "off": {...}, "on": {...}, signature fields}; each
    side has "ok", "error" (why it failed), "images_per_second" per preset, "seconds".
    """
    t0 = time.monotonic()
    sides = {"on": _probe_side("1", timeout)}
    # A crash with oneDNN decides it: no need to time the safe setting.
    sides["off"] = _probe_side("0", timeout) if sides["on"]["ok"] else {
        "ok": True, "error": None, "seconds": 0.0, "skipped": True}
    enable, reason = _decide(sides["off"], sides["on"])
    choice = {"version": cpu.CHOICE_VERSION, **cpu.cpu_signature(), "enable": enable,
              "reason": reason, "probed_at": time.time(),
              "seconds": round(time.monotonic() - t0, 1), **sides}
    if write:
        _write_choice(choice)
    return choice


def _probe_side(value: str, timeout: float) -> dict[str, Any]:
    t0 = time.monotonic()
    try:
        result = run_child(["onednn-child"], timeout=timeout, onednn=value,
                           what=f"the oneDNN={value} probe")
    except ProbeError as exc:
        return {"ok": False, "error": str(exc), "seconds": round(time.monotonic() - t0, 1)}
    return {"ok": True, "error": None, "seconds": round(time.monotonic() - t0, 1),
            "images_per_second": result.get("images_per_second", {}),
            "checks": result.get("checks", 0)}


def _decide(off: dict[str, Any], on: dict[str, Any]) -> tuple[bool, str]:
    """oneDNN only when its child survived every check and was MIN_SPEEDUP faster."""
    if not on["ok"]:
        return False, f"off: unsafe here ({on['error']})"
    if not off["ok"]:
        return False, f"off: the probe without oneDNN failed too ({off['error']})"
    ratios = [on["images_per_second"][k] / off["images_per_second"][k]
              for k in off["images_per_second"] if off["images_per_second"][k] > 0
              and on["images_per_second"].get(k, 0) > 0]
    if not ratios:
        return False, "off: no speed could be compared"
    speedup = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    if speedup < MIN_SPEEDUP:
        return False, f"off: oneDNN was not faster ({speedup:.2f}x) though it was safe"
    return True, f"on: safe, and {speedup:.2f}x faster training"


def _write_choice(choice: dict[str, Any]) -> None:
    path = cpu.choice_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(choice, indent=1), mode=0o600)


# ---------------------------------------------------------------- the children


def _crash_checks() -> int:
    """Train (one epoch) and predict every registered model (its default options, the
    quick preset's optimizer, the training pipeline with augmentation) on batches of each
    of CRASH_BATCHES sizes, in one dataset so that each model is traced once or twice."""
    import functools

    import keras
    import numpy as np

    from fer_core.config import config_from_preset
    from fer_core.models import list_models
    from fer_core.pipeline import AugmentConfig, make_dataset
    from fer_core.train import build_model

    rng = np.random.default_rng(0)
    n = max(CRASH_BATCHES)
    images = rng.integers(0, 256, size=(n, 48, 48), dtype=np.uint8)
    labels = rng.integers(0, 7, size=n)
    parts = [make_dataset(images[:size], labels[:size], batch_size=size, training=True,
                          augment=AugmentConfig(), seed=size) for size in CRASH_BATCHES]
    batches = functools.reduce(lambda a, b: a.concatenate(b), parts)
    checks = 0
    for info in list_models():
        model = build_model(config_from_preset("quick", model=info.name))
        model.fit(batches, epochs=1, verbose=0)
        model.predict(batches.map(lambda x, *_: x), verbose=0)
        checks += 2 * len(CRASH_BATCHES)
        keras.backend.clear_session()
    return checks


def _onednn_child() -> dict[str, Any]:
    from fer_core.config import config_from_preset
    from fer_core.train import measure_throughput

    checks = _crash_checks()
    speeds = {name: measure_throughput(config_from_preset(name), steps=4, warmup=2, repeats=3)
              for name in SPEED_PRESETS}
    return {"checks": checks, "images_per_second": speeds,
            "onednn": os.environ.get(cpu.ONEDNN_ENV)}


def _speed_child(config_json: str, steps: int) -> dict[str, Any]:
    from fer_core.train import check_config, measure_throughput

    try:
        config = TrainConfig.from_json(config_json)
        check_config(config)
    except ConfigError as exc:
        return {"config_error": [exc.field, exc.problem]}
    return {"images_per_second": measure_throughput(config, steps=steps)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fer_core.probe", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="task", required=True)
    speed = sub.add_parser("speed", help="training images/s of a config (JSON)")
    speed.add_argument("config_json")
    speed.add_argument("--steps", type=int, default=5)
    sub.add_parser("onednn-child", help="crash checks and timings under the current setting")
    args = parser.parse_args(argv)
    try:
        result = (_speed_child(args.config_json, args.steps) if args.task == "speed"
                  else _onednn_child())
    except Exception as exc:  # noqa: BLE001 - reported to the parent as its message
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return 1
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

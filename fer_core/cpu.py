"""TensorFlow process settings that must be in place before TensorFlow is imported.

oneDNN kernels (`TF_ENABLE_ONEDNN_OPTS`) are chosen per CPU by measurement, not forced: on
the project's 2-core AVX2 machines they trained about 1.5x faster, but on an AVX-512 CPU
they aborted or segfaulted training `mini_xception` whenever a batch had an odd size
(issue 18: `train --preset quick` on a 101-face split crashed 4 of 4 times, 0 of 4 without
them). So the setting is off until `fer_core.probe.probe_onednn()` (`python -m fer_core cpu
--probe`) has shown, in child processes, that on this CPU model, with these CPU flags and
this TensorFlow version, they are both safe (every registered model trains and predicts odd,
even and size-1 batches) and faster; its result is cached in `<cache>/cpu/`.

A value the user set in the environment always wins. A value chosen here is marked with
`FER_ONEDNN_AUTO=1`, so child processes (training jobs) choose again from the cache and pick
up a probe that ran after their parent started. XLA and bfloat16 were slower, so neither is
enabled. This module imports neither TensorFlow nor NumPy.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from fer_core.paths import cpu_probe_dir

ONEDNN_ENV = "TF_ENABLE_ONEDNN_OPTS"
AUTO_ENV = "FER_ONEDNN_AUTO"  # "1": ONEDNN_ENV was chosen by this module, not by the user
CHOICE_VERSION = 1


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (empty where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    fields: dict[str, str] = {}
    for line in text.split("\n\n", 1)[0].splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def cpu_signature() -> dict[str, str]:
    """What a oneDNN measurement holds for: CPU model and flags, machine, TensorFlow version."""
    info = _cpuinfo()
    try:
        tf_version = metadata.version("tensorflow")
    except metadata.PackageNotFoundError:
        tf_version = "none"
    flags = " ".join(sorted(info.get("flags", info.get("Features", "")).split()))
    return {"cpu": info.get("model name") or platform.processor() or "unknown",
            "flags": hashlib.sha256(flags.encode()).hexdigest()[:16],
            "machine": platform.machine(), "tensorflow": tf_version}


def choice_path(signature: dict[str, str] | None = None) -> Path:
    """`<cache>/cpu/onednn-<hash of the signature>.json`."""
    signature = signature or cpu_signature()
    key = hashlib.sha256(json.dumps(signature, sort_keys=True).encode()).hexdigest()[:16]
    return cpu_probe_dir() / f"onednn-{key}.json"


def read_choice() -> dict[str, Any] | None:
    """The cached probe result for this CPU and TensorFlow, or None (not probed, unreadable)."""
    try:
        choice = json.loads(choice_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(choice, dict) or choice.get("version") != CHOICE_VERSION:
        return None
    return choice


def onednn_state() -> tuple[bool, str]:
    """(oneDNN on in this process, why) for the CLI and the Train page."""
    on = os.environ.get(ONEDNN_ENV, "0").strip().lower() in ("1", "true", "yes", "on")
    if os.environ.get(AUTO_ENV) != "1":
        return on, f"{ONEDNN_ENV}={os.environ.get(ONEDNN_ENV)} set in the environment"
    choice = read_choice()
    if choice is None:
        return on, "off by default: not probed on this CPU yet (python -m fer_core cpu --probe)"
    return on, f"chosen by the probe of {_time_text(choice.get('probed_at'))}: {choice.get('reason')}"


def _time_text(stamp: Any) -> str:
    try:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(float(stamp)))
    except (TypeError, ValueError, OverflowError):
        return "an unknown time"


def apply_onednn_choice() -> None:
    """Set ONEDNN_ENV from the cached probe (off without one), unless the user set it."""
    if ONEDNN_ENV in os.environ and os.environ.get(AUTO_ENV) != "1":
        return
    choice = read_choice()
    os.environ[ONEDNN_ENV] = "1" if choice is not None and choice.get("enable") is True else "0"
    os.environ[AUTO_ENV] = "1"


apply_onednn_choice()
# TensorFlow's C++ logs (the CUDA probe's "E0000 ... failed call to cuInit" on every CPU
# machine, oneDNN notices) read as errors and say nothing a Python exception would not:
# fatal only, unless the user sets the level (the CLI's --verbose sets 0).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

# aiortc's SRTP binding (pylibsrtp, used by the Live page's WebRTC stream) segfaults the whole
# process when it is first loaded after TensorFlow (`import tensorflow; import aiortc` crashes:
# TensorFlow's global symbols clash with the binding's bundled libsrtp/OpenSSL). Loading it
# first, here, keeps a Streamlit server alive when Live is opened after a page that used TF.
try:
    import pylibsrtp  # noqa: F401
except ImportError:  # WebRTC extras not installed: nothing to protect
    pass

"""`python -m fer_core cpu`: whether TensorFlow's oneDNN kernels are on here, and why;
`--probe` measures it (crash checks and timings in child processes, a few minutes) and
caches the choice for this CPU and TensorFlow version."""

from __future__ import annotations

import argparse
import json

from fer_core import cpu


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--probe", action="store_true",
                        help="run the oneDNN probe now and cache its choice")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds each probe process may take (default 900)")
    parser.add_argument("--json", action="store_true", help="print the probe's result as JSON")


def run(args: argparse.Namespace) -> int:
    if args.probe:
        from fer_core.probe import probe_onednn

        print("probing oneDNN off and on in child processes (a few minutes)…", flush=True)
        choice = probe_onednn(timeout=args.timeout)
        if args.json:
            print(json.dumps(choice, indent=1))
        else:
            for side in ("on", "off"):
                print(f"  oneDNN {side}: {_side_text(choice[side])}")
            print(f"choice: {choice['reason']} (probe took {choice['seconds']:.0f} s; "
                  f"cached in {cpu.choice_path()})")
        return 0
    on, why = cpu.onednn_state()
    print(f"oneDNN {'on' if on else 'off'} in this process: {why}")
    choice = cpu.read_choice()
    if args.json and choice is not None:
        print(json.dumps(choice, indent=1))
    return 0


def _side_text(side: dict) -> str:
    if side.get("skipped"):
        return "not needed"
    if not side["ok"]:
        return side["error"]
    speeds = ", ".join(f"{k} {v:.0f} images/s" for k, v in side["images_per_second"].items())
    return f"{side.get('checks', 0)} crash checks passed; {speeds} ({side['seconds']:.0f} s)"

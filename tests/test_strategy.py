"""Distribution strategies on CPU: MirroredStrategy over two logical CPUs trains a run, and
TF_CONFIG selects MultiWorkerMirroredStrategy (a one-worker cluster). Each runs in its own
process, because logical devices and the multi-worker runtime must be set up before
TensorFlow initialises."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SCRIPT = """
import json, sys
import fer_core
import tensorflow as tf
if sys.argv[2] == "mirrored":
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
from fer_core.config import TrainConfig
from fer_core.data.demo import make_demo
from fer_core.models import load_model
from fer_core.runs import read_events
from fer_core.train import choose_strategy, describe_strategy, train
strategy = choose_strategy(sys.argv[2])
config = TrainConfig(model="mini_xception", model_kwargs={"width": 4}, epochs=2, batch_size=32,
                     augment=None, early_stop_patience=0, schedule="cosine")
info = train(config, runs_dir=sys.argv[1], dataset=make_demo(200, seed=2), strategy=strategy)
model = load_model(info.best_model_path)
print(json.dumps({"strategy": describe_strategy(strategy), "state": info.state,
                  "error": info.error, "epoch": info.epoch,
                  "replicas": read_events(info, kinds=("started",))[0]["replicas"],
                  "outputs": list(model.output_shape)}))
"""


def run_script(tmp_path: Path, mode: str, env_extra: dict[str, str] | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env.update(PYTHONPATH=str(REPO), **(env_extra or {}))
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path), mode], check=False,
                          capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_mirrored_over_two_logical_cpus(tmp_path: Path) -> None:
    result = run_script(tmp_path, "mirrored")
    assert result["strategy"].startswith("MirroredStrategy (2 replica")
    assert result["replicas"] == 2
    assert result["state"] == "finished" and result["epoch"] == 2, result["error"]
    assert result["outputs"] == [None, 7]


def test_tf_config_selects_multi_worker(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        port = sock.getsockname()[1]
    tf_config = {"cluster": {"worker": [f"localhost:{port}"]}, "task": {"type": "worker", "index": 0}}
    result = run_script(tmp_path, "auto", {"TF_CONFIG": json.dumps(tf_config)})
    assert result["strategy"].startswith("MultiWorkerMirroredStrategy (1 replica")
    assert result["state"] == "finished" and result["epoch"] == 2, result["error"]

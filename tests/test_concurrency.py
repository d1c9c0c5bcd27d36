"""Concurrency end to end: while a run trains, its weights are evaluated and used for inference
and the runs are polled (fer_core.train, evaluate, infer, jobs and catalog together)."""

from __future__ import annotations

import json
import threading

import numpy as np

import fer_core  # noqa: F401  (CPU flags before TensorFlow loads)
from fer_core import catalog, runs
from tiny_run import tiny_config

def test_evaluation_and_inference_while_a_job_trains(fer_dirs, small_demo) -> None:
    """Concurrency: while a run trains (here in a thread of this process, sharing
    TensorFlow, which is harsher than a separate job process), its best weights are evaluated
    and used for inference over and over, and the runs list and job status are polled. Every
    read succeeds, the run finishes normally, and its files are whole: every event parses,
    the history has each epoch once, the config is unchanged, the evaluations sit in eval/."""
    from fer_core import evaluate as ev
    from fer_core import jobs
    from fer_core.infer import Classifier
    from fer_core.models import load_model
    from fer_core.train import train

    root = fer_dirs.runs  # (evaluate_cached finds runs by $FER_RUNS_DIR)
    config = tiny_config(name="busy", epochs=4)
    outcome: dict[str, object] = {}
    started = threading.Event()

    def on_event(event: dict) -> None:
        if event["kind"] == "epoch":
            started.set()

    def trainer() -> None:
        try:
            outcome["run"] = train(config, runs_dir=root, dataset=small_demo,
                                   on_event=on_event)
        except BaseException as exc:  # noqa: BLE001  (reported by the main thread)
            outcome["error"] = exc
        finally:
            started.set()

    thread = threading.Thread(target=trainer)
    thread.start()
    assert started.wait(300)
    [run] = runs.list_runs(root)
    images, labels = small_demo.split("PublicTest")
    evaluations = 0
    while thread.is_alive() or evaluations < 2:
        result = ev.evaluate_cached(run.id, images, labels, split="PublicTest")
        assert result.confusion.sum() == len(labels)
        probs = Classifier(load_model(catalog.resolve(run.id, root).path)).predict(
            images[:5])
        assert probs.shape == (5, 7) and np.isfinite(probs).all()
        status = jobs.job_status(run.id, root)
        assert status.run.readable and status.run.state in ("running", "finished")
        evaluations += 1
    thread.join()
    assert "error" not in outcome, outcome.get("error")
    final = runs.get_run(run.id, root)
    assert final.state == "finished" and final.config == config
    assert [r["epoch"] for r in runs.read_history(final)] == [1, 2, 3, 4]
    lines = (final.dir / "events.jsonl").read_text().splitlines()
    assert [json.loads(line)["kind"] for line in lines][-1] == "finished"
    assert sorted(p.name for p in (final.dir / "eval").iterdir()) == ["PublicTest.json",
                                                                       "PublicTest.npz"]
    # After training, the cached evaluation is that of the final best weights.
    again = ev.evaluate_cached(run.id, images, labels, split="PublicTest")
    direct = ev.evaluate_model(load_model(final.best_model_path), images, labels)
    np.testing.assert_array_equal(again.confusion, direct.confusion)
    assert evaluations >= 2


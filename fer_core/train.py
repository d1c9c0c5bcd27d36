"""Training: a TrainConfig and a dataset in, a finished (or stopped, or failed) run folder out.

`train(config)` validates everything, loads the data and builds the model before it makes
the run folder, then runs Keras `fit` with the callbacks the 2018 FER posts used and more:
a learning-rate schedule (ReduceLROnPlateau, cosine with warm-up, or none), EarlyStopping
(restoring the best weights), best/last checkpoints in the native `.keras` format (written
atomically; last keeps the optimizer state), TensorBoard logs, a NaN guard that ends the
run as failed with the reason, and a progress writer that appends events to the run folder
and stops gracefully at the end of a batch when the run's STOP file appears.

`train_run(run)` trains a run folder that already exists (a background job's, made by
`fer_core.jobs`), `resume(run)` continues a stopped, failed or killed run from
`weights/last.keras` at the right epoch with its optimizer state and LR schedule.
With several GPUs the same code trains under MirroredStrategy, with `TF_CONFIG` set under
MultiWorkerMirroredStrategy (`choose_strategy`).
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fer_core.cpu  # noqa: F401  (TF flags before TensorFlow loads)
import keras
import numpy as np
import tensorflow as tf

from fer_core import runs
from fer_core.config import NO_AUGMENT, AugmentConfig, ConfigError, TrainConfig
from fer_core.data import DEMO, FerDataset, load_dataset
from fer_core.files import atomic_path
from fer_core.labels import IMG_SIZE, PUBLIC_TEST, TRAINING
from fer_core.models import create_model, list_models, load_model
from fer_core.pipeline import balanced_class_weights, make_dataset
from fer_core.quality import overlap_mask
from fer_core.teacher import read_teacher

EventHook = Callable[[dict[str, Any]], None]
BATCH_EVENT_SECONDS = 1.0  # at most one "batch" progress event per this many seconds
# Batches timed after an epoch's first one (which carries tracing and compilation, seconds on
# a CPU) before a step-time ETA is given: an ETA from the first batch alone read 9 min for a
# 20 s run (issue 12).
ETA_MIN_TIMED_BATCHES = 3


# ---------------------------------------------------------------- checks and data


def check_config(config: TrainConfig) -> None:
    """Checks that need the model registry or the file system; ConfigError."""
    infos = {info.name: info for info in list_models()}
    if config.model not in infos:
        raise ConfigError("model", f"unknown model {config.model!r}; registered: {', '.join(infos)}")
    unknown = sorted(set(config.model_kwargs) - set(infos[config.model].defaults))
    if unknown:
        known = ", ".join(sorted(infos[config.model].defaults)) or "none"
        raise ConfigError("model_kwargs", f"{config.model} has no option(s) "
                          f"{', '.join(unknown)}; its options: {known}")
    if config.data.lower() != DEMO and not Path(config.data).expanduser().exists():
        raise ConfigError("data", f"no such file or folder: {config.data}")


def augment_config(config: TrainConfig) -> AugmentConfig:
    """The pipeline's AugmentConfig for `config.augment` (None -> no augmentation)."""
    return NO_AUGMENT if config.augment is None else AugmentConfig.from_dict(config.augment)


@dataclass(frozen=True)
class TrainData:
    """The arrays one run trains and validates on, and where the validation set came from."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    val_name: str  # "PublicTest" or "fraction of Training"
    dropped_overlap: int = 0  # Training faces left out as also in a test split
    soft_train: np.ndarray | None = None  # the teacher's probabilities of x_train (distillation)


def split_data(dataset: FerDataset, config: TrainConfig) -> TrainData:
    """Training split for training; PublicTest for validation when present (and asked for),
    else a seeded `val_fraction` of Training."""
    if TRAINING not in dataset.splits():
        raise ConfigError("data", f"{dataset.source} has no {TRAINING} rows "
                          f"(splits present: {', '.join(dataset.splits()) or 'none'})")
    x, y = dataset.split(TRAINING)
    try:  # the teacher's rows are the whole Training split's, in its order
        soft = read_teacher(config.teacher, x) if config.teacher else None
    except ValueError as exc:
        raise ConfigError("teacher", str(exc)) from None
    dropped = 0
    if config.drop_test_overlap:
        tests = [dataset.split(name)[0] for name in dataset.splits() if name != TRAINING]
        if tests:
            leaked = overlap_mask(x, np.concatenate(tests))
            dropped = int(leaked.sum())
            x, y = x[~leaked], y[~leaked]
            soft = None if soft is None else soft[~leaked]
    if config.val_source == "publictest" and PUBLIC_TEST in dataset.splits():
        xv, yv = dataset.split(PUBLIC_TEST)
        return TrainData(x, y, xv, yv, PUBLIC_TEST, dropped, soft)
    order = np.random.default_rng(config.seed).permutation(len(y))
    n_val = max(1, round(len(y) * config.val_fraction))
    if len(y) - n_val < 1:
        raise ConfigError("val_fraction", f"leaves no training images out of {len(y)}")
    val, tr = np.sort(order[:n_val]), np.sort(order[n_val:])
    return TrainData(x[tr], y[tr], x[val], y[val], f"{config.val_fraction:g} of {TRAINING}",
                     dropped, None if soft is None else soft[tr])


# ---------------------------------------------------------------- devices


def configure_threads(threads: int | None) -> None:
    """Limit TensorFlow's CPU threads (None or 0: TensorFlow's default, all cores)."""
    if not threads:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
        tf.config.threading.set_inter_op_parallelism_threads(min(2, int(threads)))
    except RuntimeError as exc:
        raise RuntimeError(f"threads must be set before TensorFlow starts running: {exc}") from None


def choose_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """`auto`: MultiWorkerMirrored when TF_CONFIG is set, Mirrored with several GPUs, else
    the default (one device). `mirrored` forces MirroredStrategy over all GPUs, or over all
    logical CPUs when there is no GPU (how the tests exercise this path). `default`: one device."""
    name = (name or "auto").lower()
    if name not in ("auto", "default", "mirrored", "multiworker"):
        raise ValueError(f"strategy must be auto, default, mirrored or multiworker, got {name!r}")
    if name == "multiworker" or (name == "auto" and os.environ.get("TF_CONFIG")):
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored":
        devices = gpus or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if name == "auto" and len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def _is_chief(strategy: tf.distribute.Strategy) -> bool:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


# ---------------------------------------------------------------- model and optimizer


def make_optimizer(config: TrainConfig) -> keras.optimizers.Optimizer:
    decay = config.weight_decay or None
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(config.learning_rate, momentum=config.momentum,
                                    nesterov=True, weight_decay=decay)
    if config.optimizer == "adamw":
        return keras.optimizers.AdamW(config.learning_rate, weight_decay=config.weight_decay)
    return keras.optimizers.Adam(config.learning_rate, weight_decay=decay)


def compile_model(model: keras.Model, config: TrainConfig,
                  optimizer: keras.optimizers.Optimizer | None = None) -> keras.Model:
    """Cross-entropy on the pipeline's one-hot labels (label smoothing, mixup both work).

    Keras's `loss` adds the models' L2 kernel penalties (~3 on top of ~1.9 for the shipped
    recipe); `data_loss` is the cross-entropy alone, the number papers and TensorBoard users
    compare, so the history keeps both and the page shows the data loss first."""
    smoothing = config.label_smoothing
    model.compile(
        optimizer=optimizer or make_optimizer(config),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=smoothing),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy"),
                 keras.metrics.CategoricalCrossentropy(name="data_loss",
                                                       label_smoothing=smoothing)],
    )
    return model


def build_model(config: TrainConfig) -> keras.Model:
    """The registered model of `config`, compiled; bad options raise ConfigError."""
    keras.utils.set_random_seed(config.seed)
    try:
        model = create_model(config.model, **config.model_kwargs)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError("model_kwargs", f"{config.model}: {exc}") from None
    except tf.errors.ResourceExhaustedError:
        raise ConfigError("model_kwargs", f"{config.model} with {config.model_kwargs} does not "
                          "fit in memory; use smaller widths") from None
    return compile_model(model, config)


def current_lr(model: keras.Model) -> float:
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


# ---------------------------------------------------------------- callbacks


def _improved(monitor: str, value: float, best: float | None) -> bool:
    if value is None or not math.isfinite(value):
        return False
    if best is None:
        return True
    return value > best if monitor == "val_accuracy" else value < best


def _best_of(monitor: str, rows: list[dict[str, float]]) -> tuple[float | None, int]:
    """(best monitor value, epochs since it) over history rows."""
    best, best_i = None, -1
    for i, row in enumerate(rows):
        if _improved(monitor, row.get(monitor), best):
            best, best_i = row[monitor], i
    return best, (len(rows) - 1 - best_i if best_i >= 0 else 0)


class _ResumeFromHistory:
    """Mixin for a monitoring callback that, on resume, starts from the best value and wait
    of the history instead of from scratch."""

    def __init__(self, best: float | None, wait: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._initial = (best, wait)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self._initial[0] is not None:
            self.best, self.wait = self._initial


class _ResumablePlateau(_ResumeFromHistory, keras.callbacks.ReduceLROnPlateau):
    """ReduceLROnPlateau that continues a resumed run's best value and wait."""


class _ResumableEarlyStopping(_ResumeFromHistory, keras.callbacks.EarlyStopping):
    """EarlyStopping that continues a resumed run's best value and wait."""


class CosineSchedule(keras.callbacks.Callback):
    """Per-batch cosine decay from `peak` to `floor`, after a linear warm-up; the step is
    derived from the epoch index, so a resumed run continues on the same curve."""

    def __init__(self, peak: float, floor: float, steps_per_epoch: int, epochs: int,
                 warmup_epochs: int) -> None:
        super().__init__()
        self.peak, self.floor, self.steps = peak, floor, steps_per_epoch
        self.total = max(1, epochs * steps_per_epoch)
        self.warmup = warmup_epochs * steps_per_epoch
        self.epoch = 0

    def lr_at(self, step: int) -> float:
        if step < self.warmup:
            return self.peak * (step + 1) / self.warmup
        progress = min(1.0, (step - self.warmup) / max(1, self.total - self.warmup - 1))
        return self.floor + 0.5 * (self.peak - self.floor) * (1 + math.cos(math.pi * progress))

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        self.model.optimizer.learning_rate = self.lr_at(self.epoch * self.steps + batch)


class NanGuard(keras.callbacks.TerminateOnNaN):
    """TerminateOnNaN that remembers why, so the run can end as failed with the reason."""

    def __init__(self) -> None:
        super().__init__()
        self.reason: str | None = None
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.reason = (f"loss became {float(loss)} at epoch {self.epoch + 1}, batch {batch + 1} "
                           f"(learning rate {current_lr(self.model):g}); training stopped")
            self.model.stop_training = True


class RunWriter(keras.callbacks.Callback):
    """Writes the run folder while training: progress events, history, status, checkpoints.

    Also the graceful stop: the STOP file is checked at every batch end and stops training
    after that batch. An epoch cut short by a stop (or NaN) is not recorded as completed:
    last.keras and history keep the previous epoch, so resume redoes it; its weights may
    still become best.keras when validation improved (or when there is no best yet).
    """

    def __init__(self, run_dir: Path, config: TrainConfig, *, steps_per_epoch: int,
                 initial_epoch: int, history: list[dict[str, float]], elapsed_before: float,
                 nan_guard: NanGuard, save_dir: Path, on_event: EventHook | None) -> None:
        super().__init__()
        self.run_dir, self.config, self.steps = run_dir, config, steps_per_epoch
        self.initial_epoch, self.history = initial_epoch, history
        self.elapsed_before, self.nan_guard, self.on_event = elapsed_before, nan_guard, on_event
        self.weights = save_dir
        self.monitor = config.early_stop_monitor
        self.best, _ = _best_of(self.monitor, history)
        self.best_epoch = next((int(r["epoch"]) for r in history if r.get(self.monitor) == self.best), 0)
        self.stop_requested = False
        self.partial_epoch = False
        self.epochs_done = initial_epoch
        self.epoch_seconds: list[float] = []
        self.t0 = self.epoch_t0 = time.monotonic()  # reset when fit starts
        self.first_batch_end: float | None = None  # this epoch's first batch, when it ended

    # -- helpers
    def emit(self, kind: str, **data: Any) -> None:
        event = runs.append_event(self.run_dir, kind, **data)
        if self.on_event is not None:
            self.on_event(event)

    def elapsed(self) -> float:
        return self.elapsed_before + time.monotonic() - self.t0

    def eta(self, epoch: int, batch_done: int) -> float | None:
        """Seconds left: from finished epochs' mean when there is one, else from the step time
        of the batches after the first; None until ETA_MIN_TIMED_BATCHES have been timed."""
        left_epochs = self.config.epochs - epoch - 1
        if self.epoch_seconds:
            per_epoch = statistics.mean(self.epoch_seconds)
            into = time.monotonic() - self.epoch_t0
            return max(0.0, per_epoch * (left_epochs + 1) - into)
        timed = batch_done - 1
        if self.first_batch_end is None or timed < min(ETA_MIN_TIMED_BATCHES, self.steps - 1):
            return None
        if timed == 0:  # a one-batch epoch: nothing but the first batch to go by
            return (time.monotonic() - self.epoch_t0) * left_epochs
        per_step = (time.monotonic() - self.first_batch_end) / timed
        return per_step * ((self.steps - batch_done) + left_epochs * self.steps)

    # -- Keras hooks
    def on_train_begin(self, logs=None):
        self.t0 = time.monotonic()
        self.last_batch_event = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_t0 = time.monotonic()
        self.first_batch_end = None
        if runs.stop_requested(self.run_dir):
            self.stop_requested = True
            self.model.stop_training = True

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        if runs.stop_requested(self.run_dir) and not self.stop_requested:
            self.stop_requested = True
            self.model.stop_training = True
        if self.model.stop_training and batch + 1 < self.steps:
            self.partial_epoch = True
        now = time.monotonic()
        if batch == 0:
            self.first_batch_end = now
        if batch == 0 or now - self.last_batch_event >= BATCH_EVENT_SECONDS or batch + 1 == self.steps:
            self.last_batch_event = now
            epoch = self.epochs_done
            self.emit("batch", epoch=epoch + 1, epochs=self.config.epochs, batch=batch + 1,
                      steps=self.steps, loss=_num(logs.get("loss")),
                      data_loss=_num(logs.get("data_loss")), accuracy=_num(logs.get("accuracy")),
                      lr=current_lr(self.model), elapsed=round(self.elapsed(), 2),
                      eta=_round(self.eta(epoch, batch + 1)))

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        seconds = time.monotonic() - self.epoch_t0
        value = _num(logs.get(self.monitor))
        failed = self.nan_guard.reason is not None
        improved = not failed and _improved(self.monitor, value, self.best)
        if improved or (self.partial_epoch and not failed and self.best is None
                        and not (self.weights / "best.keras").exists()):
            _save_atomic(self.model, self.weights / "best.keras", include_optimizer=False)
            if improved:
                self.best, self.best_epoch = value, epoch + 1
        if self.partial_epoch or failed:
            return
        self.epochs_done = epoch + 1
        self.epoch_seconds.append(seconds)
        _save_atomic(self.model, self.weights / "last.keras", include_optimizer=True)
        runs.write_json(self.weights / "last.json", {"epoch": epoch + 1, "time": time.time()})
        row = {"epoch": epoch + 1, "loss": _num(logs.get("loss")),
               "accuracy": _num(logs.get("accuracy")), "val_loss": _num(logs.get("val_loss")),
               "val_accuracy": _num(logs.get("val_accuracy")), "lr": current_lr(self.model),
               "seconds": round(seconds, 3), "data_loss": _num(logs.get("data_loss")),
               "val_data_loss": _num(logs.get("val_data_loss"))}
        self.history.append(row)
        runs.write_history(self.run_dir, self.history)
        eta = _round(max(0.0, statistics.mean(self.epoch_seconds) * (self.config.epochs - epoch - 1)))
        self.emit("epoch", **row, epochs=self.config.epochs, elapsed=round(self.elapsed(), 2),
                  eta=eta, improved=improved, best=self.best, best_epoch=self.best_epoch,
                  monitor=self.monitor)
        runs.update_status(self.run_dir, epoch=epoch + 1, best_value=self.best,
                           best_epoch=self.best_epoch, monitor=self.monitor,
                           elapsed=round(self.elapsed(), 2), eta=eta)


def _save_atomic(model: keras.Model, path: Path, *, include_optimizer: bool) -> None:
    """Save to a temporary `.keras` beside `path`, then rename over it (a full disk drops the
    half-written copy and keeps the old file)."""
    with atomic_path(path, suffix=".keras", unique=False) as tmp:
        if include_optimizer:
            model.save(tmp)
        else:
            # Keras 3 `save` always writes the optimizer; best.keras is for inference, so a
            # copy without it is made by saving a fresh uncompiled clone sharing the weights.
            clone = keras.models.clone_model(model)
            clone.set_weights(model.get_weights())
            clone.save(tmp)


def _num(value: Any) -> float | None:
    if value is None:
        return None
    return float(value)  # NaN/inf kept as is: the event records them


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


# ---------------------------------------------------------------- training


def train(
    config: TrainConfig,
    *,
    runs_dir: str | os.PathLike | None = None,
    dataset: FerDataset | None = None,
    strategy: tf.distribute.Strategy | str = "auto",
    verbose: int = 0,
    on_event: EventHook | None = None,
) -> runs.RunInfo:
    """Train `config` into a new run folder and return the run (finished, stopped or failed).

    Bad input (config, model options, data) raises before any folder exists. `dataset`
    replaces loading `config.data` (tests, the UI's already-loaded data).
    """
    check_config(config)
    dataset = dataset if dataset is not None else load_dataset(config.data)
    data = split_data(dataset, config)
    strategy = choose_strategy(strategy) if isinstance(strategy, str) else strategy
    with strategy.scope():
        model = build_model(config)
    if not _is_chief(strategy):  # non-chief workers keep their writes out of the runs folder
        runs_dir = tempfile.mkdtemp(prefix="fer-worker-")
    run = runs.create_run(config, runs_dir)
    return _run(run, config, data, model, strategy, initial_epoch=0, history=[],
                elapsed_before=0.0, verbose=verbose, on_event=on_event)


def train_run(
    run: str | os.PathLike | runs.RunInfo,
    *,
    runs_dir: str | os.PathLike | None = None,
    resume: bool = False,
    epochs: int | None = None,
    dataset: FerDataset | None = None,
    strategy: tf.distribute.Strategy | str = "auto",
    verbose: int = 0,
    on_event: EventHook | None = None,
) -> runs.RunInfo:
    """Train an existing run folder: a queued one (a background job's) from scratch, or with
    `resume=True` a stopped/failed/killed one from weights/last.keras. `epochs` raises the
    run's epoch count (e.g. to continue a finished run)."""
    info = runs.get_run(run, runs_dir)
    if info.config is None:
        raise runs.RunError(f"run {info.id!r} cannot be trained: {info.problem}")
    config = info.config if epochs is None else info.config.replace(epochs=epochs)
    initial_epoch, history = runs.resume_point(info.dir) if resume else (0, [])
    if resume:
        # A resume job's run is queued with the job's own pid (or none yet): that is us.
        if info.active and info.status.get("pid") not in (None, os.getpid()):
            raise runs.RunError(f"run {info.id!r} is still {info.state} (pid {info.status.get('pid')})")
        runs.check_resume(info, config.epochs)
    elif info.status.get("state") != "queued":
        raise runs.RunError(f"run {info.id!r} is {info.state}, not queued; resume it instead")
    if epochs is not None:
        runs.write_json(info.dir / "config.json", config.to_dict())
    if info.status.get("state") != "queued":  # a direct resume: stop requests before now are old
        runs.update_status(info.dir, queued_at=time.time())
    try:
        check_config(config)
        dataset = dataset if dataset is not None else load_dataset(config.data)
        data = split_data(dataset, config)
        strategy = choose_strategy(strategy) if isinstance(strategy, str) else strategy
        if initial_epoch:
            with strategy.scope():
                model = load_model(info.dir / "weights" / "last.keras", compile=True)
        else:
            with strategy.scope():
                model = build_model(config)
    except Exception as exc:
        _fail(info.dir, exc)
        raise
    elapsed = float(info.status.get("elapsed") or 0.0) if resume else 0.0
    return _run(info, config, data, model, strategy, initial_epoch=initial_epoch,
                history=history, elapsed_before=elapsed, verbose=verbose, on_event=on_event)


def resume(run: str | os.PathLike | runs.RunInfo, **kwargs: Any) -> runs.RunInfo:
    """Continue a stopped, failed or killed run from its last checkpoint (see `train_run`)."""
    return train_run(run, resume=True, **kwargs)


def _fail(run_dir: Path, exc: BaseException) -> None:
    """Record the failure; when even that cannot be written (a full disk), the original
    error still propagates, and readers see the dead process as an interrupted run."""
    error = f"{type(exc).__name__}: {exc}"
    try:
        runs.update_status(run_dir, state="failed", error=error, finished_at=time.time())
        runs.append_event(run_dir, "failed", error=error, traceback=traceback.format_exc())
    except OSError as write_error:
        print(f"could not record the failure in {run_dir}: {write_error}", file=sys.stderr)


def _run(run: runs.RunInfo, config: TrainConfig, data: TrainData, model: keras.Model,
         strategy: tf.distribute.Strategy, *, initial_epoch: int,
         history: list[dict[str, float]], elapsed_before: float, verbose: int,
         on_event: EventHook | None) -> runs.RunInfo:
    run_dir = run.dir
    # A stop requested while the run was queued (the job still starting) stands; older ones
    # (left by a killed run) do not.
    runs.clear_stop(run_dir, older_than=runs.get_run(run_dir).status.get("queued_at"))
    runs.update_status(run_dir, state="running", error=None, pid=os.getpid(),
                       pid_start=runs.process_start_token(os.getpid()), started_at=time.time(),
                       finished_at=None, epoch=initial_epoch, epochs=config.epochs)
    try:
        keras.utils.set_random_seed(config.seed + initial_epoch)
        weights = None
        if config.class_weights:
            weights = balanced_class_weights(data.y_train)
        train_ds = make_dataset(data.x_train, data.y_train, batch_size=config.batch_size,
                                training=True, augment=augment_config(config),
                                seed=config.seed + initial_epoch, class_weights=weights,
                                mixup_alpha=config.mixup_alpha, soft_labels=data.soft_train,
                                soft_weight=config.distill_weight)
        val_ds = make_dataset(data.x_val, data.y_val, batch_size=max(config.batch_size, 256),
                              training=False)
        steps = math.ceil(len(data.y_train) / config.batch_size)
        nan_guard = NanGuard()
        monitor = config.early_stop_monitor
        best, wait = _best_of(monitor, history)
        callbacks: list[keras.callbacks.Callback] = [nan_guard]
        if config.schedule == "cosine":
            callbacks.append(CosineSchedule(config.learning_rate, config.min_lr, steps,
                                            config.epochs, config.warmup_epochs))
        elif config.schedule == "plateau":
            callbacks.append(_ResumablePlateau(
                best, wait, monitor=monitor, factor=config.plateau_factor,
                patience=config.plateau_patience, min_lr=config.min_lr))
        if config.early_stop_patience:
            callbacks.append(_ResumableEarlyStopping(
                best, wait, monitor=monitor, patience=config.early_stop_patience,
                restore_best_weights=True))
        writer = RunWriter(run_dir, config, steps_per_epoch=steps, initial_epoch=initial_epoch,
                           history=history, elapsed_before=elapsed_before, nan_guard=nan_guard,
                           save_dir=run_dir / "weights", on_event=on_event)
        callbacks.append(writer)
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(run_dir / "logs"),
                                                     write_graph=False, profile_batch=0))
        writer.emit("resumed" if initial_epoch else "started", run_id=run.id, epoch=initial_epoch,
                    epochs=config.epochs, steps_per_epoch=steps, n_train=len(data.y_train),
                    n_val=len(data.y_val), val_split=data.val_name,
                    dropped_test_overlap=data.dropped_overlap, model=config.model,
                    params=int(model.count_params()), replicas=strategy.num_replicas_in_sync,
                    strategy=describe_strategy(strategy),
                    lr=current_lr(model))
        if initial_epoch < config.epochs and not runs.stop_requested(run_dir):
            model.fit(train_ds, validation_data=val_ds, epochs=config.epochs,
                      initial_epoch=initial_epoch, callbacks=callbacks, verbose=verbose,
                      shuffle=False)  # the pipeline shuffles
    except KeyboardInterrupt:
        _finish(run_dir, "stopped", "interrupted (Ctrl-C)", None)
        raise
    except Exception as exc:
        _fail(run_dir, exc)
        raise
    early = any(getattr(c, "stopped_epoch", 0) for c in callbacks)
    if nan_guard.reason:
        _finish(run_dir, "failed", nan_guard.reason, writer)
    elif writer.stop_requested or runs.stop_requested(run_dir):
        _finish(run_dir, "stopped", None, writer)
    else:
        _finish(run_dir, "finished", None, writer, early_stopped=bool(early))
    return runs.get_run(run_dir)


def _finish(run_dir: Path, state: str, error: str | None, writer: RunWriter | None,
            **extra: Any) -> None:
    runs.clear_stop(run_dir)
    summary: dict[str, Any] = {"error": error, **extra}
    if writer is not None:
        summary.update(epoch=writer.epochs_done, best_value=writer.best,
                       best_epoch=writer.best_epoch, elapsed=round(writer.elapsed(), 2))
    runs.update_status(run_dir, state=state, finished_at=time.time(), eta=0.0, **summary)
    runs.append_event(run_dir, state, **summary)


# ---------------------------------------------------------------- speed


def throughput_samples(config: TrainConfig, *, steps: int = 5, warmup: int = 2,
                       repeats: int = 1) -> list[float]:
    """Training images per second of `config`'s model, optimizer and augmentation here:
    `repeats` timings of `steps` optimizer steps each (random images), after `warmup`
    untimed steps that absorb tracing. The model is built and traced once."""
    model = build_model(config)
    n = config.batch_size * (steps * repeats + warmup)
    rng = np.random.default_rng(config.seed)
    images = rng.integers(0, 256, size=(n, IMG_SIZE, IMG_SIZE), dtype=np.uint8)
    labels = rng.integers(0, 7, size=n)
    iterator = iter(make_dataset(images, labels, batch_size=config.batch_size, training=True,
                                 augment=augment_config(config), seed=config.seed))
    for _ in range(warmup):
        model.train_on_batch(*next(iterator))
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):  # pipeline time included: augmentation is part of training
            model.train_on_batch(*next(iterator))
        rates.append(config.batch_size * steps / (time.perf_counter() - t0))
    keras.backend.clear_session()
    return rates


def measure_throughput(config: TrainConfig, *, steps: int = 5, warmup: int = 2,
                       repeats: int = 1) -> float:
    """Median training images per second (see `throughput_samples`)."""
    return statistics.median(throughput_samples(config, steps=steps, warmup=warmup,
                                                repeats=repeats))


def estimate_epoch_seconds(config: TrainConfig, n_train: int, *, steps: int = 5) -> float:
    """Seconds one epoch of `n_train` images will take, from a few timed steps (for the UI)."""
    check_config(config)
    return n_train / measure_throughput(config, steps=steps)


def describe_strategy(strategy: tf.distribute.Strategy) -> str:
    """Public name and replica count, e.g. "MirroredStrategy (2 replica(s))"."""
    name = type(strategy).__name__
    for public in ("MultiWorkerMirroredStrategy", "MirroredStrategy"):
        if isinstance(strategy, getattr(tf.distribute, public)):
            name = public
            break
    return f"{name} ({strategy.num_replicas_in_sync} replica(s))"


__all__ = [
    "CosineSchedule", "NanGuard", "RunWriter", "TrainData", "augment_config", "build_model",
    "check_config", "choose_strategy", "compile_model", "configure_threads", "current_lr",
    "describe_strategy", "estimate_epoch_seconds", "make_optimizer", "measure_throughput",
    "resume", "split_data", "throughput_samples", "train", "train_run",
]

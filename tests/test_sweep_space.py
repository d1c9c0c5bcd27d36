"""The sweep's search space (`fer_core.sweep_space`): the declared ranges, space files, the
page's table, and how sampled values become a TrainConfig; then what `fer_core.sweep` says of
a study's trials (an in-memory Optuna study). No TensorFlow, no training."""

from __future__ import annotations

import json

import pytest

from fer_core.config import PRESETS, TrainConfig, config_from_preset
from fer_core.sweep_space import (
    Dimension,
    SpaceError,
    apply,
    base_params,
    default_space,
    load_space,
    parse_space,
    searchable,
    space_from_table,
    space_table,
    suggest,
)

FERNET = {"width": 32, "convs": 2, "dropout": 0.4, "l2": 0.0}
MINI = {"width": 8, "l2": 0.01}


class LowTrial:
    """Optuna's trial interface, answering each range's low end (choices: the first)."""

    def __init__(self) -> None:
        self.asked: dict[str, tuple] = {}

    def suggest_float(self, name, low, high, *, log=False):
        self.asked[name] = ("float", low, high, log)
        return low

    def suggest_int(self, name, low, high, *, step=1, log=False):
        self.asked[name] = ("int", low, high, step, log)
        return low

    def suggest_categorical(self, name, choices):
        self.asked[name] = ("choice", tuple(choices))
        return choices[0]


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_declared_range_builds_a_valid_config_at_both_ends(preset):
    base = config_from_preset(preset)
    defaults = FERNET if base.model == "fernet" else MINI
    space = default_space(base, defaults)
    assert space.dimensions
    for end in (0, -1):
        values = {}
        for name, dim in space.dimensions.items():
            values[name] = dim.choices[end] if dim.kind == "choice" else (dim.low, dim.high)[end]
        config = apply(base, values)
        assert isinstance(config, TrainConfig)


def test_default_space_follows_the_base_config():
    sgd = config_from_preset("default")
    space = default_space(sgd, FERNET)
    lr = space.dimensions["learning_rate"]
    assert (lr.low, lr.high, lr.log) == pytest.approx((0.05 / 4, 0.05 * 4, True))
    adam = sgd.replace(optimizer="adam", learning_rate=1e-3, min_lr=1e-6)
    assert default_space(adam, FERNET).dimensions["learning_rate"].high == pytest.approx(4e-3)
    assert "model_kwargs.convs" not in space.dimensions  # declared, but not on by default
    assert "model_kwargs.width" in space.dimensions
    # mini_xception has no dropout option; no augmentation means no augmentation ranges
    mini = default_space(sgd.replace(model="mini_xception", model_kwargs={}, augment=None), MINI)
    assert "model_kwargs.dropout" not in mini.dimensions
    assert not [n for n in mini.dimensions if n.startswith("augment.")]


def test_space_file_entries(tmp_path):
    base = config_from_preset("default")
    path = tmp_path / "space.json"
    path.write_text(json.dumps({
        "learning_rate": True, "weight_decay": {"low": 1e-5, "high": 1e-3, "log": True},
        "model_kwargs.width": [16, 24], "epochs": 3, "augment.flip": False,
        "batch_size": {"low": 32, "high": 128, "step": 32}}))
    space = load_space(path, base, FERNET)
    assert set(space.dimensions) == {"learning_rate", "weight_decay", "model_kwargs.width",
                                     "batch_size"}
    assert space.fixed == {"epochs": 3, "augment.flip": False}
    assert space.dimensions["model_kwargs.width"] == Dimension("model_kwargs.width", "choice",
                                                               choices=(16, 24))
    assert space.dimensions["batch_size"].step == 32
    assert parse_space(space.to_json(), base, FERNET) == space  # a space writes itself back
    trial = LowTrial()
    values = {**space.fixed, **suggest(trial, space)}
    assert trial.asked["weight_decay"] == ("float", 1e-5, 1e-3, True)
    assert trial.asked["batch_size"] == ("int", 32, 128, 32, False)
    config = apply(base, values)
    assert (config.epochs, config.batch_size, config.model_kwargs["width"]) == (3, 32, 16)
    assert config.augment["flip"] is False and config.learning_rate == pytest.approx(0.0125)


@pytest.mark.parametrize("entries, message", [
    ({"x": True}, "'x' is not a hyperparameter a sweep can set"),
    ({"data": "demo"}, "not a hyperparameter"),
    ({"sweep": None}, "not a hyperparameter"),
    ({"epochs": 0}, "must be >= 1"),
    ({"momentum": True}, "momentum is used by SGD only"),
    ({"learning_rate": {"low": 0.1}}, 'needs "low" and "high"'),
    ({"learning_rate": {"low": 0.1, "high": 0.01}}, "must be below high"),
    ({"weight_decay": {"low": 0, "high": 1e-3, "log": True}}, "needs low > 0"),
    ({"label_smoothing": {"low": 0, "high": 1.5}}, "must be in [0, 1)"),
    ({"optimizer": {"low": 1, "high": 2}}, "give a list of choices"),
    ({"optimizer": ["adam", "rmsprop"]}, "must be one of"),
    ({"model_kwargs.width": []}, "empty list"),
    ({"model_kwargs.width": [16, 16]}, "repeated choices"),
    ({"epochs": {"low": 1, "high": 9, "step": 0.5}}, "step of an integer must be whole"),
    ({"mixup_alpha": {"low": 0, "high": 1, "step": 0.1}}, "integer ranges only"),
    ({"model_kwargs.width": {"low": 8, "high": 64, "log": "yes"}}, '"log" must be true or false'),
    ([1, 2], "expected a JSON object"),
    ({}, "expected a JSON object naming at least one"),
])
def test_bad_space_entries_are_named(entries, message):
    with pytest.raises(SpaceError) as err:
        parse_space(entries, TrainConfig(model="fernet"), FERNET, source="space.json")
    assert message in str(err.value) and "space.json" in str(err.value)


def test_a_condition_on_a_searched_field_counts_as_met():
    base = TrainConfig(model="fernet")  # adam: momentum alone would do nothing
    space = parse_space({"optimizer": ["sgd", "adam"], "momentum": True}, base, FERNET)
    assert set(space.dimensions) == {"optimizer", "momentum"}


def test_unreadable_space_files_are_named(tmp_path):
    with pytest.raises(SpaceError, match="cannot read"):
        load_space(tmp_path / "missing.json", TrainConfig(), MINI)
    bad = tmp_path / "bad.json"
    bad.write_text("{learning_rate: 1")
    with pytest.raises(SpaceError, match="is not a JSON file"):
        load_space(bad, TrainConfig(), MINI)


def test_base_params_are_the_base_configs_values_inside_the_ranges():
    base = config_from_preset("default")
    space = parse_space({"learning_rate": True, "model_kwargs.width": [16, 24],
                         "label_smoothing": True}, base, FERNET)
    # width 32 is not among the choices: left to the sampler
    assert base_params(base, space, FERNET) == {"learning_rate": 0.05, "label_smoothing": 0.1}


def test_table_round_trip_and_edits():
    base = config_from_preset("default")
    rows = space_table(base, FERNET)
    names = [r["parameter"] for r in rows]
    assert names == [n for n in searchable() if n in names] and "momentum" in names
    assert space_from_table(rows, base, FERNET) == default_space(base, FERNET)
    for row in rows:
        row["search"] = row["parameter"] in ("weight_decay", "optimizer", "model_kwargs.width")
        if row["parameter"] == "model_kwargs.width":
            row.update(low=float("nan"), high=float("nan"), choices="16, 32")
        if row["parameter"] == "weight_decay":
            row.update(low=1e-4, high=1e-3)
    space = space_from_table(rows, base, FERNET)
    assert space.dimensions["model_kwargs.width"].choices == (16, 32)
    assert space.dimensions["optimizer"].choices == ("adam", "sgd", "adamw")
    assert (space.dimensions["weight_decay"].low, space.dimensions["weight_decay"].high) == (1e-4, 1e-3)
    for row in rows:
        if row["parameter"] == "optimizer":
            row["choices"] = "adam, sgd"  # not JSON strings
    with pytest.raises(SpaceError, match="values separated by commas"):
        space_from_table(rows, base, FERNET)
    with pytest.raises(SpaceError, match="tick at least one"):
        space_from_table([{**r, "search": False} for r in rows], base, FERNET)


# ---------------------------------------------------------------- a study's results


def _study_with_trials():
    """An in-memory study: the baseline, a better trial, a pruned one and a failed one."""
    import optuna

    from fer_core import sweep

    sweep._quiet_optuna()
    study = optuna.create_study(direction="maximize")
    dist = {"learning_rate": optuna.distributions.FloatDistribution(1e-3, 1e-1, log=True)}
    for value, state, attrs, lr in [
            (0.50, "COMPLETE", {"baseline": True, "run_id": "r0", "epochs": 3}, 0.01),
            (0.56, "COMPLETE", {"run_id": "r1", "epochs": 3}, 0.03),
            (None, "PRUNED", {"run_id": "r2", "stopped": "pruned", "epochs": 1}, 0.09),
            (None, "FAIL", {"run_id": "r3"}, 0.002)]:
        trial = optuna.trial.create_trial(
            params={"learning_rate": lr}, distributions=dist, user_attrs=attrs,
            value=value, state=getattr(optuna.trial.TrialState, state),
            intermediate_values={1: 0.3} if state == "PRUNED" else {})
        study.add_trial(trial)
    return study


def test_summary_and_rows_say_what_a_sweep_found_and_cost():
    from fer_core import sweep

    study = _study_with_trials()
    summary = sweep.summarize(study)
    assert (summary["trials"], summary["complete"], summary["pruned"], summary["fail"]) == (4, 2, 1, 1)
    assert summary["best"]["trial"] == 1 and summary["best"]["run_id"] == "r1"
    assert summary["baseline"] == {"trial": 0, "state": "complete", "val_accuracy": 0.5,
                                   "run_id": "r0"}
    lines = sweep.summary_lines(summary)
    assert "2 complete, 1 pruned or stopped, 1 failed" in lines[0]
    assert "best: trial 1, 56.00% validation accuracy, run r1" in lines[1]
    assert lines[-1] == "base config (trial 0): 50.00%; the best trial gains +6.00 points"
    rows = {r["trial"]: r for r in sweep.trial_rows(study)}
    assert rows[0]["note"] == "base config" and rows[2]["note"] == "pruned"
    assert rows[2]["val_accuracy"] == 0.3  # a pruned trial shows its last reported value
    assert rows[3]["note"] == "worker died (no heartbeat)"
    assert rows[1]["param:learning_rate"] == 0.03
    charts = sweep.figures(study)
    assert set(charts) == {"Optimisation history", "Parameter importances",
                           "Parallel coordinates", "Validation accuracy per epoch"}
    assert all(not isinstance(chart, str) for chart in charts.values())


def test_study_names_must_name_a_folder():
    from fer_core import sweep

    assert sweep.check_study_name("fer2013-w16_e4.b") == "fer2013-w16_e4.b"
    for bad in ("", "../up", "a b", "-flag", "x" * 101):
        with pytest.raises(sweep.SweepError, match="study name"):
            sweep.check_study_name(bad)
    assert sweep.safe_url("postgresql://me:secret@db/optuna") == "postgresql://me:***@db/optuna"

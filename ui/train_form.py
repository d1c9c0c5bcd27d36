"""The Train page's "New run" form: presets, the model and its options, every hyperparameter
widget, drawn from the fields' declarations (`fer_core.config`: label, bounds, step,
format, when active), and the values kept in `st.session_state` across pages.

Form values live in `st.session_state[STORE]` (one flat dict, see `fer_core.train_form`);
each widget has its own key `WIDGET + <form key>` (the page tests address them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st

from fer_core import train_form as form
from fer_core.config import AUGMENT_PARAMS, TRAIN_PARAMS, ConfigError, TrainConfig
from fer_core.models import ModelInfo, list_models
from fer_core.params import Param

STORE = "train_form"  # session_state key of the form values (survives page switches)
WIDGET = "train_w_"  # prefix of the widgets' own keys

# Where each field is drawn: (subheader, fields in reading order over three columns).
SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Optimisation", ("epochs", "batch_size", "optimizer", "learning_rate", "momentum",
                      "weight_decay", "schedule", "plateau_factor", "plateau_patience", "min_lr",
                      "warmup_epochs")),
    ("Regularisation", ("early_stop_patience", "early_stop_monitor", "label_smoothing",
                        "mixup_alpha", "class_weights", "teacher", "distill_weight")),
)
VALIDATION_FIELDS: tuple[str, ...] = ("val_source", "val_fraction", "seed", "drop_test_overlap")


def models() -> dict[str, ModelInfo]:
    """The registered models by name."""
    return {info.name: info for info in list_models()}


def model_defaults(model: str) -> dict[str, Any]:
    """The builder's option defaults of a registered model ({} for an unknown one)."""
    return models()[model].defaults if model in models() else {}


def _store() -> dict[str, Any]:
    if STORE not in st.session_state:
        config = TrainConfig()  # the fields' own defaults: no preset applied yet
        st.session_state[STORE] = form.form_values(config, model_defaults(config.model))
    return st.session_state[STORE]


def load_into_form(config: TrainConfig) -> None:
    """Show `config` in every widget (preset, reset, a run's config); a widget callback."""
    values = form.form_values(config, model_defaults(config.model))
    st.session_state[STORE] = values
    for name, value in values.items():
        st.session_state[WIDGET + name] = value


def _apply_preset() -> None:
    if st.session_state.get("train_preset") is not None:
        load_into_form(form.preset_config(st.session_state["train_preset"]))


def _on_model_change() -> None:
    """A new model starts from its own option defaults."""
    for name, value in model_defaults(st.session_state[WIDGET + "model"]).items():
        st.session_state[WIDGET + form.OPTION_PREFIX + name] = value


def _key(name: str) -> str:
    """Key of the widget for form key `name`, seeded from the store on first draw."""
    key = WIDGET + name
    if key not in st.session_state:
        st.session_state[key] = _store().get(name)
    return key


def _widget(where: Any, name: str, label: str, spec: Param, inactive: Mapping[str, str]) -> None:
    """One widget for the field declared by `spec`, under form key `name`."""
    why = inactive.get(name)
    kwargs = {"key": _key(name), "disabled": why is not None,
              "help": f"{spec.help}. Disabled: {why}." if why else spec.help}
    if spec.kind == "choice":
        where.selectbox(label, spec.choices, format_func=spec.choice_label, **kwargs)
    elif spec.kind == "bool":
        where.checkbox(label, **kwargs)
    elif spec.kind == "str":
        where.text_input(label, max_chars=spec.max_len, placeholder="optional", **kwargs)
    else:
        low, high = spec.bounds()
        where.number_input(label, min_value=low, max_value=high, step=spec.step,
                           format=spec.fmt, **kwargs)


def _fields(names: tuple[str, ...], inactive: Mapping[str, str]) -> None:
    columns = st.columns(3)
    for i, name in enumerate(names):
        spec = TRAIN_PARAMS[name]
        _widget(columns[i % 3], name, spec.label_for(name), spec, inactive)


def _model_options(model: str) -> None:
    specs = form.model_option_specs(model_defaults(model))
    for col, option in zip(st.columns(len(specs)) if specs else (), specs):
        key = _key(option.key)
        value = st.session_state[key]
        if value is None or (option.is_int and not isinstance(value, int)):
            st.session_state[key] = option.default  # an option this model had no value for
        col.number_input(option.spec.label_for(option.name), min_value=option.minimum,
                         max_value=option.maximum, step=option.spec.step,
                         format=option.spec.fmt, key=key,
                         help=f"{option.spec.help} (default {option.default})")


def _augmentation(inactive: Mapping[str, str]) -> None:
    with st.expander("Augmentation", expanded=False):
        st.toggle("Augment training images", key=_key(form.AUGMENT_SWITCH),
                  help="Off: the model sees the images as they are.")
        columns = st.columns(4)
        for i, (name, spec) in enumerate(AUGMENT_PARAMS.items()):
            _widget(columns[i % 4], form.AUGMENT_PREFIX + name, spec.label_for(name), spec,
                    inactive)


def config_form(*, data: str, has_public_test: bool) -> TrainConfig | None:
    """Draw the form; the validated config of its values, or None (the reason shown)."""
    values = _store()
    preset_col, apply_col = st.columns([3, 1], vertical_alignment="bottom")
    preset_col.selectbox("Preset", form.preset_names(), index=None, key="train_preset",
                         placeholder="none (each field's own default)",
                         help="Named starting points (fer_core.config.PRESETS): `default` is "
                         "the recipe of the shipped model (which was trained with 64 "
                         "epochs, seed 4 and random erasing 0.3 instead of 40, 0 and none), "
                         "`quick` a smoke run of a few minutes.")
    apply_col.button("Apply preset", key="train_apply_preset", on_click=_apply_preset)

    # Widget values of this run, read before they are drawn: what does nothing is greyed out.
    current = {name: st.session_state.get(WIDGET + name, values.get(name)) for name in values}
    inactive = form.inactive_fields(current, has_public_test=has_public_test)
    names = models()
    model = st.selectbox("Model", list(names), key=_key("model"), on_change=_on_model_change,
                         format_func=lambda name: f"{name} — {names[name].description}",
                         help=TRAIN_PARAMS["model"].help)
    _model_options(model)
    for title, fields in SECTIONS:
        st.subheader(title, divider="gray")
        _fields(fields, inactive)
    _augmentation(inactive)
    st.subheader("Validation and run", divider="gray")
    _fields(VALIDATION_FIELDS, inactive)
    _widget(st, "name", TRAIN_PARAMS["name"].label_for("name"), TRAIN_PARAMS["name"], inactive)

    # Everything drawn: remember it (survives visits to other pages) and validate it.
    for name in list(values):
        if WIDGET + name in st.session_state:
            values[name] = st.session_state[WIDGET + name]
    for name, default in model_defaults(model).items():
        values[form.OPTION_PREFIX + name] = st.session_state.get(
            WIDGET + form.OPTION_PREFIX + name, default)
    try:
        return form.config_from_form(values, data=data, model_defaults=model_defaults(model))
    except ConfigError as exc:
        st.error(f"This combination cannot run: {exc.problem} (field `{exc.field}`).")
        return None

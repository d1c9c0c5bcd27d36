"""The Live page's runtime choice: which file of a model runs, automatic by default.

`Automatic` runs `model_card.fastest_export(ref.path)` (an `.onnx`/`.tflite` export of this
very file that its card measured faster and as accurate), else the `.keras` file itself; the
box also offers the `.keras` file and every usable export by name. A file that fails to load
falls back to the `.keras` file with a warning, so the webcam keeps working.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from fer_core import model_card
from fer_core.catalog import ModelRef
from fer_core.runtimes import KERAS, RUNTIME_NAMES, format_of
from ui.models import LoadedModel, loaded_file

AUTO = "auto"


def _describe(export: model_card.Export) -> str:
    text = (f"{export.label}: {export.ms_single:.2f} ms for one face against "
            f"{export.source_ms_single:.2f} ms in Keras ({export.speedup:.1f}x) on its card")
    if export.accuracy is not None and export.source_accuracy is not None:
        text += (f"; PublicTest {export.accuracy:.2%} against {export.source_accuracy:.2%}, "
                 f"top label the same on {export.agreement:.1%}")
    return text


def picked_model(ref: ModelRef) -> tuple[LoadedModel, str]:
    """The loaded file to classify with for `ref`, and a line saying what runs and why."""
    if format_of(ref.path) != KERAS:  # an uploaded or typed .onnx/.tflite runs as it is
        return loaded_file(ref.path), f"Runs on {RUNTIME_NAMES[format_of(ref.path)]}."
    exports = {str(e.path): e for e in model_card.exports_of(ref.path)}
    fastest = model_card.fastest_export(ref.path)
    options = [AUTO, str(ref.path), *exports]
    names = {AUTO: "Automatic (fastest as accurate)",
             str(ref.path): f"Keras/TensorFlow ({ref.path.name})",
             **{p: e.label for p, e in exports.items()}}
    with st.sidebar:
        choice = st.selectbox("Runtime", options, format_func=names.__getitem__,
                              key="live_runtime",
                              help="Which file of this model classifies the faces: the .keras "
                              "model or one of its ONNX / LiteRT exports (`python -m fer_core "
                              "export`). Automatic takes the fastest export whose card shows "
                              f"at most {model_card.MAX_ACCURACY_DROP} points of PublicTest "
                              "accuracy lost, else Keras.")
    export = fastest if choice == AUTO else exports.get(choice)
    path = export.path if export is not None else Path(ref.path)
    why = _describe(export) if export is not None else (
        "Keras/TensorFlow: " + ("no export of this file is faster on its card"
                                if choice == AUTO else "picked"))
    if path != ref.path:
        try:
            return loaded_file(path), why
        except (ValueError, OSError) as exc:
            st.warning(f"{path.name} could not be used ({exc}); running the Keras model instead.")
            return loaded_file(ref.path), f"Keras/TensorFlow: {path.name} failed to load"
    return loaded_file(path), why

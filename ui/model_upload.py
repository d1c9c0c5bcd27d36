"""A user's own model file as a choice on a page (Live, Evaluate): the sidebar uploader, the
checks (`catalog.upload`: size, format, safe load, cost, timed trial), and selecting a new
upload once."""

from __future__ import annotations

import streamlit as st

from fer_core import catalog
from fer_core.uploads import MAX_MODEL_UPLOAD_BYTES

LIMIT_MB = MAX_MODEL_UPLOAD_BYTES // 2**20


def with_uploaded_model(choices: dict[str, catalog.ModelRef], *, key: str,
                        select_key: str) -> dict[str, catalog.ModelRef]:
    """`choices` with the model uploaded in the sidebar (under widget `key`) first; a new
    upload becomes the value of the model box `select_key` once. A refused file is an error
    on the page, which goes on with the other choices."""
    with st.sidebar:
        own_model = st.file_uploader(  # its own limit: the server's is for datasets (400 MB)
            "Your own model (.keras, .onnx, .tflite)", type=["keras", "onnx", "tflite"],
            key=key, max_upload_size=LIMIT_MB,
            help=f"A Keras 3 .keras, ONNX or LiteRT file of up to {LIMIT_MB} MB taking 48x48 "
            "grey faces (NHWC, 0..255) and giving 7 emotions. It is checked before it runs: "
            ".keras loads in safe mode (no code from Lambda layers), .onnx must be "
            "self-contained with standard operators, and every model is tried on faces with "
            "a time limit.",
        )
    if own_model is None:
        return choices
    try:  # untrusted: size, format and load are checked before it is kept
        own = catalog.upload(own_model.getvalue(), own_model.name)
    except (ValueError, OSError) as exc:
        st.error(f"That model file cannot be used: {exc}")
        return choices
    if st.session_state.get(f"{key}_id") != own_model.file_id:
        st.session_state[f"{key}_id"] = own_model.file_id
        st.session_state[select_key] = own.spec  # a new upload is selected once
    return {own.spec: own, **choices}

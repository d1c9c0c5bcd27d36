"""The Dataset page's controls that choose the active dataset: its source (demo set, a path,
an upload), "skip bad rows", and the split of a file that has no Usage column. They only
change the choice in `ui.state`; the page loads the dataset after them."""

from __future__ import annotations

import streamlit as st

from fer_core.data import DEMO, FerDataset, save_upload
from ui.state import (
    ACTIVE_LABEL,
    ACTIVE_SKIP_BAD,
    ACTIVE_SPLIT,
    active_source,
    set_active_source,
)

KINDS = ("Demo set (synthetic)", "Path on this machine", "Upload a file")


def source_picker() -> None:
    """Radio for the kind of source, then the path form or the uploader, and the
    "skip bad rows" box; a change becomes the active source at once."""
    current = active_source()
    st.session_state.setdefault("dataset_kind", KINDS[0] if current == DEMO else KINDS[1])
    kind = st.radio("Source", KINDS, key="dataset_kind", horizontal=True)
    skip_bad = st.checkbox(
        "Skip bad rows", key="dataset_skip_bad",
        value=bool(st.session_state.get(ACTIVE_SKIP_BAD, False)),
        help="Load the good rows of a file with problems and report how many were skipped.",
    )
    if kind == KINDS[0]:
        st.caption("Generated cartoon faces whose expression shows the class: not real data, "
                   "for trying the app and for fast tests.")
        if current != DEMO:
            set_active_source(DEMO)
    elif kind == KINDS[1]:
        _path_form(current, skip_bad)
    else:
        _uploader(skip_bad)
    if skip_bad != bool(st.session_state.get(ACTIVE_SKIP_BAD, False)) and current != DEMO:
        set_active_source(current, label=st.session_state.get(ACTIVE_LABEL), skip_bad=skip_bad,
                          split=st.session_state.get(ACTIVE_SPLIT))


def _path_form(current: str, skip_bad: bool) -> None:
    with st.form("dataset_path_form", border=False):
        path = st.text_input(
            "Path", value="" if current == DEMO else current, key="dataset_path",
            placeholder="data/fer2013.csv",
            help="Kaggle's fer2013.csv (also .csv.gz, .zip or fer2013.tar.gz), or the "
                 "image-folder edition (a folder or .zip with train/<class>/*.png and "
                 "test/<class>/*.png). "
                 "The word 'demo' selects the demo set.",
        )
        if st.form_submit_button("Use this dataset", type="primary") and path.strip():
            set_active_source(path.strip(), skip_bad=skip_bad)


def _uploader(skip_bad: bool) -> None:
    upload = st.file_uploader(
        "FER2013 file", type=["csv", "gz", "zip", "tar", "tgz"], key="dataset_upload",
        help="fer2013.csv (.csv.gz), Kaggle's fer2013.tar.gz, or a .zip of the CSV or of "
             "the image folders.",
    )
    if upload is not None and st.session_state.get("dataset_upload_id") != upload.file_id:
        # Saved once per upload (hashing 290 MB on every rerun would be slow); the file
        # then outlives the widget, so other pages and later sessions can reload it.
        saved = save_upload(upload.getvalue(), upload.name)
        st.session_state["dataset_upload_id"] = upload.file_id
        set_active_source(str(saved), label=f"upload:{upload.name}", skip_bad=skip_bad)


def split_controls(ds: FerDataset) -> None:
    """For data with one split (a CSV without Usage): sliders for the validation and test
    shares and a seed, applied by a button; also shown while such a split is applied."""
    split = st.session_state.get(ACTIVE_SPLIT)
    if len(ds.splits()) > 1 and not split:
        return
    with st.expander("This file has no Usage column: split off validation and test sets",
                     expanded=split is None):
        c1, c2, c3 = st.columns(3)
        val = c1.slider("Validation (PublicTest) share", 0.0, 0.4, 0.1, 0.05, key="split_val")
        test = c2.slider("Test (PrivateTest) share", 0.0, 0.4, 0.1, 0.05, key="split_test")
        seed = c3.number_input("Seed", 0, 2**31 - 1, 0, key="split_seed")
        if st.button("Apply the split", key="split_apply"):
            set_active_source(active_source(), label=st.session_state.get(ACTIVE_LABEL),
                              skip_bad=bool(st.session_state.get(ACTIVE_SKIP_BAD, False)),
                              split=(val, test, int(seed)))
            st.rerun()

"""Home: what the app does, where to start, and which dataset is active.

The app's default page (`streamlit run app.py` opens it). With no data configured the app
uses the synthetic demo set (and says so); a dataset that fails to load is reported here
without stopping the app.
"""

from __future__ import annotations

import streamlit as st

import fer_core  # noqa: F401  (CPU flags before anything loads TensorFlow)
from fer_core.data import DEMO
from fer_core.paths import default_model_path
from ui.frame import PAGES, page_setup
from ui.state import (
    DataError,
    active_source,
    dataset_caption,
    load_active_dataset,
    set_active_source,
)

page_setup(__file__)

st.title("Facial emotion recognition workbench")
st.markdown(
    "Explore **FER2013** (48x48 grey faces, 7 emotions: angry, disgust, fear, happy, sad, "
    "surprise, neutral), train convolutional networks on it, evaluate them, and try the best "
    "one on your webcam, all from this browser tab."
)

st.subheader("Where to start")
for number, page in enumerate(PAGES[1:], start=1):
    left, right = st.columns([1, 3], vertical_alignment="center")
    label = f"{number}. {page.title}"
    try:
        left.page_link(page.path, label=label, icon=page.icon)
    except Exception:  # a page missing from this checkout: name it without a link
        left.markdown(f"**{label}**")
    right.write(page.summary)

if default_model_path().is_file():
    st.info(
        "A trained **default model** ships with the app (our `fernet`, trained on FER2013's "
        "Training split; figures in `models/MODEL_CARD.md`): open **Live** to try it on your "
        "webcam now, or **Evaluate** to see where it goes wrong.",
        icon=":material/neurology:",
    )

st.subheader("Active dataset")
try:
    dataset = load_active_dataset()
except DataError as exc:
    st.error(f"The configured dataset could not be loaded.\n\n{exc}")
    st.info("Fix the file or choose another one on the Dataset page; meanwhile you can use "
            "the synthetic demo set.")
    if st.button("Use the demo set", key="home_use_demo", type="primary"):
        set_active_source(DEMO)
        st.rerun()
else:
    if dataset.synthetic:
        st.warning(dataset_caption(dataset), icon=":material/science:")
        st.markdown(
            "No FER2013 file is configured, so the app shows a **synthetic demo set**. "
            "To use the real data, download Kaggle's `fer2013.csv` and either put it at "
            "`data/fer2013.csv`, set the environment variable `FER2013_CSV` to its path, or "
            "choose it (path or upload) on the **Dataset** page."
        )
    else:
        st.success(dataset_caption(dataset))
    per_split = {name: sum(c.values()) for name, c in dataset.counts().items()}
    cols = st.columns(len(per_split))
    for col, (name, n) in zip(cols, per_split.items()):
        col.metric(name, f"{n:,}")
    if active_source() != DEMO and st.button("Switch to the demo set", key="home_switch_demo"):
        set_active_source(DEMO)
        st.rerun()

"""Dataset: choose the data, then see its class balance, sample faces, mean faces, pixel
histograms and data-quality findings. A thin view: loading and every figure come from
fer_core (data, quality); heavy work is cached in st.cache_data."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

import fer_core  # noqa: F401  (CPU flags before anything loads TensorFlow)
from fer_core import quality
from fer_core.data import DEMO, FerDataset, save_upload
from fer_core.labels import EMOTIONS, IMG_SIZE
from ui.state import (
    ACTIVE_LABEL,
    ACTIVE_SKIP_BAD,
    ACTIVE_SPLIT,
    DataError,
    active_source,
    dataset_key,
    load_active_dataset,
    set_active_source,
    show_dataset_banner,
)

SAMPLES_PER_CLASS = 10
ALL_SPLITS = "All splits"
KINDS = ("Demo set (synthetic)", "Path on this machine", "Upload a file")

st.set_page_config(page_title="Dataset · FER workbench", page_icon=":material/dataset:",
                   layout="wide")


# --- cached computations (keyed by dataset_key(); the dataset itself is not hashed) ------


@st.cache_data(max_entries=4, show_spinner="Looking for duplicates and blank faces ...")
def quality_findings(key: str, _ds: FerDataset) -> tuple[quality.DuplicateReport, np.ndarray,
                                                         np.ndarray]:
    flat = quality.low_contrast(_ds.images)
    return quality.find_duplicates(_ds), flat, quality.image_std(_ds.images[flat])


@st.cache_data(max_entries=8, show_spinner="Averaging faces ...")
def class_summaries(key: str, split: str, _ds: FerDataset) -> tuple[np.ndarray, np.ndarray]:
    images, labels = _subset(_ds, split)
    return quality.mean_faces(images, labels), quality.class_histograms(images, labels)


def _subset(ds: FerDataset, split: str) -> tuple[np.ndarray, np.ndarray]:
    return (ds.images, ds.labels) if split == ALL_SPLITS else ds.split(split)


def _zoom(image: np.ndarray, factor: int = 2) -> np.ndarray:
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


# --- source picker -----------------------------------------------------------------------


def _source_picker() -> None:
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
    else:
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
    if skip_bad != bool(st.session_state.get(ACTIVE_SKIP_BAD, False)) and current != DEMO:
        set_active_source(current, label=st.session_state.get(ACTIVE_LABEL), skip_bad=skip_bad,
                          split=st.session_state.get(ACTIVE_SPLIT))


def _split_controls(ds: FerDataset) -> None:
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


# --- sections ----------------------------------------------------------------------------


def _distribution(ds: FerDataset) -> None:
    st.subheader("Class distribution")
    counts = ds.counts()
    fig = go.Figure()
    for split, per_class in counts.items():
        total = sum(per_class.values())
        y = [per_class[e] for e in EMOTIONS]
        share = [100 * n / total if total else 0.0 for n in y]
        fig.add_bar(name=split, x=list(EMOTIONS), y=y, customdata=share,
                    text=[f"{n:,}<br>{p:.1f}%" for n, p in zip(y, share)],
                    hovertemplate="%{x}: %{y:,} faces (%{customdata:.1f}% of "
                                  + split + ")<extra></extra>")
    fig.update_layout(barmode="group", height=380, margin=dict(t=10, b=10),
                      yaxis_title="faces", legend_title="split")
    st.plotly_chart(fig, width="stretch", key="class_distribution")
    lines = []
    for split, per_class in counts.items():
        largest, smallest, ratio = quality.imbalance(per_class)
        total = sum(per_class.values())
        ratio_text = "an empty class" if ratio == float("inf") else f"{ratio:.1f}x"
        lines.append(f"- **{split}** ({total:,} faces): the largest class, *{largest}*, is "
                     f"{ratio_text} the smallest, *{smallest}* "
                     f"({100 * per_class[smallest] / max(total, 1):.1f}% of the split).")
    st.markdown("Imbalance (largest / smallest class):\n" + "\n".join(lines))


def _samples(ds: FerDataset, split: str) -> None:
    st.subheader("Sample faces per class")

    def reshuffle() -> None:
        st.session_state["sample_seed"] = int(st.session_state.get("sample_seed", 0)) + 1

    c1, c2 = st.columns([1, 4], vertical_alignment="bottom")
    c1.number_input("Seed", min_value=0, value=0, step=1, key="sample_seed")
    c2.button("Reshuffle", on_click=reshuffle, key="sample_reshuffle")
    images, labels = _subset(ds, split)
    rng = np.random.default_rng(int(st.session_state["sample_seed"]))
    for c, emotion in enumerate(EMOTIONS):
        rows = np.flatnonzero(labels == c)
        left, right = st.columns([1, 7], vertical_alignment="center")
        left.markdown(f"**{emotion}**  \n{len(rows):,} faces")
        if not len(rows):
            right.caption("no faces of this class in this split")
            continue
        pick = rng.choice(rows, size=min(SAMPLES_PER_CLASS, len(rows)), replace=False)
        right.image(_zoom(np.hstack(list(images[pick]))), clamp=True)


def _class_means(ds: FerDataset, split: str) -> None:
    means, hists = class_summaries(dataset_key(), split, ds)
    st.subheader("Mean face per class")
    st.image([_zoom(_to_uint8(m)) for m in means], caption=list(EMOTIONS), width=IMG_SIZE * 2)
    st.subheader("Pixel intensity per class")
    fig = go.Figure()
    for emotion, hist in zip(EMOTIONS, hists):
        total = hist.sum()
        fig.add_scatter(x=np.arange(256), y=hist / total if total else hist, name=emotion,
                        mode="lines")
    fig.update_layout(height=340, margin=dict(t=10, b=10), xaxis_title="grey level",
                      yaxis_title="share of pixels", legend_title="class")
    st.plotly_chart(fig, width="stretch", key="intensity_histogram")


def _caption(ds: FerDataset, row: int) -> str:
    return f"{ds.usage[row]} #{row} {EMOTIONS[ds.labels[row]]}"


def _quality(ds: FerDataset) -> None:
    st.subheader("Data quality")
    dups, flat, flat_std = quality_findings(dataset_key(), ds)
    cols = st.columns(len(dups.within) + len(dups.across) + 2)
    for col, (split, n) in zip(cols, dups.within.items()):
        col.metric(f"Duplicates within {split}", f"{n:,}")
    for col, ((first, later), n) in zip(cols[len(dups.within):], dups.across.items()):
        col.metric(f"{later} faces also in {first}", f"{n:,}")
    cols[-2].metric("Duplicates with different labels", f"{dups.conflicting:,}")
    cols[-1].metric("Near-blank / low contrast", f"{len(flat):,}")
    if any(dups.across.values()):
        st.warning("Some test faces also appear in an earlier split: a leak that inflates test "
                   "accuracy. Consider removing them before reporting results.")
    if dups.groups:
        st.markdown("**Examples of identical faces** (split, row, label):")
        examples = dups.groups[:6]
        for group in examples:
            st.image([_zoom(ds.images[r]) for r in group[:6]],
                     caption=[_caption(ds, int(r)) for r in group[:6]], width=IMG_SIZE * 2)
    if len(flat):
        st.markdown(f"**Near-blank or very low-contrast faces** (grey-level std below "
                    f"{quality.LOW_CONTRAST_STD:g}):")
        shown = flat[:12]
        st.image([_zoom(ds.images[r]) for r in shown],
                 caption=[f"{_caption(ds, int(r))} std {s:.1f}" for r, s in zip(shown, flat_std)],
                 width=IMG_SIZE * 2)
    if not dups.total and not len(flat):
        st.success("No exact duplicates and no near-blank faces found.")


# --- page --------------------------------------------------------------------------------

st.title("Dataset")
with st.container(border=True):
    _source_picker()

try:
    dataset = load_active_dataset()
except DataError as exc:
    st.error(f"Could not load this dataset.\n\n{exc}")
    if exc.count:
        st.info("Tick **Skip bad rows** to load the good rows and see how many were skipped, "
                "or fix the file.")
    st.stop()

show_dataset_banner(dataset)
if dataset.skipped:
    st.warning(f"Skipped {dataset.skipped:,} bad rows:\n\n"
               + "\n".join(f"- {p}" for p in dataset.problems))
_split_controls(dataset)
st.write(f"**{len(dataset):,} faces** in {', '.join(dataset.splits())}.")

_distribution(dataset)
chosen = st.selectbox("Split shown below", [ALL_SPLITS] + dataset.splits(), key="dataset_split")
_samples(dataset, chosen)
_class_means(dataset, chosen)
_quality(dataset)

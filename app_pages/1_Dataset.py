"""Dataset: choose the data, then see its class balance, sample faces, mean faces, pixel
histograms and data-quality findings. A thin view: the source controls are `ui.dataset_source`,
loading is `ui.state`, the numbers come from `fer_core.quality` and the figures from
`fer_core.charts`; heavy work is cached in st.cache_data."""

from __future__ import annotations

import numpy as np
import streamlit as st

import fer_core  # noqa: F401  (CPU flags before anything loads TensorFlow)
from fer_core import charts, quality
from fer_core.data import FerDataset
from fer_core.display import enlarge, row_name, to_uint8
from fer_core.labels import EMOTIONS, IMG_SIZE
from ui.dataset_source import source_picker, split_controls
from ui.frame import page_setup
from ui.state import DataError, dataset_key, load_active_dataset

SAMPLES_PER_CLASS = 10
ALL_SPLITS = "All splits"
METRICS_PER_ROW = 4  # the quality findings: 8 for a file with 3 splits, in 2 rows
CARDS_PER_ROW = 4  # pictures of identical faces side by side
GROUPS_SHOWN = 8  # groups of identical faces (and of identical near-blank faces) shown
ROWS_LISTED = 4  # rows named under a picture

page_setup(__file__)


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


# --- sections ----------------------------------------------------------------------------


def _distribution(ds: FerDataset) -> None:
    st.subheader("Class distribution")
    counts = ds.counts()
    st.plotly_chart(charts.class_distribution_figure(counts), width="stretch",
                    key="class_distribution")
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
        right.image(enlarge(np.hstack(list(images[pick]))), clamp=True)


def _class_means(ds: FerDataset, split: str) -> None:
    means, hists = class_summaries(dataset_key(), split, ds)
    st.subheader("Mean face per class")
    st.image([enlarge(to_uint8(m)) for m in means], caption=list(EMOTIONS), width=IMG_SIZE * 2)
    st.subheader("Pixel intensity per class")
    st.plotly_chart(charts.intensity_histogram_figure(hists), width="stretch",
                    key="intensity_histogram")


def _member(ds: FerDataset, row: int) -> str:
    return f"{ds.usage[row]} {row_name(row)} · {EMOTIONS[ds.labels[row]]}"


def _quality_metrics(dups: quality.DuplicateReport, flat: int) -> list[tuple[str, int, str]]:
    """(short label, count, what it counts) of each finding: labels short enough for a
    metric in a row of `METRICS_PER_ROW`, the detail in the help."""
    found = [(f"Repeats in {split}", n, (f"{split} faces that are exact copies of another "
                                         f"{split} face (the copies beyond the first)."))
             for split, n in dups.within.items()]
    found += [(f"{later} in {first}", n, (f"{later} faces that are exact copies of a {first} "
                                          "face: a leak between splits."))
              for (first, later), n in dups.across.items()]
    found.append(("Label conflicts", dups.conflicting,
                  "Groups of identical faces whose rows carry different labels."))
    found.append(("Near-blank", flat, ("Near-blank or very low-contrast faces: grey-level "
                                       f"standard deviation below {quality.LOW_CONTRAST_STD:g}.")))
    return found


def _face_cards(ds: FerDataset, groups: list[np.ndarray], notes: list[str]) -> None:
    """One picture per group of identical faces, its rows (and a note) below it, in a grid."""
    for start in range(0, len(groups), CARDS_PER_ROW):
        cols = st.columns(CARDS_PER_ROW)
        for col, group, note in zip(cols, groups[start:start + CARDS_PER_ROW],
                                    notes[start:start + CARDS_PER_ROW]):
            rows = [_member(ds, int(r)) for r in group[:ROWS_LISTED]]
            if len(group) > ROWS_LISTED:
                rows.append(f"and {len(group) - ROWS_LISTED:,} more rows")
            col.image(enlarge(ds.images[group[0]]), width=IMG_SIZE * 2)
            col.caption("  \n".join([*rows, *([note] if note else [])]))


def _quality(ds: FerDataset) -> None:
    st.subheader("Data quality")
    dups, flat, flat_std = quality_findings(dataset_key(), ds)
    found = _quality_metrics(dups, len(flat))
    for start in range(0, len(found), METRICS_PER_ROW):
        for col, (label, n, detail) in zip(st.columns(METRICS_PER_ROW),
                                           found[start:start + METRICS_PER_ROW]):
            col.metric(label, f"{n:,}", help=detail)
    if any(dups.across.values()):
        st.warning("Some test faces also appear in an earlier split: a leak that inflates test "
                   "accuracy. Training can leave them out (and near-identical copies): "
                   "*Drop Training faces found in test splits* on the Train page.")
    # identical near-blank faces are shown once, with the near-blank ones below
    blank = set(flat.tolist())
    groups = [g for g in dups.groups if int(g[0]) not in blank][:GROUPS_SHOWN]
    if groups:
        st.markdown("**Examples of identical faces**: each picture appears in all the rows "
                    "listed under it (split, row, label).")
        _face_cards(ds, groups, [""] * len(groups))
    if len(flat):
        std = dict(zip(flat.tolist(), flat_std.tolist()))
        blanks = quality.identical_groups(ds.images, flat)[:GROUPS_SHOWN]
        st.markdown(f"**Near-blank or very low-contrast faces** (grey-level std below "
                    f"{quality.LOW_CONTRAST_STD:g}), flattest first:")
        _face_cards(ds, blanks, [f"std {std[int(g[0])]:.1f}" for g in blanks])
    if not dups.total and not len(flat):
        st.success("No exact duplicates and no near-blank faces found.")


# --- page --------------------------------------------------------------------------------

st.title("Dataset")
with st.container(border=True):
    source_picker()

try:
    dataset = load_active_dataset()
except DataError as exc:
    st.error(f"Could not load this dataset.\n\n{exc}")
    if exc.count:
        st.info("Tick **Skip bad rows** to load the good rows and see how many were skipped, "
                "or fix the file.")
    st.stop()

if dataset.skipped:
    st.warning(f"Skipped {dataset.skipped:,} bad rows:\n\n"
               + "\n".join(f"- {p}" for p in dataset.problems))
split_controls(dataset)
st.write(f"**{len(dataset):,} faces** in {', '.join(dataset.splits())}.")

_distribution(dataset)
chosen = st.selectbox("Split shown below", [ALL_SPLITS] + dataset.splits(), key="dataset_split")
_samples(dataset, chosen)
_class_means(dataset, chosen)
_quality(dataset)

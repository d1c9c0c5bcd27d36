"""Streamlit pieces of the Evaluate page: an evaluation with its spinner and error, and the
gallery of a confusion cell's faces."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import streamlit as st

from fer_core import evaluate as ev
from fer_core.data import FerDataset
from fer_core.display import row_name
from fer_core.eval_report import overlap_note
from fer_core.labels import TRAINING
from fer_core.quality import overlap_mask
from fer_core.text import escape_markdown


def evaluate_or_error(spec: str, images: np.ndarray, labels: np.ndarray, entry: str,
                      tta: bool, source: str) -> ev.EvalResult | None:
    """`evaluate_cached` under a spinner; a model that cannot be evaluated is an st.error
    and None (the page goes on)."""
    try:
        with st.spinner(f"Evaluating {escape_markdown(spec)} on {len(labels):,} faces…"):
            return ev.evaluate_cached(spec, images, labels, split=entry, tta=tta, source=source)
    except (ValueError, OSError) as exc:
        st.error(f"Cannot evaluate {escape_markdown(spec)}: {exc}")
        return None


def mistakes_gallery(images: np.ndarray, mistakes: Sequence[ev.Mistake], rows: np.ndarray,
                     *, columns: int = 6) -> None:
    """The faces in rows of `columns`, each captioned with its dataset row (`rows[i]` for
    face `i` of `images`, `display.row_name`) and the model's top 3."""
    for start in range(0, len(mistakes), columns):
        for col, m in zip(st.columns(columns), mistakes[start:start + columns]):
            col.image(images[m.index], width=96, clamp=True)
            col.caption("  \n".join([row_name(rows[m.index]),
                                      *(f"{n} {q:.0%}" for n, q in m.top3)]))



@st.cache_data(show_spinner="Looking for these faces in Training…", max_entries=8)
def _overlap_count(_images: np.ndarray, _training: np.ndarray, key: str) -> int:
    return int(overlap_mask(_images, _training).sum())


def training_overlap_note(dataset: FerDataset, split: str, images: np.ndarray, key: str, *,
                          run_dropped: bool | None) -> None:
    """A caption when faces of the evaluated split also sit in the dataset's Training split
    (a leak FER2013 has); `key` names the dataset and split for the cache, `run_dropped`
    is the model's `ModelRef.dropped_test_overlap`."""
    if split == TRAINING or TRAINING not in dataset.splits():
        return
    training, _ = dataset.split(TRAINING)
    n = _overlap_count(images, training, key)
    note = overlap_note(n, len(images), split, run_dropped=run_dropped)
    if note:
        st.caption(note)

"""The active dataset, shared by every page.

The choice (a path or "demo", plus "skip bad rows" and an optional seeded split) lives in
`st.session_state`; the loaded arrays live in `st.cache_data`, keyed by the source and the
file's size and mtime (for a folder, those of every image in it), so switching pages never
reloads the CSV and an edited file is reloaded. fer_core's on-disk cache makes even a fresh
session's first load fast. Any failure to load (not only DataError) reaches the pages as a
DataError, so a bad file breaks a message, never a page.

    from ui.state import load_active_dataset
    try:
        ds = load_active_dataset()  # also fills the banner place the frame kept (ui.frame)
    except DataError as exc:  # any failure to load arrives as a DataError
        st.error(str(exc)); st.stop()
"""

from __future__ import annotations

import dataclasses
import json
import threading

import streamlit as st

from fer_core.data import (
    DataError,
    FerDataset,
    as_data_error,
    load_dataset,
    mark_used,
    resolve_source,
    source_signature,
    split_dataset,
)

ACTIVE_SOURCE = "active_source"  # session_state: path or "demo" (read by resolve_source)
ACTIVE_LABEL = "active_source_label"  # session_state: what to call it ("upload:<name>")
ACTIVE_SKIP_BAD = "active_skip_bad"  # session_state: skip bad rows instead of failing
ACTIVE_SPLIT = "active_split"  # session_state: (val_fraction, test_fraction, seed) or None

_banner = threading.local()  # this run's banner place (st.empty), kept by reserve_banner

__all__ = [
    "DataError", "active_source", "set_active_source", "load_active_dataset", "load_source",
    "dataset_key", "dataset_caption", "show_dataset_banner", "reserve_banner", "release_banner",
]


def active_source() -> str:
    """The active source: what the user chose this session, else resolve_source()."""
    return resolve_source(st.session_state.get(ACTIVE_SOURCE))


def set_active_source(
    source: str,
    *,
    label: str | None = None,
    skip_bad: bool = False,
    split: tuple[float, float, int] | None = None,
) -> None:
    """Make `source` (a path or "demo") the dataset every page uses. `split` applies to
    one-split data (a CSV without Usage): (validation fraction, test fraction, seed)."""
    st.session_state[ACTIVE_SOURCE] = str(source)
    st.session_state[ACTIVE_LABEL] = label
    st.session_state[ACTIVE_SKIP_BAD] = bool(skip_bad)
    st.session_state[ACTIVE_SPLIT] = tuple(split) if split else None


def dataset_key() -> str:
    """A string that changes whenever the active dataset does: pass it to st.cache_data
    functions that take the dataset itself as an unhashed `_ds` argument."""
    source = active_source()
    return json.dumps([source, st.session_state.get(ACTIVE_SKIP_BAD, False),
                       st.session_state.get(ACTIVE_SPLIT), source_signature(source)])


def load_active_dataset() -> FerDataset:
    """The active dataset (cached). Raises DataError for any failure to load it (bad data,
    a loader bug, exhausted memory): show it with st.error."""
    source = active_source()
    split = st.session_state.get(ACTIVE_SPLIT)
    mark_used(source)  # an uploaded file in use is not evicted by other sessions' uploads
    ds = cached_dataset(
        source,
        skip_bad=bool(st.session_state.get(ACTIVE_SKIP_BAD, False)),
        split=tuple(split) if split else None,
        label=st.session_state.get(ACTIVE_LABEL),
        signature=source_signature(source),
    )
    place, _banner.place = getattr(_banner, "place", None), None
    if place is not None:
        with place.container():
            show_dataset_banner(ds)
    return ds


def load_source(source: str, *, skip_bad: bool = False) -> FerDataset:
    """load_dataset, every failure raised as a DataError naming the source and what it was:
    the one catch-all between the loaders and the pages."""
    try:
        return load_dataset(source, skip_bad=skip_bad)
    except Exception as exc:  # any loader failure becomes a message on the page
        raise as_data_error(str(source), exc) from exc


@st.cache_data(max_entries=3, show_spinner="Loading the dataset ...")
def cached_dataset(
    source: str,
    *,
    skip_bad: bool = False,
    split: tuple[float, float, int] | None = None,
    label: str | None = None,
    signature: str = "",
) -> FerDataset:
    """load_source behind st.cache_data; `signature` (source_signature) invalidates it when
    the file, or a file in the folder, changes. A split is applied only to data that has a
    single split."""
    del signature  # only part of the cache key
    ds = load_source(source, skip_bad=skip_bad)
    if split and len(ds.splits()) == 1:
        ds = split_dataset(ds, val_fraction=split[0], test_fraction=split[1], seed=split[2])
    if label:
        ds = dataclasses.replace(ds, source=label)
    return ds


def dataset_caption(ds: FerDataset) -> str:
    """One line naming the dataset; the demo set is always called synthetic."""
    if ds.synthetic:
        return (f"Synthetic demo set: {len(ds):,} generated cartoon faces, not real data. "
                "Choose your FER2013 file on the Dataset page.")
    skipped = f", {ds.skipped:,} bad rows skipped" if ds.skipped else ""
    return f"Dataset: {ds.source} ({len(ds):,} faces{skipped})"


def reserve_banner() -> None:
    """Keep the current place (the top of the page, when the frame calls it) for the active
    dataset's banner: the run's first load_active_dataset fills it. The banner then names
    the dataset the page really loaded, after any change the page made first (the Dataset
    page's picker), and a page that never loads the dataset shows none, at no cost."""
    _banner.place = st.empty()


def release_banner() -> None:
    """Forget a banner place that was not filled (the frame calls it after each page)."""
    _banner.place = None


def show_dataset_banner(ds: FerDataset) -> None:
    """The caption as a coloured banner: a warning for the synthetic set."""
    if ds.synthetic:
        st.warning(dataset_caption(ds), icon=":material/science:")
    else:
        st.caption(dataset_caption(ds))


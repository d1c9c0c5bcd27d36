"""Loading FER2013 into uint8 arrays: Kaggle's CSV, the image-folder edition, the demo set.

`load_dataset(source)` is the one entry point; `resolve_source()` says which source is active
when none is given. Bad input raises `DataError`, whose message names the file, the row (or
image path), the column and the problem, and counts the rows affected.

    dataset        FerDataset, DataError, split_dataset (the types; reads no file)
    sources        resolve_source, the checks on a typed path, folder walks, signatures
    csv_format     parse_csv_bytes: Kaggle's CSV, fast, with precise errors
    archives       gzip, zip, tar, image folders, image decoding
    cache          the on-disk parse cache (.npy files, memory-mapped)
    upload_store   uploaded files kept for reloading by path, and their eviction
    demo           make_demo: the synthetic demo set
    loader         load_dataset: which of the above a source goes through

Limits on untrusted input live in `fer_core.uploads`, cache folders in `fer_core.paths`.
"""

from __future__ import annotations

from fer_core.data.csv_format import parse_csv_bytes
from fer_core.data.dataset import DataError, FerDataset, as_data_error, split_dataset
from fer_core.data.loader import load_dataset
from fer_core.data.sources import DEMO, resolve_source, source_signature
from fer_core.data.upload_store import mark_used, save_upload

__all__ = [
    "DEMO",
    "DataError",
    "FerDataset",
    "as_data_error",
    "load_dataset",
    "mark_used",
    "parse_csv_bytes",
    "resolve_source",
    "save_upload",
    "source_signature",
    "split_dataset",
]

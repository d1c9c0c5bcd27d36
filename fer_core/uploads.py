"""Limits on what an untrusted file may make the app hold, and the messages that refuse it.

A file a user uploads (a dataset, a `.keras` model) or a path typed on the Dataset page is
untrusted: these bounds are checked before anything is decompressed, parsed or run. FER2013's
CSV is ~290 MB (~90 MB zipped, 35,887 images in the image-folder edition), far inside all of
them. Datasets (`fer_core.data`) and models (`fer_core.models.registry`, `models.cost`) take
their limits from here; the dataset loaders read them at call time (a test lowers one with
monkeypatch), the model checks take them as keyword defaults.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

# --- datasets ---------------------------------------------------------------------------
MAX_UPLOAD_BYTES = 400 * 2**20  # an uploaded dataset; .streamlit/config.toml's maxUploadSize
MAX_EXPANDED_BYTES = 2**30  # a file read whole, or an archive's content once decompressed
MAX_ARCHIVE_MEMBERS = 200_000  # files in a zip or tar
MAX_COMPRESSION_RATIO = 200  # expanded/compressed size of a member above 1 MB: a bomb

# --- models -----------------------------------------------------------------------------
MAX_MODEL_UPLOAD_BYTES = 100 * 2**20  # our models are a few MB; mini-Xception at width 64 ~ 10
MAX_MODEL_ARCHIVE_MEMBERS = 1000  # a .keras zip holds a handful of files
MODEL_EXPANSION = 4  # a .keras may expand to this many times the upload limit
MAX_FLOPS_PER_FACE = 5 * 10**9  # our largest registered model (paul2018) needs 1.2 GFLOPs
MAX_ACTIVATION_BYTES = 64 * 2**20  # per face, one layer's output (ours: < 1 MB)
TRIAL_SECONDS = 20.0  # one face through a model within the limits takes well under 1 s


def mb(size: float) -> str:
    """A size in MB with one decimal, as every data message writes it."""
    return f"{size / 2**20:,.1f} MB"


def upload_size_problem(size: int, limit: int | None = None) -> str | None:
    """Why an uploaded dataset of `size` bytes is refused (above `limit`, default
    MAX_UPLOAD_BYTES), or None."""
    limit = MAX_UPLOAD_BYTES if limit is None else limit
    if size > limit:
        return f"the upload is {mb(size)}, more than the {mb(limit)} allowed"
    return None


def model_size_problem(size: int, limit: int | None = None) -> str | None:
    """Why an uploaded model of `size` bytes is refused (above `limit`, default
    MAX_MODEL_UPLOAD_BYTES), or None."""
    limit = MAX_MODEL_UPLOAD_BYTES if limit is None else limit
    if size > limit:
        return (f"the file is {size / 2**20:,.1f} MB, more than the {limit / 2**20:,.0f} MB "
                "allowed for a model")
    return None


def archive_problem(sizes: list[tuple[str, int, int]], *, max_members: int | None = None,
                    max_bytes: int | None = None) -> str | None:
    """Why an archive must not be opened, or None. `sizes`: (name, expanded size, compressed
    size) per member (compressed 0 when unknown). Too many members, too much content in all,
    or a member that expands far more than real data does (a zip bomb) are refused before
    anything is decompressed; zipfile never reads past a member's declared size."""
    max_members = MAX_ARCHIVE_MEMBERS if max_members is None else max_members
    max_bytes = MAX_EXPANDED_BYTES if max_bytes is None else max_bytes
    if len(sizes) > max_members:
        return f"the archive holds {len(sizes):,} files, more than the {max_members:,} allowed"
    total = sum(size for _, size, _ in sizes)
    if total > max_bytes:
        return (f"the archive expands to {mb(total)}, more than the {mb(max_bytes)} allowed "
                "(a zip bomb?)")
    for name, size, packed in sizes:
        if size > 2**20 and packed and size > MAX_COMPRESSION_RATIO * packed:
            return (f"{name} expands {size // packed:,} times ({mb(packed)} to {mb(size)}), "
                    "far more than real data (a zip bomb?)")
    return None



class TooSlow(Exception):
    """`run_within`'s function did not finish in time."""


def run_within(fn: Callable[[], Any], seconds: float) -> Any:
    """`fn()`'s result, run in a daemon thread so an untrusted model that computes for ever
    is refused on time (its computation finishes unseen); TooSlow after `seconds`, and
    whatever `fn` raised is raised here."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = fn()
        except Exception as exc:  # noqa: BLE001 - handed to the caller
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="fer-model-trial", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise TooSlow(f"more than {seconds:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]

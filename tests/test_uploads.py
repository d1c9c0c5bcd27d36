"""fer_core.uploads: an upload above the size limit is refused before it is parsed or saved."""

from __future__ import annotations

import pytest

from fer_core import paths, uploads
from fer_core.data import DataError, load_dataset, save_upload
from sample_files import training_csv

pytestmark = pytest.mark.usefixtures("fer_dirs")


def test_upload_size_limit(monkeypatch) -> None:
    """Bad input / uploads: above the limit an upload is refused before it is parsed or
    saved, with the sizes in the message."""
    monkeypatch.setattr(uploads, "MAX_UPLOAD_BYTES", 10_000)
    content = training_csv(4)  # ~37 KB
    with pytest.raises(DataError, match=r"upload:big.csv: the upload is 0.0 MB, more than"):
        load_dataset(content, name="big.csv")
    with pytest.raises(DataError, match="more than the 0.0 MB allowed"):
        save_upload(content, "big.csv")
    assert not paths.uploads_dir().exists() or not list(paths.uploads_dir().iterdir())
    monkeypatch.setattr(uploads, "MAX_UPLOAD_BYTES", len(content))
    assert len(load_dataset(content, name="ok.csv")) == 4


"""fer_core.data.archives: zip, tar and gzip uploads and image folders with hostile content:
member and expansion limits, zip and gzip bombs, member paths pointing outside, files that
are not images or do not decode, image bit depths."""

from __future__ import annotations

import gzip
import io
import tarfile
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fer_core import uploads
from fer_core.data import DataError, load_dataset
from fer_core.labels import EMOTIONS
from sample_files import ROW, lines_csv, png, raises_data_error, training_csv, tree, zip_bytes

pytestmark = pytest.mark.usefixtures("fer_dirs")


# =========================================================== limits and bombs


def test_zip_with_too_many_members(monkeypatch) -> None:
    """Bad input / uploads: a zip holding more files than the limit is refused unread."""
    monkeypatch.setattr(uploads, "MAX_ARCHIVE_MEMBERS", 50)
    members = {f"train/happy/{i}.png": png(i) for i in range(51)}
    with pytest.raises(DataError, match=r"the archive holds 51 files, more than the 50 allowed"):
        load_dataset(zip_bytes(members), name="many.zip")
    del members["train/happy/0.png"]
    assert len(load_dataset(zip_bytes(members), name="many.zip")) == 50


def test_zip_bomb_is_refused_before_it_is_decompressed() -> None:
    """Bad input / uploads: 64 MB of CSV-looking text packed into ~60 KB (ratio ~1,000) is
    refused from the zip's directory alone; reading it would take 64 MB."""
    bomb = zip_bytes({"fer2013.csv": b"emotion,pixels,Usage\n" + b"0" * (64 * 2**20)})
    assert len(bomb) < 200_000
    start = time.perf_counter()
    with pytest.raises(DataError, match=r"fer2013.csv expands [\d,]+ times .*zip bomb"):
        load_dataset(bomb, name="bomb.zip")
    assert time.perf_counter() - start < 1.0  # refused, not decompressed


def test_archives_whose_content_is_too_large(monkeypatch) -> None:
    """Bad input / uploads: a zip, tar or gzip whose content exceeds MAX_EXPANDED_BYTES."""
    monkeypatch.setattr(uploads, "MAX_EXPANDED_BYTES", 100_000)
    content = training_csv(8)  # ~75 KB each
    with pytest.raises(DataError, match=r"the archive expands to 0.1 MB, more than"):
        load_dataset(zip_bytes({"a.csv": content, "b.csv": content}, zipfile.ZIP_STORED), name="x.zip")
    with pytest.raises(DataError, match=r"gzip file expands to more than .*gzip bomb"):
        load_dataset(gzip.compress(content + content), name="x.csv.gz")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in ("a.csv", "b.csv"):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    with pytest.raises(DataError, match=r"the archive expands to"):
        load_dataset(buf.getvalue(), name="x.tar")
    assert len(load_dataset(gzip.compress(content), name="one.csv.gz")) == 8
    with pytest.raises(DataError, match=r"not a readable gzip file \(truncated\)"):
        load_dataset(gzip.compress(content)[:-100], name="cut.csv.gz")



def test_a_small_gzip_of_short_lines_is_refused_as_a_bomb(tmp_path) -> None:
    """A ~64 KB .csv.gz expanding to 32 MB of "1,2" lines took 4.6 GB (or died of
    _ArrayMemoryError); now the archives' ratio limit refuses it before parsing."""
    packed = gzip.compress(lines_csv(*["1,2"] * (8 * 2**20)), 9)
    assert len(packed) < 100_000
    path = tmp_path / "short.csv.gz"
    path.write_bytes(packed)
    for load in (lambda: load_dataset(path), lambda: load_dataset(packed, name="s.csv.gz")):
        err = raises_data_error(load)
        assert "gzip bomb" in str(err) and "200 times" in str(err)
    real = gzip.compress(lines_csv(ROW, ROW))  # a real file packs far less than 200 times
    assert len(load_dataset(real, name="ok.csv.gz")) == 2



# =============================================================== member paths


def test_archive_member_paths_never_write_outside(tmp_path, monkeypatch) -> None:
    """Bad input / uploads: absolute and `..` member paths in zips and tars (and a symlink
    member) are read in memory: nothing is written anywhere but the cache folder."""
    work = tmp_path / "work" / "deep"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    before = tree(tmp_path)
    csv_zip = zip_bytes({"../../escape.csv": training_csv(3), "/tmp/abs-escape.csv": b"x"})
    assert len(load_dataset(csv_zip, name="evil.zip", use_cache=False)) == 3
    images_zip = zip_bytes({"../train/happy/a.png": png(1), "/abs/train/sad/b.png": png(2),
                       "../../../../../../etc/train/angry/c.png": png(3)})
    ds = load_dataset(images_zip, name="evil-images.zip", use_cache=False)
    assert sorted(ds.labels.tolist()) == sorted(EMOTIONS.index(e) for e in ("happy", "sad", "angry"))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        content = training_csv(2)
        info = tarfile.TarInfo("../../fer2013.csv")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
        link = tarfile.TarInfo("link.csv")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    assert len(load_dataset(buf.getvalue(), name="evil.tar.gz", use_cache=False)) == 2
    assert tree(tmp_path) == before
    assert not Path("/tmp/abs-escape.csv").exists() and not Path("/abs").exists()



# ===================================================================== images


def test_non_images_and_undecodable_images_among_images(tmp_path) -> None:
    """Bad input / uploads: text and PDFs next to the images are ignored; files named like
    images that do not decode (garbage, empty, truncated, a decompression bomb) are named,
    counted, and skippable."""
    one_pixel = png(0, (1, 1))
    ihdr = b"IHDR" + (65_536).to_bytes(4, "big") * 2 + one_pixel[24:29]  # claims 65,536^2 pixels
    bomb = one_pixel[:12] + ihdr + zlib.crc32(ihdr).to_bytes(4, "big") + one_pixel[33:]
    members = {
        "train/happy/ok.png": png(10), "train/sad/ok.png": png(20),
        "test/fear/ok.png": png(30), "notes.txt": b"hello", "train/happy/doc.pdf": b"%PDF-1.4",
        "train/happy/garbage.png": b"not an image at all",
        "train/sad/empty.jpg": b"",
        "train/angry/cut.png": png(40, (200, 200))[:60],
        "train/angry/bomb.png": bomb,
    }
    for archive in (True, False):
        if archive:
            source, kw = zip_bytes(members), {"name": "mixed.zip"}
        else:
            folder = tmp_path / "mixed"
            for rel, content in members.items():
                (folder / rel).parent.mkdir(parents=True, exist_ok=True)
                (folder / rel).write_bytes(content)
            source, kw = folder, {}
        with pytest.raises(DataError) as err:
            load_dataset(source, use_cache=False, **kw)
        text = str(err.value)
        assert err.value.count == 4 and "4 bad in all (4 unreadable image)" in text, text
        named = [n for n in ("garbage.png", "empty.jpg", "cut.png", "bomb.png")
                 if f"{n}: unreadable image" in text]
        assert len(named) == 1, text  # the first bad file, with what is wrong with it
        ds = load_dataset(source, skip_bad=True, use_cache=False, **kw)
        assert len(ds) == 3 and ds.skipped == 4
        assert sum("unreadable image" in p for p in ds.problems) >= 1



def _image_bytes(array: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, fmt)
    return buf.getvalue()


@pytest.mark.parametrize(("name", "array", "expected"), [
    ("deep.png", np.full((48, 48), 30000, np.uint16), 30000 / 257),
    ("unit.tif", np.full((48, 48), 0.5, np.float32), 127.5),
    ("byte.tif", np.full((48, 48), 200.0, np.float32), 200),
    ("plain.png", np.full((48, 48), 77, np.uint8), 77),
])
def test_image_bit_depths_are_scaled_not_clipped(tmp_path, name, array, expected) -> None:
    """16-bit PNGs loaded as white (255) and float TIFFs as black (0)."""
    happy = tmp_path / "faces" / "train" / "happy"
    happy.mkdir(parents=True)
    (happy / name).write_bytes(_image_bytes(array, "PNG" if name.endswith("png") else "TIFF"))
    ds = load_dataset(tmp_path / "faces")
    assert abs(float(ds.images.mean()) - expected) <= 1


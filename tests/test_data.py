"""fer_core.data: the CSV / image-folder loaders, their error messages, the cache, the config."""

from __future__ import annotations

import gzip
import io
import re
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from fer_core import data
from fer_core.data import (
    DataError,
    FerDataset,
    csv_format,
    load_dataset,
    resolve_source,
    split_dataset,
)
from fer_core.labels import EMOTIONS, FER2013_COUNTS, NUM_PIXELS, SPLITS
from sample_files import csv_bytes, faces

REAL_CSV = Path(__file__).resolve().parents[1].parent / "shared/fer2013/fer2013.csv.gz"


pytestmark = pytest.mark.usefixtures("fer_dirs")


def _write(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def _assert_same(ds: FerDataset, images, labels, usage) -> None:
    assert ds.images.dtype == np.uint8 and ds.images.shape == images.shape
    assert ds.labels.dtype == np.int64
    np.testing.assert_array_equal(ds.images, images)
    np.testing.assert_array_equal(ds.labels, labels)
    np.testing.assert_array_equal(ds.usage, usage)


# --- round trips ---------------------------------------------------------------------------


def test_csv_round_trip_keeps_all_three_splits(tmp_path) -> None:
    images, labels, usage = faces()
    ds = load_dataset(_write(tmp_path, "fer.csv", csv_bytes(images, labels, usage)))
    _assert_same(ds, images, labels, usage)
    assert ds.splits() == list(SPLITS)  # PrivateTest rows are kept
    assert not ds.synthetic and ds.skipped == 0 and ds.problems == ()
    counts = ds.counts()
    assert sum(sum(c.values()) for c in counts.values()) == 30
    assert counts["PrivateTest"]["angry"] == int(((labels == 0) & (usage == "PrivateTest")).sum())


@pytest.mark.parametrize("form", ["gz", "zip", "tar.gz", "bytes-csv", "bytes-gz", "bytes-zip",
                                  "crlf", "quoted", "no-final-newline", "blank-lines",
                                  "reordered"])
def test_csv_forms(tmp_path, form: str) -> None:
    images, labels, usage = faces(12, seed=1)
    text = csv_bytes(images, labels, usage)
    if form == "gz":
        ds = load_dataset(_write(tmp_path, "fer.csv.gz", gzip.compress(text)))
    elif form == "zip":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("notes.csv", "a,b\n1,2\n")
            zf.writestr("fer2013/fer2013.csv", text)
        ds = load_dataset(_write(tmp_path, "fer.zip", buf.getvalue()))
    elif form == "tar.gz":  # Kaggle's own download: fer2013.tar.gz holding fer2013/fer2013.csv
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            info = tarfile.TarInfo("fer2013/fer2013.csv")
            info.size = len(text)
            tar.addfile(info, io.BytesIO(text))
        ds = load_dataset(_write(tmp_path, "fer2013.tar.gz", buf.getvalue()))
        assert ds.source.endswith("fer2013.tar.gz")
    elif form.startswith("bytes"):
        kind = form.split("-")[1]
        content = {"csv": text, "gz": gzip.compress(text)}.get(kind)
        if kind == "zip":
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as zf:
                zf.writestr("fer2013.csv", text)
            content = buf.getvalue()
        ds = load_dataset(content, name=f"mine.{kind}")
        assert ds.source == f"upload:mine.{kind}"
    elif form == "crlf":
        ds = load_dataset(_write(tmp_path, "f.csv", csv_bytes(images, labels, usage, eol="\r\n")))
    elif form == "quoted":
        lines = [b'"emotion","pixels","Usage"'] + [
            f'{lab},"{" ".join(map(str, img.ravel()))}","{u}"'.encode()
            for img, lab, u in zip(images, labels, usage)
        ]
        ds = load_dataset(_write(tmp_path, "f.csv", b"\n".join(lines) + b"\n"))
    elif form == "no-final-newline":
        ds = load_dataset(_write(tmp_path, "f.csv", text.rstrip(b"\n")))
    elif form == "blank-lines":
        ds = load_dataset(_write(tmp_path, "f.csv", text.replace(b"\n", b"\n\n", 3) + b"\n\n"))
    else:  # columns in another order, with an extra one
        lines = ["Usage,id,pixels,emotion"] + [
            f"{u},{i},{' '.join(map(str, img.ravel()))},{lab}"
            for i, (img, lab, u) in enumerate(zip(images, labels, usage))
        ]
        ds = load_dataset(_write(tmp_path, "f.csv", "\n".join(lines).encode()))
    _assert_same(ds, images, labels, usage)


def test_no_usage_column_gives_one_split_and_a_seeded_split(tmp_path) -> None:
    images, labels, _ = faces(70)
    ds = load_dataset(_write(tmp_path, "f.csv", csv_bytes(images, labels)))
    assert ds.splits() == ["Training"] and len(ds) == 70
    parts = split_dataset(ds, val_fraction=0.2, test_fraction=0.1, seed=5)
    again = split_dataset(ds, val_fraction=0.2, test_fraction=0.1, seed=5)
    other = split_dataset(ds, val_fraction=0.2, test_fraction=0.1, seed=6)
    np.testing.assert_array_equal(parts.images, again.images)
    assert not np.array_equal(parts.images, other.images)
    counts = parts.counts()
    assert [sum(counts[s].values()) for s in SPLITS] == [49, 14, 7]
    assert all(counts["PublicTest"][e] == 2 for e in EMOTIONS)  # stratified: 20 % of 10
    images_view, _ = parts.split("PublicTest")
    assert np.shares_memory(images_view, parts.images)  # contiguous splits
    with pytest.raises(ValueError):
        split_dataset(ds, val_fraction=0.6, test_fraction=0.5)


def _image_bytes(value: int, size: tuple[int, int], mode: str, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, (value,) * len(mode) if mode != "L" else value).save(buf, fmt)
    return buf.getvalue()


def _image_tree() -> dict[str, bytes]:
    return {
        "train/Angry/a.png": _image_bytes(10, (48, 48), "L", "PNG"),
        "train/HAPPY/b.jpg": _image_bytes(200, (96, 80), "RGB", "JPEG"),
        "train/happy/c.png": _image_bytes(50, (48, 48), "RGBA", "PNG"),
        "test/sad/d.png": _image_bytes(120, (30, 30), "L", "PNG"),
        "test/neutral/e.bmp": _image_bytes(90, (48, 48), "RGB", "BMP"),
        "README.txt": b"not an image",
    }


def _check_image_dataset(ds: FerDataset) -> None:
    assert ds.images.shape == (5, 48, 48) and ds.images.dtype == np.uint8
    assert ds.counts()["Training"] == {**dict.fromkeys(EMOTIONS, 0), "angry": 1, "happy": 2}
    assert ds.counts()["PublicTest"] == {**dict.fromkeys(EMOTIONS, 0), "sad": 1, "neutral": 1}
    train, _ = ds.split("Training")
    assert int(train[0].mean()) == 10  # grey kept as is
    assert abs(int(ds.images[ds.labels == EMOTIONS.index("sad")][0].mean()) - 120) <= 1


def test_image_folder_edition(tmp_path) -> None:
    for rel, content in _image_tree().items():
        (tmp_path / "fer" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "fer" / rel).write_bytes(content)
    _check_image_dataset(load_dataset(tmp_path / "fer"))


def test_image_zip_edition_with_a_top_folder(tmp_path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for rel, content in _image_tree().items():
            zf.writestr(f"archive/{rel}", content)
        zf.writestr("__MACOSX/archive/train/angry/._a.png", b"junk")
    _check_image_dataset(load_dataset(_write(tmp_path, "images.zip", buf.getvalue())))


def test_unreadable_image_is_named_and_can_be_skipped(tmp_path) -> None:
    tree = _image_tree() | {"train/fear/broken.png": b"\x89PNG not really"}
    for rel, content in tree.items():
        (tmp_path / "fer" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "fer" / rel).write_bytes(content)
    with pytest.raises(DataError, match=r"train/fear/broken.png.*unreadable image") as err:
        load_dataset(tmp_path / "fer")
    assert err.value.count == 1
    ds = load_dataset(tmp_path / "fer", skip_bad=True)
    assert len(ds) == 5 and ds.skipped == 1 and "broken.png" in ds.problems[0]


# --- bad input -----------------------------------------------------------------------------


def _bad_csv(tmp_path: Path, edit) -> Path:
    images, labels, usage = faces(20, seed=2)
    lines = csv_bytes(images, labels, usage).decode().split("\n")
    edit(lines)
    return _write(tmp_path, "bad.csv", "\n".join(lines).encode())


def _set_field(lines: list[str], row: int, column: int, value: str) -> None:
    fields = lines[row - 1].split(",")
    fields[column] = value
    lines[row - 1] = ",".join(fields)


def _set_pixel(lines: list[str], row: int, position: int, value: str) -> None:
    fields = lines[row - 1].split(",")
    tokens = fields[1].split(" ")
    tokens[position - 1] = value
    fields[1] = " ".join(tokens)
    lines[row - 1] = ",".join(fields)


def _drop_last_pixel(lines: list[str], row: int) -> None:
    _set_field(lines, row, 1, " ".join(lines[row - 1].split(",")[1].split()[:-1]))


def _pixel_case(row: int, position: int, value: str, message: str) -> tuple:
    """A BAD_CASES entry: the pixel at `position` of `row` set to `value`, one bad row."""
    return (lambda ls: _set_pixel(ls, row, position, value), row, "pixels", message, 1)


def _field_case(row: int, column: int, value: str, name: str, message: str) -> tuple:
    """A BAD_CASES entry: field `column` (named `name`) of `row` set to `value`, one bad row."""
    return (lambda ls: _set_field(ls, row, column, value), row, name, message, 1)


BAD_CASES = {
    "short row": (lambda ls: [_drop_last_pixel(ls, r) for r in (5, 9)], 5, "pixels",
                  r"2,303 pixel values, expected 2,304", 2),
    "long row": (lambda ls: _set_field(ls, 7, 1, ls[6].split(",")[1] + " 4"), 7, "pixels",
                 r"2,305 pixel values, expected 2,304", 1),
    "non-numeric": _pixel_case(4, 17, "abc",
                               r"pixel value 'abc' at position 17 is not a whole number"),
    "decimal": _pixel_case(4, 3, "12.5", r"'12.5' at position 3 is not a whole number"),
    "above 255": _pixel_case(6, 2, "256", r"'256' at position 2 is outside 0-255"),
    "four digits": _pixel_case(6, 9, "1000", r"'1000' at position 9 is outside 0-255"),
    "negative": _pixel_case(3, 5, "-4", r"'-4' at position 5 is outside 0-255"),
    "label 7": (lambda ls: [_set_field(ls, r, 0, "7") for r in (2, 3, 4)], 2, "emotion",
                r"label '7' is not an integer 0-6", 3),
    "label text": _field_case(8, 0, "happy", "emotion", r"label 'happy' is not an integer 0-6"),
    "label empty": _field_case(8, 0, "", "emotion", r"label '' is not an integer 0-6"),
    "unknown usage": _field_case(
        10, 2, "Validation", "Usage",
        r"Usage 'Validation' is not one of Training, PublicTest, PrivateTest"),
    "missing field": (lambda ls: ls.__setitem__(11, ls[11].rsplit(",", 1)[0]), 12, None,
                      r"2 fields, expected 3", 1),
}


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_rows_are_named_counted_and_skippable(tmp_path, case: str) -> None:
    edit, row, column, message, count = BAD_CASES[case]
    path = _bad_csv(tmp_path, edit)
    with pytest.raises(DataError) as err:
        load_dataset(path)
    text = str(err.value)
    assert "bad.csv" in text and f"row {row}" in text, text
    assert err.value.row == row and err.value.column == column and err.value.count == count
    assert err.value.source == str(path)
    assert re.search(message, text), text
    assert f"{count:,} bad rows in all" in text
    ds = load_dataset(path, skip_bad=True)
    assert len(ds) == 20 - count and ds.skipped == count
    assert any(f"skipped {count:,} rows" in p and f"row {row}" in p for p in ds.problems)


def test_mixed_problems_are_all_counted(tmp_path) -> None:
    def edit(lines):
        _set_pixel(lines, 3, 1, "x")
        _set_field(lines, 5, 0, "9")
        _set_field(lines, 6, 2, "Test")

    with pytest.raises(DataError) as err:
        load_dataset(_bad_csv(tmp_path, edit))
    assert err.value.row == 3 and err.value.count == 3
    assert "1 label not an integer 0-6" in str(err.value)
    assert "1 unknown Usage value" in str(err.value)


def test_tabs_between_pixels_are_accepted(tmp_path) -> None:
    images, labels, usage = faces(5)
    text = csv_bytes(images, labels, usage).replace(b" ", b"\t", 50)
    _assert_same(load_dataset(_write(tmp_path, "t.csv", text)), images, labels, usage)


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.csv", b"", "the file is empty"),
        ("spaces.csv", b"  \n\n", "the file is empty"),
        ("header.csv", b"emotion,pixels,Usage\n", "no data rows after the header"),
        ("renamed.csv", b"emotion,pixel,Usage\n0,1 2,Training\n",
         r"row 1: missing column 'pixels': expected a header row 'emotion,pixels,Usage', "
         r"found 'emotion', 'pixel', 'Usage'"),
        ("noheader.csv", b"0,1 2 3,Training\n", "missing columns 'emotion' and 'pixels'"),
        ("picture.csv", _image_bytes(1, (8, 8), "L", "PNG"), "not a CSV file"),
        ("latin.csv", b"\xff\xfe\xfa,\xe9\n", "not a CSV file"),
        ("broken.csv.gz", b"\x1f\x8b\x08\x00garbage", "not a readable gzip file"),
        ("broken.zip", b"PK\x03\x04garbage", "not a readable zip file"),
    ],
)
def test_bad_files(tmp_path, name: str, content: bytes, message: str) -> None:
    path = _write(tmp_path, name, content)
    with pytest.raises(DataError, match=message) as err:
        load_dataset(path)
    assert str(err.value).startswith(str(path))
    with pytest.raises(DataError, match=message):
        load_dataset(content, name=name)  # the same bytes uploaded


def test_zip_without_csv_or_images(tmp_path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("notes.txt", "hello")
    with pytest.raises(DataError, match="the zip holds no CSV file and no images"):
        load_dataset(_write(tmp_path, "x.zip", buf.getvalue()))


def test_images_outside_class_folders(tmp_path) -> None:
    (tmp_path / "imgs" / "train" / "contempt").mkdir(parents=True)
    (tmp_path / "imgs" / "train" / "contempt" / "a.png").write_bytes(
        _image_bytes(5, (48, 48), "L", "PNG")
    )
    with pytest.raises(DataError, match=r"train/contempt/a.png: not in a class folder"):
        load_dataset(tmp_path / "imgs")


def test_missing_path_mentions_demo() -> None:
    with pytest.raises(DataError, match="no such file or folder.*'demo'"):
        load_dataset("no_such_dataset")


# --- cache ---------------------------------------------------------------------------------


def test_second_load_comes_from_the_cache(tmp_path, monkeypatch, fer_dirs) -> None:
    images, labels, usage = faces()
    path = _write(tmp_path, "fer.csv", csv_bytes(images, labels, usage))
    first = load_dataset(path)
    assert list((fer_dirs.cache / "datasets").iterdir())

    def no_parsing(*args, **kwargs):
        raise AssertionError("parsed again instead of using the cache")

    monkeypatch.setattr(csv_format, "parse_csv_bytes", no_parsing)
    second = load_dataset(path)
    _assert_same(second, first.images, first.labels, first.usage)
    assert second.source == str(path)
    with pytest.raises(AssertionError, match="parsed again"):
        load_dataset(path, use_cache=False)
    # A changed file (new size and mtime) is parsed again.
    _write(tmp_path, "fer.csv", csv_bytes(images[:10], labels[:10], usage[:10]))
    with pytest.raises(AssertionError, match="parsed again"):
        load_dataset(path)


def test_cache_keeps_skipped_rows_and_problems(tmp_path) -> None:
    path = _bad_csv(tmp_path, lambda ls: _set_field(ls, 4, 0, "8"))
    first = load_dataset(path, skip_bad=True)
    second = load_dataset(path, skip_bad=True)
    assert second.skipped == first.skipped == 1 and second.problems == first.problems
    with pytest.raises(DataError):  # skip_bad is part of the key
        load_dataset(path)


def test_uploads_are_cached_by_content_and_saved(tmp_path) -> None:
    images, labels, usage = faces()
    content = csv_bytes(images, labels, usage)
    saved = data.save_upload(content, "my fer.csv")
    assert saved.read_bytes() == content and saved.name.endswith("my_fer.csv")
    assert data.save_upload(content, "my fer.csv") == saved
    _assert_same(load_dataset(content, name="x.csv"), images, labels, usage)
    _assert_same(load_dataset(saved), images, labels, usage)


# --- configuration -------------------------------------------------------------------------


def test_resolve_source_precedence(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FER2013_CSV", raising=False)
    assert resolve_source() == "demo"
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "fer2013.csv").write_text("emotion,pixels\n")
    assert resolve_source() == "data/fer2013.csv"
    monkeypatch.setenv("FER2013_CSV", "/somewhere/fer.csv")
    assert resolve_source() == "/somewhere/fer.csv"
    assert resolve_source("demo") == "demo"
    assert load_dataset(" Demo ").synthetic


# --- the real file -------------------------------------------------------------------------


@pytest.mark.skipif(not REAL_CSV.exists(), reason=f"{REAL_CSV} not present")
def test_real_fer2013_counts() -> None:
    ds = load_dataset(REAL_CSV, use_cache=False)
    assert ds.images.shape[1:] == (48, 48) and ds.skipped == 0
    counts = ds.counts()
    for split in ("Training", "PublicTest"):
        assert tuple(counts[split].values()) == FER2013_COUNTS[split], split
    assert len(ds) == sum(map(sum, (FER2013_COUNTS["Training"], FER2013_COUNTS["PublicTest"])))
    assert ds.images.std() > 30 and NUM_PIXELS == ds.images[0].size


def test_many_small_chunks_give_the_same_result(tmp_path, monkeypatch) -> None:
    """The parser works on chunks of whole lines; tiny chunks must not change anything."""
    images, labels, usage = faces(40, seed=4)
    text = csv_bytes(images, labels, usage)
    monkeypatch.setattr(csv_format, "_CHUNK_BYTES", 3000)  # about one line per chunk
    _assert_same(data.parse_csv_bytes(text, "t"), images, labels, usage)
    lines = text.decode().split("\n")
    _set_pixel(lines, 30, 2304, "300")
    _set_field(lines, 12, 0, "x")
    with pytest.raises(DataError) as err:
        data.parse_csv_bytes("\n".join(lines).encode(), "t")
    assert err.value.row == 12 and err.value.count == 2
    ds = data.parse_csv_bytes("\n".join(lines).encode(), "t", skip_bad=True)
    keep = np.ones(40, dtype=bool)
    keep[[10, 28]] = False
    _assert_same(ds, images[keep], labels[keep], usage[keep])


_FUZZ_BASE = csv_bytes(*faces(4, seed=9))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(_FUZZ_BASE) - 1), st.sampled_from(range(3)),
                          st.sampled_from(b'0123456789 ,\n\r"-.aZ\t\xff\x00')),
                min_size=1, max_size=6),
       st.booleans())
def test_damaged_files_load_or_raise_data_error(edits, skip_bad: bool) -> None:
    """Whatever the damage (a byte changed, inserted or deleted anywhere, header included),
    the parser either loads 48x48 faces or raises DataError: never anything else."""
    content = bytearray(_FUZZ_BASE)
    for position, op, byte in edits:
        position = min(position, len(content) - 1)
        if op == 0:
            content[position] = byte
        elif op == 1:
            content.insert(position, byte)
        else:
            del content[position]
    try:
        ds = data.parse_csv_bytes(bytes(content), "fuzz.csv", skip_bad=skip_bad)
    except DataError as exc:
        assert str(exc).startswith("fuzz.csv")
    else:
        assert ds.images.shape[1:] == (48, 48) and len(ds) == len(ds.labels) == len(ds.usage)
        assert ds.labels.min() >= 0 and ds.labels.max() <= 6

"""Reliability and security: bad input, injected faults, concurrency, untrusted files.

Each test names the case of the issue it covers; the cases already covered elsewhere (the
SIGKILL-and-resume job, racing Start buttons, the byte-level CSV fuzz) are extended or
referred to there. Everything runs on tiny data: a few seconds a test, the 2,000-frame live
test about a minute on a busy machine.
"""

from __future__ import annotations

import errno
import gzip
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
import tomllib
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import fer_core  # noqa: F401  (CPU flags before TensorFlow loads)
from fer_core import catalog, paths, runs, uploads
from fer_core.config import FIELD_NAMES, ConfigError, TrainConfig
from fer_core.data import DataError, archives, load_dataset, parse_csv_bytes, save_upload
from fer_core.labels import EMOTIONS, SPLITS

REPO = Path(__file__).resolve().parents[1]
PIXELS = 48 * 48


@pytest.fixture(autouse=True)
def _private_folders(tmp_path_factory, monkeypatch) -> None:
    """Every test writes its cache and runs under its own temporary folders."""
    monkeypatch.setenv("FER_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("FER_RUNS_DIR", str(tmp_path_factory.mktemp("runs")))


def _tree(folder: Path) -> dict[str, int]:
    """Every file under `folder` with its size: to show that nothing was written there."""
    return {p.relative_to(folder).as_posix(): p.stat().st_size
            for p in folder.rglob("*") if p.is_file()}


# =========================================================================== bad input: CSV


def _rows_text(images: np.ndarray, labels, usage, *, order=(0, 1, 2), quote=False,
               extra: bool = False) -> list[str]:
    """Header and data lines of a FER CSV with columns in `order` (0 emotion, 1 pixels,
    2 Usage; usage=None leaves Usage out), optionally quoted, optionally with an id column."""
    names = ["emotion", "pixels", "Usage"]
    cols = [c for c in order if usage is not None or c != 2]
    q = (lambda s: f'"{s}"') if quote else (lambda s: s)
    header = [q(names[c]) for c in cols] + (["id"] if extra else [])
    lines = [",".join(header)]
    for i, (img, lab) in enumerate(zip(images, labels, strict=True)):
        values = [str(int(lab)), " ".join(map(str, img.ravel().tolist())),
                  usage[i] if usage is not None else ""]
        lines.append(",".join([q(values[c]) for c in cols] + ([str(i)] if extra else [])))
    return lines


@st.composite
def valid_csvs(draw) -> tuple[bytes, np.ndarray, np.ndarray, np.ndarray]:
    """A random valid FER CSV in any of the accepted spellings, and what it must load as."""
    n = draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    images = rng.integers(0, 256, (n, 48, 48), dtype=np.uint8)
    images[0, 0, :3] = draw(st.sampled_from([(0, 255, 9), (10, 99, 100), (255, 0, 1)]))
    labels = np.array(draw(st.lists(st.integers(0, 6), min_size=n, max_size=n)))
    has_usage = draw(st.booleans())
    usage = (np.array(draw(st.lists(st.sampled_from(SPLITS), min_size=n, max_size=n)))
             if has_usage else None)
    order = draw(st.permutations([0, 1, 2]))
    lines = _rows_text(images, labels, usage, order=order, quote=draw(st.booleans()),
                       extra=draw(st.booleans()))
    for _ in range(draw(st.integers(0, 3))):  # blank lines anywhere after the header
        lines.insert(draw(st.integers(1, len(lines))), draw(st.sampled_from(["", " ", "\t"])))
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    text = eol.join(lines) + (eol if draw(st.booleans()) else "")
    content = (b"\xef\xbb\xbf" if draw(st.booleans()) else b"") + text.encode()
    usage = usage if usage is not None else np.full(n, SPLITS[0])
    # The loader makes each split contiguous (SPLITS order), keeping the order within one.
    order_of_rows = np.argsort([SPLITS.index(u) for u in usage], kind="stable")
    return content, images[order_of_rows], labels[order_of_rows], usage[order_of_rows]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_csvs())
def test_random_valid_csv_files_round_trip_exactly(case) -> None:
    """Bad input / CSV: any valid file (LF or CRLF, BOM, quotes, blank lines, columns in any
    order, an extra column, no Usage column) loads to exactly the rows written."""
    content, images, labels, usage = case
    ds = parse_csv_bytes(content, "valid.csv")
    np.testing.assert_array_equal(ds.images, images)
    np.testing.assert_array_equal(ds.labels, labels)
    np.testing.assert_array_equal(ds.usage, usage)
    assert ds.skipped == 0 and ds.images.dtype == np.uint8


# Junk that cannot pass for a pixel value or a separator: printable ASCII other than digits,
# commas and quotes, and bytes above 127 (whitespace could be a legitimate separator).
_JUNK_BYTES = [c for c in range(0x21, 0x100) if c != 0x7F and c not in b'0123456789,"']
_JUNK = st.lists(st.sampled_from(_JUNK_BYTES), min_size=1, max_size=8).map(bytes)
ANY_COLUMN = "any"  # a truncated row may lack any field: only the row is predictable


@st.composite
def corrupted_csvs(draw) -> tuple[str, bytes, int | None, str | None, bytes]:
    """A valid 2-6 row file damaged in one way; returns (kind, damaged bytes, the row the
    error must name (None: the whole file), the column it must name, the original)."""
    n = draw(st.integers(2, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    images = rng.integers(0, 256, (n, 48, 48), dtype=np.uint8)
    usage = np.array([SPLITS[0]] * n)
    lines = _rows_text(images, np.arange(n) % 7, usage)
    original = ("\n".join(lines) + "\n").encode()
    kind = draw(st.sampled_from(["truncate", "swap", "swap-usage", "junk", "nul", "utf16",
                                 "latin1", "huge", "huge-token", "header-again", "missing",
                                 "crlf-bom-quotes", "blank"]))
    r = draw(st.integers(1, n))  # the damaged data line (row r + 1: the header is row 1)
    fields = lines[r].split(",")
    expect_row, column = r + 1, None
    if kind == "truncate":
        cut = draw(st.integers(len(lines[0]) + 1, len(original) - 1))
        damaged = original[:cut]
        complete = damaged.endswith(b"\n") or original[cut:cut + 1] == b"\n"
        expect_row = None if complete else damaged.count(b"\n") + 1
        return kind, damaged, expect_row, ANY_COLUMN, original
    if kind == "swap":
        lines[r] = ",".join([fields[1], fields[0], fields[2]])
        column = "emotion"
    elif kind == "swap-usage":
        lines[r] = ",".join([fields[0], fields[2], fields[1]])
        column = "pixels"
    elif kind == "junk":
        where = draw(st.sampled_from([0, 1, 2]))
        junk = draw(_JUNK).decode("latin-1")
        value = fields[where]
        at = draw(st.integers(0, len(value)))
        fields[where] = value[:at] + junk + value[at:]
        lines[r] = ",".join(fields)
        column = ["emotion", "pixels", "Usage"][where]
        damaged = "\n".join(lines).encode("latin-1") + b"\n"
        return kind, damaged, expect_row, column, original
    elif kind == "nul":
        at = draw(st.integers(0, len(original) - 1))
        return kind, original[:at] + b"\x00" + original[at:], None, None, original
    elif kind == "utf16":
        return kind, original.decode().encode(draw(st.sampled_from(["utf-16", "utf-16-le"]))), \
            None, None, original
    elif kind == "latin1":
        lines[r] = ",".join([fields[0], fields[1], "Trainingé"])
        return kind, ("\n".join(lines) + "\n").encode("latin-1"), expect_row, "Usage", original
    elif kind == "huge":
        lines[r] = ",".join([fields[0], " ".join(["7"] * 200_000), fields[2]])
        column = "pixels"
    elif kind == "huge-token":
        lines[r] = ",".join([fields[0], "7" * 2_000_000, fields[2]])
        column = "pixels"
    elif kind == "header-again":
        lines[r] = lines[0]
        column = "emotion"
    elif kind == "missing":
        lines[r] = ",".join(fields[:2])
    elif kind == "crlf-bom-quotes":
        lines[r] = ",".join(f'"{f}"' for f in fields)
        return kind, b"\xef\xbb\xbf" + ("\r\n".join(lines) + "\r\n").encode(), None, None, original
    else:  # blank lines of every sort between rows
        lines.insert(r, draw(st.sampled_from(["", "\r", "  ", "\t \r"])))
        return kind, ("\n".join(lines) + "\n\n").encode(), None, None, original
    return kind, ("\n".join(lines) + "\n").encode(), expect_row, column, original


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(corrupted_csvs(), st.booleans())
def test_corrupted_csv_files_load_correctly_or_name_the_row(case, skip_bad: bool) -> None:
    """Bad input / CSV: truncated rows, swapped columns, junk bytes, NULs, UTF-16 and Latin-1
    text, huge lines and tokens, a repeated header, a missing field, CRLF + BOM + quotes and
    blank lines either load the right rows or raise DataError naming the row, the column and
    the problem; never another exception."""
    kind, damaged, row, column, original = case
    good = parse_csv_bytes(original, "good.csv")
    try:
        ds = parse_csv_bytes(damaged, "bad.csv", skip_bad=skip_bad)
    except DataError as exc:
        text = str(exc)
        assert text.startswith("bad.csv") and exc.problem, text
        if kind == "utf16":
            assert "UTF-16" in text
        elif kind == "nul":
            assert "binary" in text or exc.row is not None, text
        elif row is not None and not skip_bad:
            assert exc.row == row and f"row {row}" in text, (kind, text)
            assert column == ANY_COLUMN or exc.column == column, (kind, text)
            assert exc.count == 1
        else:
            assert row is None or skip_bad, (kind, text)
        return
    except Exception as exc:  # noqa: BLE001  (the point: nothing but DataError escapes)
        pytest.fail(f"{kind}: {type(exc).__name__}: {exc}")
    # Loaded: every row is one of the original rows, in order, with its label.
    assert row is None or skip_bad, f"{kind}: loaded {len(ds)} rows, expected an error at row {row}"
    if kind in ("crlf-bom-quotes", "blank"):
        np.testing.assert_array_equal(ds.images, good.images)
    kept = [i for i in range(len(good)) if any(np.array_equal(good.images[i], x) for x in ds.images)]
    assert len(kept) == len(ds)
    np.testing.assert_array_equal(ds.images, good.images[kept])
    np.testing.assert_array_equal(ds.labels, good.labels[kept])


def test_a_huge_line_is_named_without_exhausting_memory() -> None:
    """Bad input / CSV: a 20 MB line (one row of digits with no separators) is one bad row."""
    images = np.zeros((2, 48, 48), np.uint8)
    lines = _rows_text(images, [0, 1], ["Training"] * 2)
    lines.insert(2, "3," + "9" * 20_000_000 + ",Training")
    with pytest.raises(DataError) as err:
        parse_csv_bytes("\n".join(lines).encode(), "huge.csv")
    assert err.value.row == 3 and err.value.column == "pixels" and err.value.count == 1
    ds = parse_csv_bytes("\n".join(lines).encode(), "huge.csv", skip_bad=True)
    assert len(ds) == 2 and ds.skipped == 1


# =========================================================================== bad input: uploads


def _csv_bytes(n: int = 4) -> bytes:
    images = np.random.default_rng(n).integers(0, 256, (n, 48, 48), dtype=np.uint8)
    return ("\n".join(_rows_text(images, np.arange(n) % 7, ["Training"] * n)) + "\n").encode()


def _png(value: int = 128, size: tuple[int, int] = (48, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("L", size, value).save(buf, "PNG")
    return buf.getvalue()


def _zip(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, content in members.items():
            zf.writestr(zipfile.ZipInfo(name), content, compress_type=method)
    return buf.getvalue()


def test_upload_size_limit(monkeypatch) -> None:
    """Bad input / uploads: above the limit an upload is refused before it is parsed or
    saved, with the sizes in the message."""
    monkeypatch.setattr(uploads, "MAX_UPLOAD_BYTES", 10_000)
    content = _csv_bytes(4)  # ~37 KB
    with pytest.raises(DataError, match=r"upload:big.csv: the upload is 0.0 MB, more than"):
        load_dataset(content, name="big.csv")
    with pytest.raises(DataError, match="more than the 0.0 MB allowed"):
        save_upload(content, "big.csv")
    assert not paths.uploads_dir().exists() or not list(paths.uploads_dir().iterdir())
    monkeypatch.setattr(uploads, "MAX_UPLOAD_BYTES", len(content))
    assert len(load_dataset(content, name="ok.csv")) == 4


def test_zip_with_too_many_members(monkeypatch) -> None:
    """Bad input / uploads: a zip holding more files than the limit is refused unread."""
    monkeypatch.setattr(uploads, "MAX_ARCHIVE_MEMBERS", 50)
    members = {f"train/happy/{i}.png": _png(i) for i in range(51)}
    with pytest.raises(DataError, match=r"the archive holds 51 files, more than the 50 allowed"):
        load_dataset(_zip(members), name="many.zip")
    del members["train/happy/0.png"]
    assert len(load_dataset(_zip(members), name="many.zip")) == 50


def test_zip_bomb_is_refused_before_it_is_decompressed() -> None:
    """Bad input / uploads: 64 MB of CSV-looking text packed into ~60 KB (ratio ~1,000) is
    refused from the zip's directory alone; reading it would take 64 MB."""
    bomb = _zip({"fer2013.csv": b"emotion,pixels,Usage\n" + b"0" * (64 * 2**20)})
    assert len(bomb) < 200_000
    start = time.perf_counter()
    with pytest.raises(DataError, match=r"fer2013.csv expands [\d,]+ times .*zip bomb"):
        load_dataset(bomb, name="bomb.zip")
    assert time.perf_counter() - start < 1.0  # refused, not decompressed


def test_archives_whose_content_is_too_large(monkeypatch) -> None:
    """Bad input / uploads: a zip, tar or gzip whose content exceeds MAX_EXPANDED_BYTES."""
    monkeypatch.setattr(uploads, "MAX_EXPANDED_BYTES", 100_000)
    content = _csv_bytes(8)  # ~75 KB each
    with pytest.raises(DataError, match=r"the archive expands to 0.1 MB, more than"):
        load_dataset(_zip({"a.csv": content, "b.csv": content}, zipfile.ZIP_STORED), name="x.zip")
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


def test_archive_member_paths_never_write_outside(tmp_path, monkeypatch) -> None:
    """Bad input / uploads: absolute and `..` member paths in zips and tars (and a symlink
    member) are read in memory: nothing is written anywhere but the cache folder."""
    work = tmp_path / "work" / "deep"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    before = _tree(tmp_path)
    csv_zip = _zip({"../../escape.csv": _csv_bytes(3), "/tmp/abs-escape.csv": b"x"})
    assert len(load_dataset(csv_zip, name="evil.zip", use_cache=False)) == 3
    images_zip = _zip({"../train/happy/a.png": _png(1), "/abs/train/sad/b.png": _png(2),
                       "../../../../../../etc/train/angry/c.png": _png(3)})
    ds = load_dataset(images_zip, name="evil-images.zip", use_cache=False)
    assert sorted(ds.labels.tolist()) == sorted(EMOTIONS.index(e) for e in ("happy", "sad", "angry"))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        content = _csv_bytes(2)
        info = tarfile.TarInfo("../../fer2013.csv")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
        link = tarfile.TarInfo("link.csv")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    assert len(load_dataset(buf.getvalue(), name="evil.tar.gz", use_cache=False)) == 2
    assert _tree(tmp_path) == before
    assert not Path("/tmp/abs-escape.csv").exists() and not Path("/abs").exists()


def test_upload_names_cannot_escape_the_cache_folder() -> None:
    """Bad input / uploads: whatever the uploaded file's name, it is saved in cache/uploads."""
    folder = paths.uploads_dir()
    for i, name in enumerate(["../../evil.csv", "/etc/passwd", "..", "", "a/../../b.csv",
                              "C:\\Windows\\x.csv", "\x00nul.csv", "é" * 300]):
        path = save_upload(f"emotion,pixels\n{i},1".encode(), name)
        assert path.parent == folder and path.is_file(), (name, path)
        assert path.resolve().is_relative_to(folder.resolve())


def test_non_images_and_undecodable_images_among_images(tmp_path) -> None:
    """Bad input / uploads: text and PDFs next to the images are ignored; files named like
    images that do not decode (garbage, empty, truncated, a decompression bomb) are named,
    counted, and skippable."""
    png = _png(0, (1, 1))
    ihdr = b"IHDR" + (65_536).to_bytes(4, "big") * 2 + png[24:29]  # claims 65,536^2 pixels
    bomb = png[:12] + ihdr + zlib.crc32(ihdr).to_bytes(4, "big") + png[33:]
    members = {
        "train/happy/ok.png": _png(10), "train/sad/ok.png": _png(20),
        "test/fear/ok.png": _png(30), "notes.txt": b"hello", "train/happy/doc.pdf": b"%PDF-1.4",
        "train/happy/garbage.png": b"not an image at all",
        "train/sad/empty.jpg": b"",
        "train/angry/cut.png": _png(40, (200, 200))[:60],
        "train/angry/bomb.png": bomb,
    }
    for archive in (True, False):
        if archive:
            source, kw = _zip(members), {"name": "mixed.zip"}
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


# ================================================================= bad input: hyperparameters


_ANY_JSON = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                      st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
                      st.lists(st.integers(), max_size=3),
                      st.dictionaries(st.text(max_size=5), st.integers(-3, 3), max_size=2))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(FIELD_NAMES), _ANY_JSON)
def test_any_value_of_any_field_is_accepted_or_named(field: str, value) -> None:
    """Bad input / hyperparameters: a config file can hold any JSON value in any field;
    loading it either works or raises ConfigError naming that field, nothing else."""
    try:
        config = TrainConfig.from_dict({field: value})
    except ConfigError as exc:
        assert exc.field in (field, "min_lr", "val_fraction", "warmup_epochs"), exc
        assert str(exc).startswith(f"TrainConfig.{exc.field}:")
    else:
        assert TrainConfig.from_json(config.to_json()) == config


@pytest.mark.parametrize("flags, words", [
    (["--epochs", "0"], "TrainConfig.epochs: must be >= 1"),
    (["--batch-size", "-8"], "TrainConfig.batch_size"),
    (["--learning-rate", "nan"], "TrainConfig.learning_rate: must be finite"),
    (["--momentum", "1.5"], "TrainConfig.momentum"),
    (["--val-source", "fraction", "--val-fraction", "1"], "TrainConfig.val_fraction"),
    (["--model", "nope"], "TrainConfig.model: unknown model 'nope'"),
    (["--model-kwargs", '{"width": -3}'], "TrainConfig.model_kwargs"),
    (["--model-kwargs", '{"depth": 3}'], "TrainConfig.model_kwargs: mini_xception has no option"),
    (["--augment", '{"rotation": 1000}'], "TrainConfig.augment"),
    (["--data", "/no/such/file.csv"], "TrainConfig.data: no such file"),
])
def test_cli_out_of_range_hyperparameters_leave_no_folder(tmp_path, capsys, flags, words) -> None:
    """Bad input / hyperparameters from the CLI: exit 2, a message naming the field, and no
    run folder (not even an empty runs folder)."""
    from fer_core.__main__ import main

    root = tmp_path / "runs"
    assert main(["train", *flags, "--epochs" if "--epochs" not in flags else "--seed", "1",
                 "--runs-dir", str(root)]) == 2
    err = capsys.readouterr().err
    assert words in err, err
    assert not root.exists() or runs.list_runs(root) == []
    assert not root.exists() or not [p for p in root.iterdir() if p.name != ".train.lock"]


def test_config_file_with_bad_values_names_the_file_and_makes_no_folder(tmp_path, capsys) -> None:
    """Bad input / hyperparameters from a config file: bad values, unknown keys, not JSON."""
    from fer_core.__main__ import main

    root = tmp_path / "runs"
    cases = {
        "range.json": ('{"learning_rate": -1}', "TrainConfig.learning_rate"),
        "unknown.json": ('{"lr": 0.1}', "unknown"),
        "type.json": ('{"epochs": "ten"}', "TrainConfig.epochs"),
        "broken.json": ("{not json", "not valid JSON"),
        "list.json": ("[1, 2]", "TrainConfig"),
        "binary.json": ("\x00\xff", "TrainConfig"),
    }
    for name, (text, words) in cases.items():
        (tmp_path / name).write_text(text, encoding="latin-1")
        assert main(["train", "--config", str(tmp_path / name), "--runs-dir", str(root)]) == 2
        err = capsys.readouterr().err
        assert words in err and err.startswith("error: "), (name, err)
    assert main(["train", "--config", str(tmp_path / "missing.json"), "--runs-dir", str(root)]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert not root.exists() or runs.list_runs(root) == []


# =========================================================================== faults


_STATUS_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                           st.floats(allow_nan=True), st.text(max_size=8),
                           st.lists(st.integers(), max_size=2), st.dictionaries(
                               st.text(max_size=3), st.integers(), max_size=2))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(status=st.one_of(
           st.dictionaries(st.sampled_from(["state", "pid", "pid_start", "epoch", "epochs",
                                            "created_at", "name", "error", "best_value",
                                            "best_epoch", "eta", "finished_at"]),
                           _STATUS_VALUES, max_size=6).map(lambda d: {"state": "running", **d}),
           _STATUS_VALUES),
       config=st.one_of(st.binary(max_size=40), st.just(TrainConfig().to_json().encode())))
def test_foreign_or_corrupt_run_folders_are_listed_as_unreadable(tmp_path_factory, status,
                                                                 config) -> None:
    """Fault / run metadata: whatever status.json and config.json hold (any JSON types, any
    bytes), listing the runs never raises, and every run's fields can be shown."""
    root = tmp_path_factory.mktemp("runs")
    good = runs.create_run(TrainConfig(name="good"), root)
    odd = root / "odd"
    odd.mkdir()
    (odd / "status.json").write_text(json.dumps(status))
    (odd / "config.json").write_bytes(config)
    listed = {r.id: r for r in runs.list_runs(root)}
    assert set(listed) == {good.id, "odd"} and listed[good.id].state == "queued"
    info = listed["odd"]
    shown = (info.state, info.name, info.error, info.epoch, info.epochs, info.created,
             info.active, info.best_model_path)
    assert isinstance(shown[0], str) and isinstance(shown[3], int)
    if info.state == runs.UNREADABLE:
        assert info.problem
    else:
        assert info.state in runs.STATES and info.config is not None


_WRITER = """
import os, sys
from fer_core import runs
run_dir = sys.argv[1]
me = {"pid": os.getpid(), "pid_start": runs.process_start_token(os.getpid())}
print("ready", flush=True)
i = 0
while True:
    i += 1
    runs.update_status(run_dir, state="running", epoch=i, best_value=i / 1e3, eta=1.5, **me)
    runs.rename_run(run_dir, "name %d " % i + "x" * (i % 97))
    runs.write_history(run_dir, [{"epoch": e, "loss": 1.0 / e} for e in range(1, i % 50 + 2)])
    runs.append_event(run_dir, "batch", epoch=i, loss=0.5, pad="y" * (i % 3000))
    runs.write_json(runs.Path(run_dir) / "weights" / "last.json", {"epoch": i})
"""


def test_writers_killed_mid_write_never_leave_a_broken_run(tmp_path) -> None:
    """Fault / atomic metadata: a process rewriting status, config, history, events and
    last.json in a loop is SIGKILLed at random moments; every time the run still reads whole
    (status, config, history, last.json), and at most the last event line is torn."""
    root = tmp_path / "runs"
    info = runs.create_run(TrainConfig(name="victim"), root)
    rng = np.random.default_rng(0)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for _ in range(8):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(info.dir)], env=env,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(float(rng.uniform(0.05, 0.4)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        [listed] = runs.list_runs(root)
        assert listed.readable, listed.problem
        assert listed.state == "failed" and listed.status["interrupted"]  # its pid is gone
        # (config.json and status.json are two files: a kill between them may leave the
        # name of one iteration in each, but neither is ever half written.)
        assert listed.name.startswith("name ") and listed.config.name.startswith("name ")
        history = runs.read_history(listed)
        assert history and [r["epoch"] for r in history] == list(range(1, len(history) + 1))
        assert runs.read_json(info.dir / "weights" / "last.json")["epoch"] >= 1
        lines = (info.dir / "events.jsonl").read_text().splitlines()
        assert all(json.loads(line) for line in lines[:-1])  # only the last can be torn
        assert len(runs.read_events(listed)) >= len(lines) - 1


def _tiny(**changes) -> TrainConfig:
    base = {"model": "mini_xception", "model_kwargs": {"width": 4}, "batch_size": 32,
            "augment": None, "early_stop_patience": 0, "schedule": "none", "data": "demo"}
    return TrainConfig(**{**base, **changes})


@pytest.fixture(scope="module")
def small_demo():
    from fer_core.data.demo import make_demo

    return make_demo(300, seed=1)


def test_disk_full_fails_the_run_with_the_reason_and_keeps_the_best_weights(
        tmp_path, monkeypatch, small_demo) -> None:
    """Fault / disk full: the third model save of a run (epoch 2) finds the disk full after
    writing part of its file. The run ends failed with the reason, the half-written file is
    gone, epoch 1's best weights load, and once there is room again resume finishes it."""
    import keras

    from fer_core.models import load_model
    from fer_core.train import resume, train

    real_save = keras.Model.save
    saves: list[str] = []

    def save_until_the_disk_is_full(model, path, *args, **kwargs):
        saves.append(Path(path).name)
        if len(saves) <= 2:
            return real_save(model, path, *args, **kwargs)
        Path(path).write_bytes(b"PK\x03\x04 half a model")
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(keras.Model, "save", save_until_the_disk_is_full)
    with pytest.raises(OSError, match="No space left on device"):
        train(_tiny(epochs=3), runs_dir=tmp_path, dataset=small_demo)
    [run] = runs.list_runs(tmp_path)
    assert run.state == "failed" and "No space left on device" in run.error, run.error
    assert runs.read_events(run)[-1]["kind"] == "failed"
    assert not [p.name for p in (run.dir / "weights").iterdir() if ".tmp" in p.name]
    assert load_model(run.best_model_path).output_shape == (None, 7)
    assert runs.read_json(run.dir / "weights" / "last.json")["epoch"] == 1

    monkeypatch.setattr(keras.Model, "save", real_save)
    done = resume(run.id, runs_dir=tmp_path, dataset=small_demo)
    assert done.state == "finished" and [r["epoch"] for r in runs.read_history(done)] == [1, 2, 3]


def test_a_failure_that_cannot_be_recorded_still_reports_the_original_error(
        tmp_path, monkeypatch, capsys) -> None:
    """Fault / disk full: when not even status.json can be written, recording the failure
    does not replace the real error with its own (the caller re-raises the original), and
    the reason goes to the job's log."""
    from fer_core import train as trainer

    info = runs.create_run(_tiny(), tmp_path)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(runs, "atomic_write", full)
    monkeypatch.setattr(runs, "append_event", full)
    trainer._fail(info.dir, OSError(errno.ENOSPC, "No space left on device", "best.keras"))
    assert "could not record the failure" in capsys.readouterr().err
    assert runs.get_run(info.dir).state == "queued"  # unchanged, and still readable


def test_unwritable_runs_folder_fails_with_the_reason(tmp_path, monkeypatch, capsys,
                                                      small_demo) -> None:
    """Fault / unwritable runs folder: a runs folder that cannot be created (its parent is a
    file) or written (disk full while creating the run) gives RunError naming the folder and
    the reason, from train, start_job and the CLI; no half-made folder is left."""
    from fer_core import jobs
    from fer_core.__main__ import main
    from fer_core.train import train

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    root = blocker / "runs"
    with pytest.raises(runs.RunError, match=rf"cannot write to the runs folder {root}: Not a directory"):
        train(_tiny(epochs=1), runs_dir=root, dataset=small_demo)
    with pytest.raises(runs.RunError, match="cannot write to the runs folder"):
        jobs.start_job(_tiny(epochs=1), runs_dir=root)
    assert main(["train", "--epochs", "1", "--runs-dir", str(root)]) == 2
    assert "cannot write to the runs folder" in capsys.readouterr().err

    ok_root = tmp_path / "runs"
    real_write = runs.write_json

    def disk_full(path, value):
        if Path(path).name == "status.json":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real_write(path, value)

    monkeypatch.setattr(runs, "write_json", disk_full)
    with pytest.raises(runs.RunError, match="No space left on device"):
        runs.create_run(_tiny(), ok_root)
    assert [p.name for p in ok_root.iterdir()] == []  # the hidden temporary folder is gone


def _frames(n: int, rng: np.random.Generator):
    """Webcam-like abuse: mostly small random frames of 1, 3 or 4 channels, 1-pixel and
    empty frames, and now and then a real face (so the classifier runs too)."""
    from face_frames import face_frame

    faces = [face_frame(1, 160, 120), face_frame(3, 320, 240)]
    for i in range(n):
        k = i % 10
        if k == 0:
            yield faces[(i // 10) % 2]
        elif k == 1:
            yield np.zeros((0, int(rng.integers(0, 5)), 3), np.uint8)
        elif k == 2:
            yield rng.integers(0, 256, (1, 1, 3), dtype=np.uint8)
        else:
            h, w = (int(v) for v in rng.integers(1, 97, 2))
            shape = {1: (h, w), 3: (h, w, 3), 4: (h, w, 4)}[int(rng.choice([1, 3, 4]))]
            yield rng.integers(0, 256, shape, dtype=np.uint8)


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_live_processing_survives_2000_random_frames_without_growing(tmp_path) -> None:
    """Fault / live callback under load: 2,000 frames of random sizes and content (empty and
    1-pixel ones included) through process_frame with tracking and smoothing, as the webcam
    callback runs it: nothing escapes, only the empty frames count as errors, and resident
    memory grows by less than 8 MB after a 300-frame warm-up."""
    from fer_core.detect import FaceDetector
    from fer_core.infer import Classifier, FaceTracker, StreamMonitor, process_frame
    from fer_core.models import create_model, load_model

    create_model("fernet", width=4, convs=1).save(tmp_path / "tiny.keras")
    classifier = Classifier(load_model(tmp_path / "tiny.keras"))
    detector = FaceDetector()
    tracker, monitor = FaceTracker(), StreamMonitor()
    rng = np.random.default_rng(8)
    for frame in _frames(300, rng):
        process_frame(frame, detector, classifier, tracker=tracker, smoothing=0.6,
                      monitor=monitor)
    before = _rss_mb()
    faces_seen = 0
    for frame in _frames(2000, rng):
        annotated, faces = process_frame(frame, detector, classifier, tracker=tracker,
                                         smoothing=0.6, monitor=monitor)
        faces_seen += len(faces)
        if frame.size:
            assert annotated.shape[:2] == frame.shape[:2] and annotated.shape[-1] == 3
    grown = _rss_mb() - before
    snap = monitor.snapshot()
    assert snap["frames"] + snap["errors"] == 2300
    assert snap["errors"] == 230 and "empty frame" in snap["last_error"]  # the empty ones
    assert faces_seen >= 200  # the real faces were found and classified
    assert grown < 8, f"RSS grew by {grown:.1f} MB over 2,000 frames"


# =========================================================================== concurrency


_STARTER = """
import sys, time
from fer_core import runs
from fer_core.config import TrainConfig
root, go = sys.argv[1], float(sys.argv[2])
time.sleep(max(0.0, go - time.time()))
try:
    lock = runs.acquire_lock(root, run_id="starting")
except runs.JobBusy as exc:
    print("busy", exc, flush=True)
else:
    run = runs.create_run(TrainConfig(name="race"), root)
    print("started", run.id, flush=True)
    time.sleep(3)
"""


def test_two_processes_pressing_start_at_once_get_one_job(tmp_path) -> None:
    """Concurrency: two server processes start a job in the same instant, the way
    `jobs.start_job` does (the runs lock, then the run folder): one wins, the other is told
    a job is running, and only one run folder exists. (tests/test_jobs.py races the real
    start_job in two threads; tests/test_page_train.py presses Start in a second session.)"""
    root = tmp_path / "runs"
    go = time.time() + 1.5  # both are past their imports by then
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", _STARTER, str(root), str(go)],
                              stdout=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    outs = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
    assert [o.split()[0] for o in outs] == ["busy", "started"], outs
    assert "a training job is already running" in outs[0]
    assert [r.name for r in runs.list_runs(root)] == ["race"]
    assert runs.lock_holder(root) is None  # released when the winner exited


def test_evaluation_and_inference_while_a_job_trains(tmp_path, monkeypatch, small_demo) -> None:
    """Concurrency: while a run trains (here in a thread of this process, sharing
    TensorFlow, which is harsher than a separate job process), its best weights are evaluated
    and used for inference over and over, and the runs list and job status are polled. Every
    read succeeds, the run finishes normally, and its files are whole: every event parses,
    the history has each epoch once, the config is unchanged, the evaluations sit in eval/."""
    from fer_core import evaluate as ev
    from fer_core import jobs
    from fer_core.infer import Classifier
    from fer_core.models import load_model
    from fer_core.train import train

    config = _tiny(name="busy", epochs=4)
    outcome: dict[str, object] = {}
    started = threading.Event()

    def on_event(event: dict) -> None:
        if event["kind"] == "epoch":
            started.set()

    def trainer() -> None:
        try:
            outcome["run"] = train(config, runs_dir=tmp_path, dataset=small_demo,
                                   on_event=on_event)
        except BaseException as exc:  # noqa: BLE001  (reported by the main thread)
            outcome["error"] = exc
        finally:
            started.set()

    thread = threading.Thread(target=trainer)
    thread.start()
    assert started.wait(300)
    [run] = runs.list_runs(tmp_path)
    images, labels = small_demo.split("PublicTest")
    evaluations = 0
    monkeypatch.setenv("FER_RUNS_DIR", str(tmp_path))  # evaluate_cached finds runs by it
    while thread.is_alive() or evaluations < 2:
        result = ev.evaluate_cached(run.id, images, labels, split="PublicTest")
        assert result.confusion.sum() == len(labels)
        probs = Classifier(load_model(catalog.resolve(run.id, tmp_path).path)).predict(
            images[:5])
        assert probs.shape == (5, 7) and np.isfinite(probs).all()
        status = jobs.job_status(run.id, tmp_path)
        assert status.run.readable and status.run.state in ("running", "finished")
        evaluations += 1
    thread.join()
    assert "error" not in outcome, outcome.get("error")
    final = runs.get_run(run.id, tmp_path)
    assert final.state == "finished" and final.config == config
    assert [r["epoch"] for r in runs.read_history(final)] == [1, 2, 3, 4]
    lines = (final.dir / "events.jsonl").read_text().splitlines()
    assert [json.loads(line)["kind"] for line in lines][-1] == "finished"
    assert sorted(p.name for p in (final.dir / "eval").iterdir()) == ["PublicTest.json",
                                                                       "PublicTest.npz"]
    # After training, the cached evaluation is that of the final best weights.
    again = ev.evaluate_cached(run.id, images, labels, split="PublicTest")
    direct = ev.evaluate_model(load_model(final.best_model_path), images, labels)
    np.testing.assert_array_equal(again.confusion, direct.confusion)
    assert evaluations >= 2


# =========================================================================== security


def _lambda_model_file(folder: Path, marker: Path) -> Path:
    """A .keras file whose Lambda layer would create `marker` if its code ever ran."""
    import keras

    # A real Python lambda (a named function is saved by name only): Keras saves its bytecode.
    touch_marker = eval(  # the test builds the hostile file it then refuses
        f"lambda x: (__import__('pathlib').Path({str(marker)!r}).write_text('ran'), x * 2.0)[1]")
    inputs = keras.Input((48, 48, 1))
    x = keras.layers.Lambda(touch_marker)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(7, activation="softmax")(x))
    marker.unlink(missing_ok=True)  # building the model called it once
    path = folder / "lambda.keras"
    model.save(path)
    return path


def test_load_model_refuses_lambda_layers(tmp_path) -> None:
    """Security: load_model uses Keras safe mode: a Lambda layer's code is refused, not run."""
    from fer_core.models import load_model

    marker = tmp_path / "pwned"
    path = _lambda_model_file(tmp_path, marker)
    with pytest.raises(ValueError, match=r"not a loadable Keras model.*(Lambda|safe_mode)"):
        load_model(path)
    assert not marker.exists()
    h5 = tmp_path / "model.h5"
    h5.write_bytes(b"\x89HDF\r\n\x1a\n")
    with pytest.raises(ValueError, match="only native .keras model files are accepted"):
        load_model(h5)
    with pytest.raises(runs.RunError, match="only native .keras"):
        catalog.resolve(str(h5))


def test_uploaded_models_are_untrusted(tmp_path, monkeypatch) -> None:
    """Security: a model a user uploads is checked before it is kept: the .keras format,
    a size limit, no zip bomb, it must load under safe mode (no Lambda code); the stored
    name comes from the content, and nothing is left behind for a refused file."""
    from fer_core.models import create_model, load_model, save_model_upload

    good = tmp_path / "good.keras"
    create_model("fernet", width=4, convs=1).save(good)
    content = good.read_bytes()
    stored = save_model_upload(content, "../../../etc/my model.keras")
    folder = paths.uploaded_models_dir()
    assert stored.parent == folder and stored.suffix == ".keras" and ".." not in stored.name
    assert load_model(stored).output_shape == (None, 7)
    assert save_model_upload(content, "again.keras") == stored  # same bytes, same file
    assert catalog.resolve(str(stored)).path == stored.resolve()  # usable as a model spec

    marker = tmp_path / "pwned"
    refused = {
        "lambda.keras": (_lambda_model_file(tmp_path, marker).read_bytes(), "Lambda|safe_mode"),
        "model.h5": (content, "only native .keras model files"),
        "big.keras": (content + b"\0" * 200, "more than the 0 MB allowed"),
        "text.keras": (b"just some text", "not a Keras model file"),
        "cut.keras": (content[: len(content) // 2], "not a Keras model file"),
        "other.keras": (_zip({"weights.h5": b"x"}), "no config.json"),
        "bomb.keras": (_zip({"config.json": b"{}", "model.weights.h5": b"\0" * 8 * 2**20}),
                       "zip bomb"),
        "junk-config.keras": (_zip({"config.json": b"{not json", "metadata.json": b"{}"}),
                              "not a loadable Keras model"),
    }
    limit = {"big.keras": len(content) + 100}
    for name, (blob, words) in refused.items():
        with pytest.raises(ValueError, match=words) as err:
            save_model_upload(blob, name, max_bytes=limit.get(name, 100 * 2**20))
        assert str(err.value).startswith(f"upload:{name}"), err.value
    assert not marker.exists()
    assert sorted(p.name for p in folder.iterdir()) == [stored.name]  # nothing else kept


def test_server_listens_on_localhost_with_xsrf_protection() -> None:
    """Security: .streamlit/config.toml binds 127.0.0.1 and keeps XSRF protection on; the
    README says how to expose the app deliberately and why the camera needs localhost or
    HTTPS."""
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    server = config["server"]
    assert server["address"] == "127.0.0.1"
    assert server.get("enableXsrfProtection", True) is True
    assert server.get("enableCORS", True) is True
    assert server["maxUploadSize"] * 2**20 <= uploads.MAX_UPLOAD_BYTES  # the loader's limit fits
    readme = (REPO / "README.md").read_text()
    assert "--server.address" in readme and "HTTPS" in readme and "localhost" in readme


def test_typed_paths_that_cannot_be_read_are_messages(tmp_path, monkeypatch) -> None:
    """Security / typed paths: a missing, unreadable or special path (a FIFO that would
    block forever) is a DataError; a folder or a non-.keras file is not a model."""
    with pytest.raises(DataError, match="no such file or folder"):
        load_dataset(tmp_path / "missing.csv")
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    start = time.perf_counter()
    with pytest.raises(DataError, match="not a regular file or folder"):
        load_dataset(fifo)
    assert time.perf_counter() - start < 5
    locked = tmp_path / "locked.csv"
    locked.write_bytes(_csv_bytes(2))

    def denied(path, label, skip_bad):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(archives, "load_file", denied)  # (the tests run as root: chmod is moot)
    with pytest.raises(DataError, match=r"locked.csv: cannot be read: Permission denied"):
        load_dataset(locked)
    with pytest.raises(runs.RunError, match="does not exist|not a run id"):
        catalog.resolve(str(tmp_path))
    with pytest.raises(runs.RunError, match="only native .keras"):
        catalog.resolve(str(locked))


def test_typed_paths_never_write_beside_the_users_files(tmp_path, monkeypatch) -> None:
    """Security / writes: loading a typed CSV, zip or image folder, and evaluating a typed
    .keras file, write only to the cache folder, never next to the user's files."""
    from fer_core import evaluate as ev
    from fer_core.models import create_model

    user = tmp_path / "user"
    (user / "faces" / "train" / "happy").mkdir(parents=True)
    (user / "faces" / "train" / "happy" / "a.png").write_bytes(_png(5))
    (user / "fer.csv").write_bytes(_csv_bytes(3))
    (user / "fer.zip").write_bytes(_zip({"fer2013.csv": _csv_bytes(3)}))
    create_model("fernet", width=4, convs=1).save(user / "m.keras")
    before = _tree(user)
    for source in ("fer.csv", "fer.zip", "faces"):
        assert len(load_dataset(user / source)) >= 1
        assert len(load_dataset(user / source)) >= 1  # the second time from the cache
    ds = load_dataset(user / "fer.csv")
    ev.evaluate_cached(str(user / "m.keras"), ds.images, ds.labels, split="all")
    assert _tree(user) == before
    assert list(paths.eval_cache_dir().iterdir())


def test_run_commands_stay_inside_the_runs_folder(tmp_path, capsys) -> None:
    """Security / writes: deleting or stopping by a typed path outside the runs folder is
    refused and touches nothing; run names cannot place a folder elsewhere."""
    from fer_core.__main__ import main

    root = tmp_path / "runs"
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    (precious / "status.json").write_text('{"state": "finished"}')
    runs.create_run(TrainConfig(name="real"), root)
    for target in (str(precious), f"{root}/../precious", precious):
        assert main(["runs", "--runs-dir", str(root), "--delete", str(target)]) == 2
        assert "is not a run folder inside" in capsys.readouterr().err
        with pytest.raises(runs.RunError, match="nothing was deleted"):
            runs.delete_run(target, root)
        with pytest.raises(runs.RunError, match="not a readable run folder"):
            runs.request_stop(target, root)
    with pytest.raises(runs.RunError, match="no run 'nowhere'"):
        runs.request_stop(tmp_path / "nowhere", root)
    assert not (tmp_path / "nowhere").exists()
    assert sorted(p.name for p in precious.iterdir()) == ["status.json", "thesis.tex"]
    odd = runs.create_run(TrainConfig(name="../../escape/../x"), root)
    assert odd.dir.parent == root.resolve() and odd.name == "../../escape/../x"
    runs.delete_run(odd.id, root)
    assert [r.name for r in runs.list_runs(root)] == ["real"]

"""Issue 18, the data and config classes: memory of the CSV parser, non-ASCII digits, uploads
in use, folder cache keys, typed paths that block or never end, image bit depths, ICE server
settings, seeds and model options, and what the CSV messages say.

Each test fails on the code before the fix (see the commit messages for the figures).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

import fer_core  # noqa: F401  (CPU flags before TensorFlow loads)
from fer_core import data, runs
from fer_core.__main__ import main
from fer_core.config import ConfigError, TrainConfig
from fer_core.data import (
    DataError,
    csv_format,
    load_dataset,
    parse_csv_bytes,
    save_upload,
    source_signature,
    sources,
    upload_store,
)
from fer_core.webrtc import ICE_ENV, ice_servers

REPO = Path(__file__).resolve().parents[1]
HEADER = "emotion,pixels,Usage"
ROW = "3," + " ".join(["7"] * 2304) + ",Training"


@pytest.fixture(autouse=True)
def _private_folders(tmp_path_factory, monkeypatch) -> None:
    monkeypatch.setenv("FER_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("FER_RUNS_DIR", str(tmp_path_factory.mktemp("runs")))
    monkeypatch.delenv("FER2013_CSV", raising=False)


def _csv(*lines: str, header: str = HEADER) -> bytes:
    return ("\n".join([header, *lines]) + "\n").encode()


def _pixels(position: int, value: str) -> str:
    values = ["7"] * 2304
    values[position - 1] = value
    return " ".join(values)


def _peak_mb(fn) -> float:
    """Peak traced memory (numpy's arrays included) while fn() runs, in MB."""
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak / 2**20


def _raises_data_error(fn) -> DataError:
    with pytest.raises(DataError) as err:
        fn()
    return err.value


# ======================================================= 2. memory of the CSV parser


@pytest.mark.parametrize("header", [HEADER, "Usage,pixels,emotion"])
def test_blank_lines_cost_no_memory_per_line(header: str) -> None:
    """4 MB of blank lines around one row: the old parser held ~240 bytes a line (~1 GB
    here; 4 GB for 16 MB), now only the row and the chunk being read."""
    row = ROW if header == HEADER else "Training," + " ".join(["7"] * 2304) + ",3"
    content = _csv(*[""] * (4 * 2**20), row, header=header)
    box = {}
    peak = _peak_mb(lambda: box.update(ds=parse_csv_bytes(content, "blank.csv")))
    assert len(box["ds"]) == 1 and int(box["ds"].labels[0]) == 3
    assert peak < 80, f"{peak:.0f} MB for {len(content) / 2**20:.0f} MB of blank lines"


def test_short_lines_are_counted_not_kept() -> None:
    """2 MB of short bad lines: each is one bad row (counted, first one named), in bounded
    memory, with or without skip_bad."""
    content = _csv(ROW, *["1,2,Training"] * 170_000)
    err = _raises_data_error(lambda: parse_csv_bytes(content, "short.csv"))
    assert err.row == 3 and err.count == 170_000 and "1 pixel values, expected 2,304" in str(err)
    box = {}
    peak = _peak_mb(lambda: box.update(ds=parse_csv_bytes(content, "short.csv", skip_bad=True)))
    assert len(box["ds"]) == 1 and box["ds"].skipped == 170_000
    assert peak < 60, f"{peak:.0f} MB for {len(content) / 2**20:.1f} MB of short lines"


def test_a_small_gzip_of_short_lines_is_refused_as_a_bomb(tmp_path) -> None:
    """A ~64 KB .csv.gz expanding to 32 MB of "1,2" lines took 4.6 GB (or died of
    _ArrayMemoryError); now the archives' ratio limit refuses it before parsing."""
    packed = gzip.compress(_csv(*["1,2"] * (8 * 2**20)), 9)
    assert len(packed) < 100_000
    path = tmp_path / "short.csv.gz"
    path.write_bytes(packed)
    for load in (lambda: load_dataset(path), lambda: load_dataset(packed, name="s.csv.gz")):
        err = _raises_data_error(load)
        assert "gzip bomb" in str(err) and "200 times" in str(err)
    real = gzip.compress(_csv(ROW, ROW))  # a real file packs far less than 200 times
    assert len(load_dataset(real, name="ok.csv.gz")) == 2


def test_running_out_of_memory_is_a_data_error(tmp_path, monkeypatch) -> None:
    path = tmp_path / "big.csv"
    path.write_bytes(_csv(ROW))

    def exhausted(*args, **kwargs):
        return np.empty(2**62, dtype=np.uint8)  # numpy's _ArrayMemoryError

    monkeypatch.setattr(csv_format, "_parse_canonical", exhausted)
    err = _raises_data_error(lambda: load_dataset(path, use_cache=False))
    assert str(err).startswith(str(path)) and "not enough memory" in str(err)


# ======================================================= 3. non-ASCII digits


@pytest.mark.parametrize("digit", ["²", "①", "٣", "𝟓", "٣4"])
def test_only_ascii_digits_are_pixels(digit: str) -> None:
    content = _csv(ROW, "3," + _pixels(5, digit) + ",Training")
    err = _raises_data_error(lambda: parse_csv_bytes(content, "odd.csv"))
    assert err.row == 3 and err.column == "pixels" and err.count == 1
    assert f"pixel value {digit!r} at position 5" in str(err) and "ASCII" in str(err)
    ds = parse_csv_bytes(content, "odd.csv", skip_bad=True)
    assert len(ds) == 1 and ds.skipped == 1


@pytest.mark.parametrize("digit", ["²", "٣", "𝟓"])
def test_only_ascii_digits_are_labels(digit: str) -> None:
    content = _csv(ROW, digit + ROW[1:])
    err = _raises_data_error(lambda: parse_csv_bytes(content, "odd.csv"))
    assert err.row == 3 and err.column == "emotion"
    assert len(parse_csv_bytes(content, "odd.csv", skip_bad=True)) == 1


def test_cli_inspect_json_of_non_ascii_digits_has_no_traceback(tmp_path, capsys) -> None:
    path = tmp_path / "odd.csv"
    path.write_bytes(_csv(ROW, "3," + _pixels(9, "²") + ",Training"))
    assert main(["inspect", str(path), "--json"]) == 2
    out = capsys.readouterr()
    report = json.loads(out.out)
    assert "row 3" in report["error"] and "'²'" in report["error"]
    assert "Traceback" not in out.err
    assert main(["inspect", str(path), "--json", "--skip-bad"]) == 0
    assert json.loads(capsys.readouterr().out)["skipped"] == 1


def test_cli_inspect_reports_an_unexpected_failure(tmp_path, capsys, monkeypatch) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(_csv(ROW))

    def broken(*args, **kwargs):
        raise IndexError("a loader bug")

    monkeypatch.setattr(data, "load_dataset", broken)
    assert main(["inspect", str(path), "--json"]) == 2
    assert "IndexError: a loader bug" in json.loads(capsys.readouterr().out)["error"]


PAGES = {
    "home": REPO / "app.py",
    "train": REPO / "app_pages" / "2_Train.py",
    "evaluate": REPO / "app_pages" / "3_Evaluate.py",
    "dataset": REPO / "app_pages" / "1_Dataset.py",
}


def _page_with(page: str, source: Path, *, skip_bad: bool = False) -> AppTest:
    at = AppTest.from_file(str(PAGES[page]), default_timeout=120)
    at.session_state["active_source"] = str(source)
    at.session_state["active_skip_bad"] = skip_bad
    return at.run()


@pytest.mark.parametrize("page", list(PAGES))
def test_pages_survive_non_ascii_digits_in_the_active_dataset(page, tmp_path,
                                                              monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "odd.csv"
    path.write_bytes(_csv(ROW, "3," + _pixels(2, "①") + ",Training"))
    at = _page_with(page, path)
    assert not at.exception, at.exception
    assert any("odd.csv, row 3, column 'pixels'" in e.value for e in at.error), at.error


@pytest.mark.parametrize("page", list(PAGES))
@pytest.mark.parametrize("failure", [RuntimeError("a loader bug"), MemoryError()])
def test_pages_catch_any_loader_failure(page, failure, tmp_path, monkeypatch) -> None:
    """Whatever the loader raises, the page says what it was and keeps running."""
    import ui.state

    monkeypatch.chdir(tmp_path)
    path = tmp_path / f"{page}-{type(failure).__name__}.csv"
    path.write_bytes(_csv(ROW))

    def broken(*args, **kwargs):
        raise failure

    monkeypatch.setattr(ui.state, "load_dataset", broken)
    at = _page_with(page, path)
    assert not at.exception, at.exception
    expected = "a loader bug" if isinstance(failure, RuntimeError) else "not enough memory"
    assert any(path.name in e.value and expected in e.value for e in at.error), at.error


# ======================================================= 7. uploads in use are kept


def _long_ago(path: Path, days: float) -> None:
    when = time.time() - days * 86400
    os.utime(path, (when, when))


def test_an_upload_a_run_trains_on_is_never_evicted(monkeypatch) -> None:
    """Old UPLOADS_KEEP = 3: a 4th upload from anyone deleted the oldest, even the data of
    a run (which then could not resume)."""
    monkeypatch.setattr(upload_store, "UPLOADS_MAX_BYTES", 1)  # every old, unused upload must go
    trained = save_upload(_csv(ROW), "trained.csv")
    runs.create_run(TrainConfig(data=str(trained), epochs=1))
    _long_ago(trained, 60)  # older than UPLOADS_MAX_AGE_SECONDS too
    unused = save_upload(_csv(ROW, ROW), "unused.csv")
    _long_ago(unused, 2)
    others = [save_upload(_csv(*[ROW] * (i + 3)), f"other{i}.csv") for i in range(4)]
    assert trained.exists() and not unused.exists()
    assert all(p.exists() for p in others)  # used in the last day: another session's data
    assert len(load_dataset(trained)) == 1


def test_an_upload_in_use_by_another_session_is_kept(monkeypatch) -> None:
    monkeypatch.setattr(upload_store, "UPLOADS_MAX_BYTES", 1)
    active = save_upload(_csv(ROW), "active.csv")
    _long_ago(active, 3)
    data.mark_used(active)  # what ui.state.load_active_dataset does on every page run
    mtime = active.stat().st_mtime_ns
    for i in range(5):
        save_upload(_csv(*[ROW] * (i + 2)), f"f{i}.csv")
    assert active.exists() and active.stat().st_mtime_ns == mtime  # cache keys unchanged


def test_old_unused_uploads_go_oldest_first_within_the_size_budget(monkeypatch) -> None:
    small = len(_csv(ROW))
    monkeypatch.setattr(upload_store, "UPLOADS_MAX_BYTES", 3 * small)
    paths = []
    for label in range(4):  # same size, different content, last used 5, 4, 3, 2 days ago
        paths.append(save_upload(_csv(f"{label}{ROW[1:]}"), f"f{label}.csv"))
        _long_ago(paths[-1], 5 - label)
    save_upload(_csv(f"5{ROW[1:]}"), "new.csv")
    assert [p.exists() for p in paths] == [False, False, True, True]


# ======================================================= 8. folder cache keys


def _png(value: int) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (48, 48), value).save(buf, "PNG")
    return buf.getvalue()


def _key_app(folder: Path) -> AppTest:
    def script(folder: str) -> None:
        import streamlit as st

        from ui.state import dataset_key, set_active_source

        set_active_source(folder)
        st.write(dataset_key())

    return AppTest.from_function(script, args=(str(folder),), default_timeout=30)


def test_dataset_key_changes_with_any_image_inside_the_folder(tmp_path) -> None:
    happy = tmp_path / "faces" / "train" / "happy"
    happy.mkdir(parents=True)
    (happy / "a.png").write_bytes(_png(10))
    app = _key_app(tmp_path / "faces")
    keys = [app.run().markdown[0].value]
    (happy / "b.png").write_bytes(_png(20))  # added deep inside: the top folder's stat is the same
    keys.append(app.run().markdown[0].value)
    (happy / "b.png").write_bytes(_png(30))  # modified
    os.utime(happy / "b.png", ns=(1, 10**18))
    keys.append(app.run().markdown[0].value)
    (happy / "a.png").unlink()  # removed
    keys.append(app.run().markdown[0].value)
    assert len(set(keys)) == 4, keys
    assert int(load_dataset(tmp_path / "faces").images.mean()) == 30


def test_folder_walk_is_bounded(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(sources, "MAX_FOLDER_ENTRIES", 50)
    happy = tmp_path / "big" / "train" / "happy"
    happy.mkdir(parents=True)
    for i in range(60):
        (happy / f"{i}.png").write_bytes(b"")
    err = _raises_data_error(lambda: load_dataset(tmp_path / "big"))
    assert str(err).startswith(str(tmp_path / "big")) and "more than 50" in str(err)
    assert source_signature(tmp_path / "big")  # never raises


# ======================================================= 9. typed paths, images, settings


def _load_in_subprocess(path: str, timeout: float = 30) -> str:
    """load_dataset(path) in a child process, so that a blocking read fails the test."""
    code = ("import sys; from fer_core.data import load_dataset, DataError\n"
            "try:\n    ds = load_dataset(sys.argv[1], skip_bad=True)\n"
            "    print('loaded', len(ds), ds.skipped)\n"
            "except DataError as exc:\n    print('DataError', exc)\n")
    done = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, check=True)
    return done.stdout.strip()


@pytest.mark.skipif(not os.path.exists("/proc/kmsg"), reason="no /proc/kmsg here")
def test_system_files_that_block_are_refused_at_once() -> None:
    start = time.perf_counter()
    out = _load_in_subprocess("/proc/kmsg")
    assert out.startswith("DataError /proc/kmsg:") and "system file" in out
    assert time.perf_counter() - start < 25


def test_devices_fifos_and_links_to_them_never_block(tmp_path) -> None:
    os.mkfifo(tmp_path / "pipe.csv")
    assert "not a regular file" in _load_in_subprocess(str(tmp_path / "pipe.csv"))
    assert "not a regular file" in _load_in_subprocess("/dev/zero")
    happy = tmp_path / "faces" / "train" / "happy"
    happy.mkdir(parents=True)
    (happy / "a.png").write_bytes(_png(9))
    os.mkfifo(tmp_path / "pipe.png")
    (happy / "pipe.png").symlink_to(tmp_path / "pipe.png")
    if os.path.exists("/proc/kmsg"):
        (happy / "kmsg.png").symlink_to("/proc/kmsg")  # looks like a regular empty file
    assert _load_in_subprocess(str(tmp_path / "faces")).startswith("loaded 1")


def test_the_whole_disk_is_refused_quickly() -> None:
    start = time.perf_counter()
    err = _raises_data_error(lambda: load_dataset("/"))
    assert str(err).startswith("/:") and time.perf_counter() - start < 20
    assert "more than 100,000 files and folders" in str(err)


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


@pytest.mark.parametrize("text", [
    pytest.param("[" * 100_000 + "]" * 100_000, id="nested-100000-deep"),
    '[{"urls": 5}]',
    '[{"urls": []}]',
    '[{"urls": ["stun:a.org", 3]}]',
    '[{"urls": "http://a.org"}]',
    '[{"urls": "turn:a.org", "username": 1, "credential": "p"}]',
    '[{"urls": "turn:a.org", "credential": ["p"]}]',
    '[{"urls": "stun:a.org", "port": 3478}]',
    '[["stun:a.org"]]',
])
def test_ice_servers_of_the_wrong_shape_are_a_problem_message(monkeypatch, text) -> None:
    monkeypatch.setenv(ICE_ENV, text)
    servers, problem = ice_servers()
    assert servers == [] and problem and ICE_ENV in problem and len(problem) < 300


def test_ice_servers_of_the_right_shape_are_used(monkeypatch) -> None:
    servers = [{"urls": "stun:a.org:3478"},
               {"urls": ["turn:b.org", "turns:b.org:443"], "username": "u", "credential": "p"}]
    monkeypatch.setenv(ICE_ENV, json.dumps(servers))
    assert ice_servers() == (servers, None)


@pytest.mark.parametrize("seed", [2**32, 2**40, float(2**33)])
def test_seeds_beyond_32_bits_are_refused_naming_the_field(seed) -> None:
    with pytest.raises(ConfigError) as err:
        TrainConfig(seed=seed)
    assert err.value.field == "seed" and "TrainConfig.seed" in str(err.value)
    assert TrainConfig(seed=2**32 - 1).seed == 2**32 - 1


@pytest.mark.parametrize(("options", "words"), [
    ({"width": True}, "width must be an integer"),
    ({"convs": False}, "convs must be an integer"),
    ({"convs": 0}, "convs must be >= 1"),
    ({"width": 0}, "width must be >= 1"),
    ({"width": 10**6}, "width must be <= 512"),
    ({"width": 2.5}, "width must be a whole number"),
    ({"width": "32"}, "width must be an integer"),
    ({"dropout": 1.0}, "dropout must be in [0, 1)"),
    ({"dropout": True}, "dropout must be a number"),
    ({"l2": -0.1}, "l2 must be in [0, 1]"),
    ({"l2": float("nan")}, "l2 must be finite"),
])
def test_model_options_are_checked(options, words) -> None:
    with pytest.raises(ConfigError) as err:
        TrainConfig(model="fernet", model_kwargs=options)
    assert err.value.field == "model_kwargs" and words in str(err.value)


def test_sane_model_options_are_kept() -> None:
    options = {"width": 16, "convs": 1, "dropout": 0.25, "l2": 0.001}
    assert TrainConfig(model="fernet", model_kwargs=options).model_kwargs == options
    assert TrainConfig(model="fernet", model_kwargs={"width": 16.0}).model_kwargs == {"width": 16}


# ======================================================= 9. what the CSV messages say


@pytest.mark.parametrize("header", [HEADER, "pixels,emotion,Usage"])
def test_comma_separated_pixels_are_named(header: str) -> None:
    pixels = '"' + ",".join(["7"] * 2304) + '"'
    line = f"3,{pixels},Training" if header == HEADER else f"{pixels},3,Training"
    err = _raises_data_error(lambda: parse_csv_bytes(_csv(line, header=header), "c.csv"))
    assert "3 fields, expected 3" not in str(err)
    assert "pixels field contains commas" in str(err) and "spaces" in str(err)


def test_unquoted_comma_separated_pixels_are_named() -> None:
    err = _raises_data_error(lambda: parse_csv_bytes(
        _csv("3," + ",".join(["7"] * 2304) + ",Training"), "c.csv"))
    assert "2,306 fields, expected 3" in str(err) and "separated by commas" in str(err)


@pytest.mark.parametrize("value", ["-5", "-0", "-255"])
def test_a_negative_pixel_is_out_of_range_not_non_numeric(value: str) -> None:
    err = _raises_data_error(lambda: parse_csv_bytes(_csv("3," + _pixels(4, value) + ",Training"),
                                                      "n.csv"))
    assert f"pixel value {value!r} at position 4 is outside 0-255 (negative)" in str(err)
    assert "pixel values outside 0-255" in str(err) and "non-numeric" not in str(err)


@pytest.mark.parametrize(("value", "loaded"), [("0255", 255), ("000", 0), ("00042", 42)])
def test_leading_zeros_are_fine(value: str, loaded: int) -> None:
    ds = parse_csv_bytes(_csv("03," + _pixels(6, value) + ",Training"), "z.csv")
    assert int(ds.images.ravel()[5]) == loaded and int(ds.labels[0]) == 3


@pytest.mark.parametrize("value", ["0256", "1000", "00999"])
def test_leading_zeros_do_not_hide_values_above_255(value: str) -> None:
    err = _raises_data_error(lambda: parse_csv_bytes(_csv("3," + _pixels(6, value) + ",Training"),
                                                      "z.csv"))
    assert f"pixel value {value!r} at position 6 is outside 0-255 (above 255)" in str(err)

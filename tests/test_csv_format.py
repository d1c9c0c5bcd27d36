"""fer_core.data.csv_format: any valid spelling of a FER CSV loads to exactly the rows written;
a damaged one loads the right rows or raises DataError naming the row, the column and the
problem, in bounded memory; what the messages say about commas, signs, zeros and digits."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fer_core.data import DataError, csv_format, load_dataset, parse_csv_bytes
from fer_core.labels import SPLITS
from sample_files import HEADER, ROW, csv_lines, lines_csv, pixels, raises_data_error

pytestmark = pytest.mark.usefixtures("fer_dirs")


# ============================================================= any valid file


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
    lines = csv_lines(images, labels, usage, order=order, quote=draw(st.booleans()),
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



# ============================================================== damaged files


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
    lines = csv_lines(images, np.arange(n) % 7, usage)
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
    lines = csv_lines(images, [0, 1], ["Training"] * 2)
    lines.insert(2, "3," + "9" * 20_000_000 + ",Training")
    with pytest.raises(DataError) as err:
        parse_csv_bytes("\n".join(lines).encode(), "huge.csv")
    assert err.value.row == 3 and err.value.column == "pixels" and err.value.count == 1
    ds = parse_csv_bytes("\n".join(lines).encode(), "huge.csv", skip_bad=True)
    assert len(ds) == 2 and ds.skipped == 1



# ===================================================================== memory


def _peak_mb(fn) -> float:
    """Peak traced memory (numpy's arrays included) while fn() runs, in MB."""
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak / 2**20


@pytest.mark.parametrize("header", [HEADER, "Usage,pixels,emotion"])
def test_blank_lines_cost_no_memory_per_line(header: str) -> None:
    """4 MB of blank lines around one row: the old parser held ~240 bytes a line (~1 GB
    here; 4 GB for 16 MB), now only the row and the chunk being read."""
    row = ROW if header == HEADER else "Training," + " ".join(["7"] * 2304) + ",3"
    content = lines_csv(*[""] * (4 * 2**20), row, header=header)
    box = {}
    peak = _peak_mb(lambda: box.update(ds=parse_csv_bytes(content, "blank.csv")))
    assert len(box["ds"]) == 1 and int(box["ds"].labels[0]) == 3
    assert peak < 80, f"{peak:.0f} MB for {len(content) / 2**20:.0f} MB of blank lines"


def test_short_lines_are_counted_not_kept() -> None:
    """2 MB of short bad lines: each is one bad row (counted, first one named), in bounded
    memory, with or without skip_bad."""
    content = lines_csv(ROW, *["1,2,Training"] * 170_000)
    err = raises_data_error(lambda: parse_csv_bytes(content, "short.csv"))
    assert err.row == 3 and err.count == 170_000 and "1 pixel values, expected 2,304" in str(err)
    box = {}
    peak = _peak_mb(lambda: box.update(ds=parse_csv_bytes(content, "short.csv", skip_bad=True)))
    assert len(box["ds"]) == 1 and box["ds"].skipped == 170_000
    assert peak < 60, f"{peak:.0f} MB for {len(content) / 2**20:.1f} MB of short lines"


def test_running_out_of_memory_is_a_data_error(tmp_path, monkeypatch) -> None:
    path = tmp_path / "big.csv"
    path.write_bytes(lines_csv(ROW))

    def exhausted(*args, **kwargs):
        return np.empty(2**62, dtype=np.uint8)  # numpy's _ArrayMemoryError

    monkeypatch.setattr(csv_format, "_parse_canonical", exhausted)
    err = raises_data_error(lambda: load_dataset(path, use_cache=False))
    assert str(err).startswith(str(path)) and "not enough memory" in str(err)



# =========================================================== non-ASCII digits


@pytest.mark.parametrize("digit", ["²", "①", "٣", "𝟓", "٣4"])
def test_only_ascii_digits_are_pixels(digit: str) -> None:
    content = lines_csv(ROW, "3," + pixels(5, digit) + ",Training")
    err = raises_data_error(lambda: parse_csv_bytes(content, "odd.csv"))
    assert err.row == 3 and err.column == "pixels" and err.count == 1
    assert f"pixel value {digit!r} at position 5" in str(err) and "ASCII" in str(err)
    ds = parse_csv_bytes(content, "odd.csv", skip_bad=True)
    assert len(ds) == 1 and ds.skipped == 1


@pytest.mark.parametrize("digit", ["²", "٣", "𝟓"])
def test_only_ascii_digits_are_labels(digit: str) -> None:
    content = lines_csv(ROW, digit + ROW[1:])
    err = raises_data_error(lambda: parse_csv_bytes(content, "odd.csv"))
    assert err.row == 3 and err.column == "emotion"
    assert len(parse_csv_bytes(content, "odd.csv", skip_bad=True)) == 1



# ====================================================== what the messages say


@pytest.mark.parametrize("header", [HEADER, "pixels,emotion,Usage"])
def test_comma_separated_pixels_are_named(header: str) -> None:
    pixels = '"' + ",".join(["7"] * 2304) + '"'
    line = f"3,{pixels},Training" if header == HEADER else f"{pixels},3,Training"
    err = raises_data_error(lambda: parse_csv_bytes(lines_csv(line, header=header), "c.csv"))
    assert "3 fields, expected 3" not in str(err)
    assert "pixels field contains commas" in str(err) and "spaces" in str(err)


def test_unquoted_comma_separated_pixels_are_named() -> None:
    err = raises_data_error(lambda: parse_csv_bytes(
        lines_csv("3," + ",".join(["7"] * 2304) + ",Training"), "c.csv"))
    assert "2,306 fields, expected 3" in str(err) and "separated by commas" in str(err)


@pytest.mark.parametrize("value", ["-5", "-0", "-255"])
def test_a_negative_pixel_is_out_of_range_not_non_numeric(value: str) -> None:
    err = raises_data_error(lambda: parse_csv_bytes(lines_csv("3," + pixels(4, value) + ",Training"),
                                                      "n.csv"))
    assert f"pixel value {value!r} at position 4 is outside 0-255 (negative)" in str(err)
    assert "pixel values outside 0-255" in str(err) and "non-numeric" not in str(err)


@pytest.mark.parametrize(("value", "loaded"), [("0255", 255), ("000", 0), ("00042", 42)])
def test_leading_zeros_are_fine(value: str, loaded: int) -> None:
    ds = parse_csv_bytes(lines_csv("03," + pixels(6, value) + ",Training"), "z.csv")
    assert int(ds.images.ravel()[5]) == loaded and int(ds.labels[0]) == 3


@pytest.mark.parametrize("value", ["0256", "1000", "00999"])
def test_leading_zeros_do_not_hide_values_above_255(value: str) -> None:
    err = raises_data_error(lambda: parse_csv_bytes(lines_csv("3," + pixels(6, value) + ",Training"),
                                                      "z.csv"))
    assert f"pixel value {value!r} at position 6 is outside 0-255 (above 255)" in str(err)


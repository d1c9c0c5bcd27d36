"""FER2013's CSV format: `emotion,pixels[,Usage]`, a header first, 2,304 space-separated grey
levels per row; `parse_csv_bytes` turns its bytes into a FerDataset, and for bad rows names
the first one (row, column, what is wrong) and counts them all.

Kaggle's file is ~290 MB of text. Parsing it token by token in Python is slow (the baseline
`benchmarks/load_csv.py` times beside this parser); here each
chunk of lines is parsed with whole-array numpy operations on the raw bytes (digits are bytes
48..57): a token ends where a digit is followed by a non-digit, and its value is built from
the (up to three) digits before that. The label is the first token of each line, so a good
line has exactly 1 + 2,304 tokens. Lines that break the fast path's assumptions are checked
one by one to name the problem. The parser's memory follows the rows a file can hold (a row
is at least 4,609 bytes): blank and short lines are counted, not kept. Only ASCII digits are
pixels.
"""

from __future__ import annotations

import csv
import io
import os
import re
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from fer_core.data.dataset import DataError, FerDataset
from fer_core.labels import EMOTIONS, IMG_SIZE, NUM_PIXELS, SPLITS

_CHUNK_BYTES = 1 << 20  # ~130 lines: the temporaries stay in cache
_PIXEL_TOKENS = NUM_PIXELS
_USAGE_NAMES = {s.lower(): s for s in SPLITS}
_BLANK_BYTES = b" \t\r"  # a line of only these is a blank line
_CHUNK_LINES = 1 << 13  # at most this many lines a chunk: bounds the per-line temporaries
_MIN_ROW_BYTES = 2 * _PIXEL_TOKENS + 1  # "0,0 0 ... 0": a shorter line cannot be a row
_ROW_FIELDS = ("start", "end", "c1", "kind", "label", "tokens", "full", "usage")
_NON_SPACE = re.compile(rb"[^ \t\n\r\x0b\x0c]")
# Problem kinds, in the order a line is blamed for them, with the column each concerns.
_KINDS = {
    "fields": (None, "wrong number of fields"),
    "label": ("emotion", "label not an integer 0-6"),
    "token": ("pixels", "non-numeric pixel values"),
    "count": ("pixels", f"pixel count other than {NUM_PIXELS:,}"),
    "range": ("pixels", "pixel values outside 0-255"),
    "usage": ("Usage", "unknown Usage value"),
}


def parse_csv_bytes(data: bytes, label: str, *, skip_bad: bool = False) -> FerDataset:
    """Parse FER2013 CSV text (`emotion,pixels[,Usage]`, header first) into a FerDataset.

    Without a Usage column every row goes to Training (see `split_dataset`).
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if not data or data.isspace():
        raise DataError(label, "the file is empty", count=0)
    if _looks_utf16(data[:4096]):
        raise DataError(label, "the file is UTF-16 text, not a CSV in UTF-8: save it as UTF-8 "
                        "(or plain ASCII) CSV", count=0)
    if b"\x00" in data[:65536]:
        raise DataError(label, "not a CSV file (binary content)", count=0)
    header_end = data.find(b"\n")
    header_end = len(data) if header_end < 0 else header_end
    try:
        header = data[:header_end].decode("utf-8").strip("\r")
    except UnicodeDecodeError:
        raise DataError(label, "not a CSV file (the first line is not text)", count=0) from None
    try:
        columns = next(csv.reader([header]), [])
    except csv.Error:  # a stray carriage return or NUL: read it as plain comma-separated
        columns = header.split(",")
    keys = [c.strip().lower() for c in columns]
    missing = [c for c in ("emotion", "pixels") if c not in keys]
    if missing:
        n_rows = max(data.count(b"\n"), 1)
        shown = ", ".join(repr(c[:24]) for c in columns[:5]) + (", ..." if len(columns) > 5 else "")
        raise DataError(
            label,
            f"missing column{'s' * (len(missing) > 1)} {' and '.join(map(repr, missing))}: "
            f"expected a header row 'emotion,pixels,Usage', found {shown or 'nothing'} "
            f"(so none of the {n_rows:,} rows can be read)",
            row=1,
            count=n_rows,
        )
    has_usage = "usage" in keys
    if keys != ["emotion", "pixels", "usage"][: len(keys)] or len(keys) < 2:
        data = _canonical_csv(data, label, columns, has_usage)
    return _parse_canonical(data, label, has_usage, skip_bad)


def _looks_utf16(head: bytes) -> bool:
    """Whether a file starts like a FER CSV saved as UTF-16 (some Windows editors do)."""
    head = head[: len(head) // 2 * 2]
    for encoding in ("utf-16", "utf-16-le", "utf-16-be"):
        try:
            text = head.decode(encoding).lower()
        except UnicodeDecodeError:
            continue
        if "emotion" in text and "pixels" in text:
            return True
    return False


def _canonical_csv(data: bytes, label: str, columns: list[str], has_usage: bool) -> bytes:
    """Rewrite a CSV whose columns are in another order (or with extra ones) as
    `emotion,pixels[,Usage]` so the fast parser applies; row numbers are kept. Done chunk by
    chunk (as the fast parser cuts them), so a file of many short lines needs little memory."""
    wanted = {c.strip().lower(): c for c in columns}
    names = [wanted["emotion"], wanted["pixels"]] + ([wanted["usage"]] if has_usage else [])
    body = data.find(b"\n") + 1
    parts = [",".join(names).encode()]
    if body:
        for lo, hi in _chunk_spans(data, np.frombuffer(data, dtype=np.uint8), body):
            piece = data[lo : hi - 1] if data[hi - 1 : hi] == b"\n" else data[lo:hi]
            parts.append(_canonical_lines(data[:body], piece, names, label))
    return b"\n".join(parts) + (b"\n" if body and data.endswith(b"\n") else b"")


def _canonical_lines(header: bytes, piece: bytes, names: list[str], label: str) -> bytes:
    """The lines of `piece` (no final newline) with the columns `names`, in that order."""
    import pandas as pd

    # Blank lines are taken out before pandas (which would read them as rows of empty
    # fields) and put back as blank lines, so the row numbers stay those of the file.
    raw = piece.split(b"\n")
    blank = [not line.strip(_BLANK_BYTES) for line in raw]
    if all(blank):
        return b"\n" * (len(raw) - 1)
    kept = header + b"\n".join(line for line, b in zip(raw, blank) if not b)
    try:
        frame = pd.read_csv(io.BytesIO(kept), usecols=names, dtype=str, keep_default_na=False,
                            skip_blank_lines=False)
    except (ValueError, pd.errors.ParserError) as exc:
        raise DataError(label, f"not a readable CSV file ({str(exc).splitlines()[0]})",
                        count=0) from None
    rows = (_csv_line(row) for row in frame[names].itertuples(index=False, name=None))
    lines = ["" if b else next(rows, "") for b in blank]
    return "\n".join([*lines, *rows]).encode()


def _csv_line(fields: tuple[str, ...]) -> str:
    """Fields joined by commas, those holding a comma quoted (the parser then names them)."""
    return ",".join(f'"{f}"' if "," in f else f for f in fields)


def _parse_canonical(data: bytes, label: str, has_usage: bool, skip_bad: bool) -> FerDataset:
    ncols = 3 if has_usage else 2
    body = data.find(b"\n") + 1
    if (body == 0 or body == len(data)
            or data.endswith(b"\n") and _NON_SPACE.search(data, body) is None):
        raise DataError(label, "no data rows after the header", count=0)
    arr = np.frombuffer(data, dtype=np.uint8)
    with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
        chunks = list(pool.map(lambda s: _parse_chunk(arr, data, s[0], s[1], ncols),
                               _chunk_spans(data, arr, body)))
    lines = {k: np.concatenate([c[k] for c in chunks]) for k in _ROW_FIELDS}
    first_line = np.cumsum([0] + [c["n_lines"] for c in chunks[:-1]])
    line_no = np.concatenate([c["line"] + n for c, n in zip(chunks, first_line)]) + 2
    kind = lines["kind"]
    # Rows whose only fault is odd separators (tabs, quotes inside) are parsed one by one.
    rescued: dict[int, np.ndarray] = {}
    for i in np.flatnonzero(kind == "token").tolist():
        row_pixels = _slow_pixels(data, lines["start"][i], lines["end"][i])
        if row_pixels is not None:
            rescued[i] = row_pixels
            kind[i] = ""
    good = kind == ""
    details = _bad_rows(data, lines, line_no, _dropped_rows(chunks, first_line), ncols)
    if all(c["pixels"] is not None for c in chunks) and not rescued:
        # Good lines are full lines: take their rows of the grids the workers cut.
        in_grid = good[lines["full"]]
        pixels = np.concatenate([c["pixels"] for c in chunks])
        images = pixels if in_grid.all() else pixels[in_grid]
        return _finish(label, images, lines["label"][good], lines["usage"][good], details,
                       skip_bad)
    matrix = _good_rows(data, chunks, lines, good, rescued)
    return _finish(label, np.ascontiguousarray(matrix[:, 1:]), matrix[:, 0],
                   lines["usage"][good], details, skip_bad)


def _chunk_spans(data: bytes, arr: np.ndarray, body: int) -> list[tuple[int, int]]:
    """Chunks of whole lines: about _CHUNK_BYTES each, and at most _CHUNK_LINES lines, so
    the per-line work of a file of short lines stays as small as that of real rows."""
    bounds = [body]
    while bounds[-1] < len(data):
        lo = bounds[-1]
        nxt = data.find(b"\n", lo + _CHUNK_BYTES)
        hi = len(data) if nxt < 0 else nxt + 1
        if data.count(b"\n", lo, hi) > _CHUNK_LINES:
            newlines = np.flatnonzero(arr[lo:hi] == 10)
            bounds.extend((newlines[_CHUNK_LINES - 1 :: _CHUNK_LINES] + lo + 1).tolist())
        if bounds[-1] != hi:
            bounds.append(hi)
    return list(zip(bounds[:-1], bounds[1:]))


def _good_rows(data: bytes, chunks: list[dict], lines: dict[str, np.ndarray], good: np.ndarray,
               rescued: dict[int, np.ndarray]) -> np.ndarray:
    """uint8 (label, 2,304 pixels) of every good line, from the tokens of the kept lines (and
    the one-by-one parse of the rescued ones)."""
    values = np.concatenate([_chunk_values(c) for c in chunks])
    fast = good.copy()
    fast[list(rescued)] = False
    if fast.all():
        matrix = values.reshape(-1, 1 + _PIXEL_TOKENS)
    else:
        matrix = values[np.repeat(fast, lines["tokens"])].reshape(-1, 1 + _PIXEL_TOKENS)
    if not rescued:
        return matrix
    full = np.empty((int(good.sum()), 1 + _PIXEL_TOKENS), dtype=np.uint8)
    full[fast[good]] = matrix
    for j, row in zip(np.flatnonzero(~fast[good]), sorted(rescued)):
        full[j, 0] = int(data[lines["start"][row] : lines["c1"][row]].strip(b' "\r'))
        full[j, 1:] = rescued[row]
    return full


def _chunk_values(chunk: dict) -> np.ndarray:
    """The tokens of a chunk's kept lines in order (rebuilt from the grid when regular)."""
    if chunk["values"] is not None:
        return chunk["values"]
    labels = chunk["first"].astype(np.uint8)[:, None]
    return np.hstack([labels, chunk["pixels"]]).ravel()


def _finish(label: str, pixels: np.ndarray, labels: np.ndarray, usage: np.ndarray,
            details: list[tuple[str, int, int, str]], skip_bad: bool) -> FerDataset:
    """Raise for bad rows (unless skip_bad) and build the dataset from the good ones.
    `details`: (kind, rows, first row, description) per problem kind, first row first."""
    n_bad = sum(n for _, n, _, _ in details)
    if details and not skip_bad:
        k, _, row, detail = details[0]
        summary = ", ".join(f"{n:,} {_KINDS[kk][1]}" for kk, n, _, _ in details)
        raise DataError(
            label,
            f"{detail}; {n_bad:,} bad rows in all ({summary}). "
            "Fix the file, or skip bad rows to load the rest",
            row=row, column=_KINDS[k][0], count=n_bad,
        )
    problems = [f"skipped {n:,} rows with {_KINDS[k][1]} (first: row {row}: {detail})"
                for k, n, row, detail in details]
    if not len(pixels):
        raise DataError(label, "no valid data rows", count=n_bad)
    return FerDataset(
        images=pixels.reshape(-1, IMG_SIZE, IMG_SIZE),
        labels=labels.astype(np.int64),
        usage=usage,
        source=label,
        synthetic=False,
        skipped=n_bad,
        problems=tuple(problems),
    )._sorted_by_split()


def _bad_rows(data: bytes, lines: dict[str, np.ndarray], line_no: np.ndarray,
              dropped: dict[str, tuple[int, int, int, int]],
              ncols: int) -> list[tuple[str, int, int, str]]:
    """(kind, rows, first row, description) per problem kind, the first bad row of the file
    first, from the kept lines and the short lines the workers only counted."""
    details = []
    for k in _KINDS:
        idx = np.flatnonzero(lines["kind"] == k)
        n, first = len(idx), None
        if len(idx):
            first = (int(line_no[idx[0]]), lines["start"][idx[0]], lines["end"][idx[0]])
        if k in dropped:
            n += dropped[k][0]
            if first is None or dropped[k][1] < first[0]:
                first = dropped[k][1:]
        if n:
            details.append((k, n, first[0], _describe(data, first[1], first[2], k, ncols)))
    return sorted(details, key=lambda d: d[2])


def _dropped_rows(chunks: list[dict],
                  first_line: np.ndarray) -> dict[str, tuple[int, int, int, int]]:
    """kind -> (rows, first row, its start, end) of the short bad lines of all chunks."""
    out: dict[str, tuple[int, int, int, int]] = {}
    for chunk, base in zip(chunks, first_line.tolist()):
        for k, (n, line, start, end) in chunk["dropped"].items():
            if k in out:
                out[k] = (out[k][0] + n, *out[k][1:])
            else:
                out[k] = (n, line + base + 2, start, end)
    return out


def _parse_chunk(arr: np.ndarray, data: bytes, lo: int, hi: int, ncols: int) -> dict:
    """Scan and judge the lines of arr[lo:hi]. Only lines long enough to be a row are kept
    (with their tokens); blank lines are dropped and short ones (always bad) only counted,
    so what is kept follows the rows a file can hold, not its number of lines."""
    s = _scan_chunk(arr, lo, hi, ncols)
    n = len(s["start"])
    tokens = s["seg"].sum(axis=1)
    values = s["values"]
    first = (values[np.minimum(s["first"], len(values) - 1)] if len(values)
             else np.zeros(n, dtype=np.uint16))
    over_line = np.searchsorted(s["first"], s["over"], side="right") - 1
    at_first = s["over"] == s["first"][over_line]
    over_label, over_pixel = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    over_label[over_line[at_first]] = True
    over_pixel[over_line[~at_first]] = True
    kind = np.full(n, "", dtype="<U6")

    def blame(mask: np.ndarray, name: str) -> None:
        kind[mask & (kind == "")] = name

    blame(s["commas"] != ncols - 1, "fields")
    blame((s["seg"][:, 0] != 1) | s["bad_label_char"] | over_label
          | (first > len(EMOTIONS) - 1), "label")
    blame(s["bad_pixel_char"], "token")
    blame(s["seg"][:, 1] != _PIXEL_TOKENS, "count")
    blame(over_pixel | s["negative_pixel"], "range")
    blank = (tokens == 0) & (s["commas"] == 0) & (s["visible"] == 0)
    long = ~blank & (s["end"] - s["start"] >= _MIN_ROW_BYTES)
    keep = np.flatnonzero(long)
    out = {"n_lines": n, "line": keep, "start": s["start"][keep] + lo,
           "end": s["end"][keep] + lo, "c1": s["c1"][keep] + lo, "kind": kind[keep],
           "label": first[keep], "tokens": tokens[keep],
           "full": tokens[keep] == 1 + _PIXEL_TOKENS}
    out["usage"] = _usage_column(data, out, s["c2"][keep] + lo, ncols)
    out["dropped"] = {}
    short = ~blank & ~long
    for k in np.unique(kind[short]).tolist():
        where = np.flatnonzero(short & (kind == k))
        i = int(where[0])
        out["dropped"][k] = (len(where), i, int(s["start"][i]) + lo, int(s["end"][i]) + lo)
    out["values"] = out["pixels"] = out["first"] = None
    if len(values) == (1 + _PIXEL_TOKENS) * int(out["full"].sum()):
        # Regular chunk: every token sits in a line of 1 + 2,304; cut the grid here, in the
        # worker thread, so the merge only concatenates.
        grid = values.reshape(-1, 1 + _PIXEL_TOKENS)
        out["first"] = grid[:, 0].copy()
        out["pixels"] = grid[:, 1:].astype(np.uint8)
    else:
        out["values"] = values[np.repeat(long, tokens)].astype(np.uint8)
    return out


def _usage_column(data: bytes, lines: dict[str, np.ndarray], c2: np.ndarray,
                  ncols: int) -> np.ndarray:
    """Split name of each kept line (Training without a Usage column); a good line with an
    unknown one is blamed for it."""
    usage = np.full(len(lines["kind"]), SPLITS[0], dtype="<U11")
    if ncols == 2:
        return usage
    names: dict[bytes, str] = {}
    for i in np.flatnonzero(lines["kind"] == "").tolist():
        raw = data[c2[i] + 1 : lines["end"][i]]
        if raw not in names:
            text = raw.strip(b' \r"').decode("utf-8", "replace").lower()
            names[raw] = _USAGE_NAMES.get(text, "")
        usage[i] = names[raw]
    lines["kind"][usage == ""] = "usage"
    return usage


def _scan_chunk(arr: np.ndarray, lo: int, hi: int, ncols: int) -> dict[str, np.ndarray]:
    """Tokenise the whole lines in arr[lo:hi] (lo >= 3, just after a newline): per line its
    span, commas, tokens per field and stray characters (positions from lo); per token its
    value (the last three digits) and which tokens are above 255."""
    ext = arr[lo - 3 : hi]
    d = ext - np.uint8(48)  # digits become 0..9, everything else >= 10 (uint8 wraps)
    dig = d < 10
    dz = d * dig  # digits, 0 elsewhere
    b, dg = ext[3:], dig[3:]
    end = np.empty_like(dg)  # a digit followed by a non-digit (or the chunk's end)
    np.greater(dg[:-1], dg[1:], out=end[:-1])
    end[-1:] = dg[-1:]
    # Value of the number ending at each byte (meaningful only at token ends), computed on
    # whole arrays, then gathered once at the token ends.
    every = np.multiply(dz[2:-1], 10, dtype=np.uint16)
    every += dz[3:]
    hundreds = np.multiply(dz[1:-2], dig[2:-1], dtype=np.uint16)
    hundreds *= 100
    every += hundreds
    token_end = np.flatnonzero(end)
    values = every.take(token_end)
    over = np.flatnonzero(values > 255)  # three digits above 255
    if np.any(dg & dig[2:-1] & dig[1:-2] & dig[:-3]):  # four digits or more in a row
        over = np.union1d(over, np.searchsorted(token_end, _long_over(b, dg, dig, end)))
    negative = b == 45  # a minus sign starting a number: a negative value, not stray text
    negative[:-1] &= dg[1:]
    negative[-1:] = False
    negative &= ~dig[2:-1]
    text_mask = b == 32
    np.logical_or(text_mask, dg, out=text_mask)
    np.logical_not(text_mask, out=text_mask)
    other = np.flatnonzero(text_mask)  # non-digit, non-space: separators and text
    kinds = b[other]
    newlines, commas = other[kinds == 10], other[kinds == 44]
    ends = newlines if len(b) and b[-1] == 10 else np.append(newlines, len(b))
    starts = np.concatenate([[0], ends[:-1] + 1])
    first = np.searchsorted(commas, starts)
    n_commas = np.searchsorted(commas, ends) - first
    ok = n_commas == ncols - 1
    padded = np.append(commas, len(b))
    c1_pos = np.where(ok, padded[np.minimum(first, len(commas))], starts)
    c2_pos = np.where(ok & (ncols == 3), padded[np.minimum(first + 1, len(commas))], ends)
    c2_pos = np.where(ok, c2_pos, starts)
    # Tokens per field, counted from the sorted token ends: label, pixels, the rest.
    at = [np.searchsorted(token_end, x) for x in (starts, c1_pos, c2_pos, ends + 1)]
    at[2] = np.where(ok, at[2], at[3]) if ncols == 3 else at[3]
    seg = np.stack([at[1] - at[0], at[2] - at[1], at[3] - at[2]], axis=1)
    # Text inside the label or pixel field (other than quotes and CR) is a bad token; so is
    # a minus sign in the label, while one before a pixel value makes it out of range.
    stray = (kinds != 10) & (kinds != 44) & (kinds != 34) & (kinds != 13)
    fields = (starts, c1_pos, c2_pos, ncols)
    bad_label_char, bad_pixel_char = _field_flags(other[stray & ~negative[other]], *fields)
    minus_label, negative_pixel = _field_flags(np.flatnonzero(negative), *fields)
    visible = other[(kinds != 10) & (kinds != 13) & (kinds != 9)]
    return {
        "start": starts, "end": ends, "c1": c1_pos, "c2": c2_pos, "commas": n_commas,
        "seg": seg, "first": at[0], "values": values, "over": over,
        "bad_label_char": bad_label_char | minus_label, "bad_pixel_char": bad_pixel_char,
        "negative_pixel": negative_pixel,
        "visible": np.searchsorted(visible, ends) - np.searchsorted(visible, starts),
    }


def _long_over(b: np.ndarray, dg: np.ndarray, dig: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Ends of the tokens of four digits or more that are above 255: leading zeros do not
    count (0255 is 255)."""
    long_at = np.flatnonzero(end & dig[2:-1] & dig[1:-2] & dig[:-3])
    token_start = np.flatnonzero(dg & ~dig[2:-1])  # a digit after a non-digit
    start = token_start[np.searchsorted(token_start, long_at, side="right") - 1]
    nonzero = np.cumsum(dg & (b != 48), dtype=np.int32)  # non-zero digits up to each byte
    lead = nonzero[long_at - 3] - nonzero[start] + (b[start] != 48)
    return long_at[lead > 0]


def _field_flags(pos: np.ndarray, starts: np.ndarray, c1: np.ndarray, c2: np.ndarray,
                 ncols: int) -> tuple[np.ndarray, np.ndarray]:
    """Per line: whether any of the byte positions `pos` is in its label / its pixel field."""
    line_of = np.searchsorted(starts, pos, side="right") - 1
    in_label = pos < c1[line_of]
    in_pixels = ~in_label & (pos < c2[line_of]) if ncols == 3 else ~in_label
    label_flags = np.zeros(len(starts), dtype=bool)
    pixel_flags = np.zeros(len(starts), dtype=bool)
    label_flags[line_of[in_label]] = True
    pixel_flags[line_of[in_pixels]] = True
    return label_flags, pixel_flags


def _line_fields(data: bytes, start: int, end: int) -> list[str]:
    text = data[start:end].decode("utf-8", "replace").rstrip("\r")
    try:
        return next(csv.reader([text]), [])
    except csv.Error:  # e.g. a stray carriage return or NUL inside the line
        return text.split(",")


def _is_number(text: str) -> bool:
    """ASCII digits only: str.isdigit() also takes '²', '①', '٣' and '𝟓', and int() some."""
    return text.isascii() and text.isdigit()


def _slow_pixels(data: bytes, start: int, end: int) -> np.ndarray | None:
    """Pixels of a line whose separators the fast path refused (tabs, ...), or None."""
    fields = _line_fields(data, start, end)
    if len(fields) < 2 or not _is_number(fields[0].strip()):
        return None
    tokens = fields[1].split()
    if len(tokens) != NUM_PIXELS or not all(_is_number(t) for t in tokens):
        return None
    pixels = np.array(tokens, dtype=np.int64)
    return pixels.astype(np.uint8) if pixels.max() <= 255 else None


def _describe(data: bytes, start: int, end: int, kind: str, ncols: int) -> str:
    """A precise description of what is wrong with a line (only called on a few lines)."""
    fields = _line_fields(data, start, end)
    if kind == "fields":
        return _describe_fields(fields, ncols)
    if kind == "label":
        return f"label {fields[0][:20]!r} is not an integer 0-6"
    tokens = fields[1].split() if len(fields) > 1 else []
    if kind == "count":
        return f"{len(tokens):,} pixel values, expected {NUM_PIXELS:,}"
    if kind in ("token", "range"):
        problems = [(pos, tok, _pixel_problem(tok)) for pos, tok in enumerate(tokens, start=1)]
        problems = [p for p in problems if p[2]]
        wanted = [p for p in problems if (p[2][0] == "token") == (kind == "token")]
        for pos, tok, (_, what) in wanted[:1] or problems[:1]:
            return f"pixel value {tok[:20]!r} at position {pos:,} {what}"
        return "pixel values are not whole numbers 0-255"
    value = fields[2].strip() if len(fields) > 2 else ""
    return f"Usage {value[:20]!r} is not one of {', '.join(SPLITS)}"


def _pixel_problem(token: str) -> tuple[str, str] | None:
    """(kind, what is wrong) with one pixel value, or None for 0..255 (leading zeros are
    fine: 0255 is 255)."""
    if _is_number(token):
        return None if int(token) <= 255 else ("range", "is outside 0-255 (above 255)")
    if token.startswith("-") and _is_number(token[1:]):
        return "range", "is outside 0-255 (negative)"
    if token.isdigit() or token.lstrip("-").isdigit():
        return "token", "is not written in the ASCII digits 0-9"
    return "token", "is not a whole number 0-255"


def _describe_fields(fields: list[str], ncols: int) -> str:
    """What is wrong with the fields of a line whose commas are not those of a FER row."""
    names = ["emotion", "pixels", "Usage"][:ncols]
    expected = ",".join(names)
    with_commas = [name for name, f in zip(names, fields) if "," in f]
    if len(fields) == ncols and with_commas:  # the commas are inside a quoted field
        if with_commas[0] == "pixels":
            return ("the pixels field contains commas: its values must be separated by "
                    f"spaces (expected {expected})")
        return f"the {with_commas[0]} field contains commas (expected {expected})"
    if len(fields) > ncols and sum(_is_number(f.strip()) for f in fields[1:]) > ncols:
        return (f"{len(fields):,} fields, expected {ncols} ({expected}): the pixel values "
                "seem to be separated by commas instead of spaces")
    return f"{len(fields):,} fields, expected {ncols} ({expected})"

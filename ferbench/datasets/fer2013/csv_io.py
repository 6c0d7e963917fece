"""The CSV reading shared by the FER2013 and FER+ converters: every column read as bytes, then
text columns checked as UTF-8 and pixel strings scanned without a per-value loop. A faulty row
(wrong field count, bytes that are not UTF-8, bad pixels) is a fault of that row only."""

from __future__ import annotations

import csv
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from ...errors import ConversionError

if TYPE_CHECKING:
    from ..base import Report

SIDE = 48
NUM_PIXELS = SIDE * SIDE
_BLOCK = 8 << 20
_SPACE, _WHITESPACE = 32, 1
_WHITESPACE_BYTES = b" \t\r\n\v\f"
#: Byte → 1 for whitespace, else 0 (only consulted when a row holds something besides digits and spaces).
_CHAR_KIND = np.zeros(256, dtype=np.uint8)
_CHAR_KIND[list(_WHITESPACE_BYTES)] = _WHITESPACE
_TOKEN = re.compile(rb"[^" + re.escape(_WHITESPACE_BYTES) + rb"]+")

@dataclass
class CsvData:
    """The structurally sound rows of a CSV: a string table plus each row's 0-based data-row index."""

    file: str
    total: int
    rows: np.ndarray
    table: pa.Table
    #: blank lines skipped before the header (the caller notes them)
    blank_before_header: int = 0

    def note_blank_lines(self, report: "Report") -> None:
        if self.blank_before_header:
            report.note(f"{self.file}: {self.blank_before_header} blank line(s) before the CSV header skipped")


def read_header(path: Path) -> tuple[list[str], int]:
    """The header names of a CSV, whitespace-stripped (icml_face_data.csv has ``, Usage``), and
    the number of physical lines up to and including the header line.

    Blank lines (empty, whitespace or bare commas) before the header are skipped: a file whose
    first line is blank is not empty. Only a file with nothing but blank lines is."""
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as f:
        reader = csv.reader(f)
        for names in reader:
            if any(n.strip() for n in names):
                return [n.strip() for n in names], reader.line_num
        blank = reader.line_num
    what = f"only {blank} blank line(s)" if blank else "0 bytes of text"
    raise ConversionError(f"{path}: empty file ({what}), no CSV header and no data")


def read_csv(path: Path, file: str, required: Sequence[str], binary: Sequence[str] = ()) -> tuple[CsvData, list[tuple[int, str, str]]]:
    """Read every column as text (``binary`` ones as bytes); rows with a wrong field count, or
    with bytes that are not UTF-8 in a text column, become faults.

    Returns the data plus ``(row, kind, reason)`` faults; the caller reports them in row order.
    """
    names, header_lines = read_header(path)
    missing = [n for n in required if n not in names]
    if missing:
        raise ConversionError(f"{file}: header {names} lacks column(s) {missing}")
    faults: list[tuple[int, str, str]] = []

    def invalid(row: Any) -> str:
        if row.number is None:  # only with threaded reads, which are off
            return "error"
        # ``number`` counts the skipped lines, then the non-empty lines after them, from 1.
        faults.append((row.number - header_lines - 1, "malformed-row", f"{row.actual_columns} fields, expected {row.expected_columns}"))
        return "skip"

    try:
        table = pcsv.read_csv(
            path,
            read_options=pcsv.ReadOptions(column_names=names, skip_rows=header_lines, use_threads=False, block_size=_BLOCK),
            parse_options=pcsv.ParseOptions(invalid_row_handler=invalid),
            convert_options=pcsv.ConvertOptions(column_types={n: pa.binary() for n in names}),
        )
    except (pa.ArrowInvalid, OSError) as exc:
        raise ConversionError(f"{file}: cannot parse as CSV ({exc})") from None
    total = table.num_rows + len(faults)
    rows = np.delete(np.arange(total, dtype=np.int64), [r for r, _, _ in faults])
    table, rows = _text_columns(table, rows, [n for n in names if n not in binary], faults)
    return CsvData(file, total, rows, table, header_lines - 1), faults


def _text_columns(table: pa.Table, rows: np.ndarray, text: list[str], faults: list[tuple[int, str, str]]) -> tuple[pa.Table, np.ndarray]:
    """Cast the ``text`` columns (read as bytes) to strings; a row with bytes that are not UTF-8
    is a ``malformed-row`` fault of its own and is dropped, never the end of the file."""
    bad = np.zeros(table.num_rows, dtype=bool)
    for name in text:
        try:
            table.column(name).cast(pa.string())
        except pa.ArrowInvalid:
            for i, value in enumerate(table.column(name).to_pylist()):
                try:
                    value is None or value.decode("utf-8")
                except UnicodeDecodeError as exc:
                    if not bad[i]:
                        shown = value[max(0, exc.start - 10) : exc.end + 10]
                        faults.append((int(rows[i]), "malformed-row", f"column {name!r} is not UTF-8 text (byte {exc.start}: {shown!r})"))
                    bad[i] = True
    if bad.any():
        table, rows = table.filter(pa.array(~bad)), rows[~bad]
    columns = [table.column(n).cast(pa.string()) if n in text else table.column(n) for n in table.column_names]
    return pa.table(columns, names=table.column_names), rows


def stripped(table: pa.Table, name: str) -> list[str]:
    """A string column with surrounding whitespace removed."""
    return pc.utf8_trim_whitespace(table.column(name)).to_pylist()


def _tokens(chunk: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised scan of the whitespace-separated integers in a binary array.

    Returns the value of every digit run (65535 if longer than 3 digits), the number of runs per
    row, and a per-row flag for a value above 255 or a character other than digits and whitespace.
    """
    buffers = chunk.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int32, count=len(chunk) + 1, offset=chunk.offset * 4).astype(np.int64)
    raw = np.frombuffer(buffers[2], dtype=np.uint8)[offsets[0] : offsets[-1]] if offsets[-1] > offsets[0] else np.zeros(0, np.uint8)
    offsets -= offsets[0]
    chars = np.insert(raw, offsets, _SPACE)  # a space before every row and at the end: runs never cross rows
    offsets += np.arange(len(offsets))
    digits = chars - np.uint8(48)
    is_digit = digits < 10
    starts = np.flatnonzero(is_digit[1:] & ~is_digit[:-1]) + 1
    values = digits[starts].astype(np.uint16)
    more = np.ones(len(starts), dtype=bool)
    for k in (1, 2):
        more &= is_digit.take(starts + k, mode="clip")
        at = np.flatnonzero(more)
        values[at] = values[at] * 10 + digits[starts[at] + k]
    values[more & is_digit.take(starts + 3, mode="clip")] = 65535
    counts = np.diff(np.searchsorted(starts, offsets))
    bad = np.zeros(len(chunk), dtype=bool)
    bad[np.searchsorted(offsets, starts[values > 255], side="right") - 1] = True
    if np.count_nonzero(is_digit) + np.count_nonzero(chars == _SPACE) < len(chars):
        junk = np.flatnonzero(~is_digit & (_CHAR_KIND[chars] != _WHITESPACE))
        bad[np.searchsorted(offsets, junk, side="right") - 1] = True
    return values, counts, bad


def pixel_fault(text: bytes) -> tuple[str, str]:
    """Why one pixel string is unusable, as ``(fault kind, reason)`` (called for bad rows only)."""
    tokens = _TOKEN.findall(text)
    for i, tok in enumerate(tokens):
        if not tok.isdigit():
            return "malformed-row", f"pixel {i} is {tok[:20].decode('ascii', 'replace')!r}, not an integer"
        if len(tok) > 3 or int(tok) > 255:
            return "malformed-row", f"pixel {i} is {tok[:20].decode()}, outside 0..255 (at most 3 digits)"
    return "bad-pixel-count", f"{len(tokens)} pixel values, expected {NUM_PIXELS}"


def parse_pixels(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel strings → ``(pixels (n_ok, 2304) uint8, ok mask over all rows)``, without a per-value
    loop; the CSV's chunks are scanned on all cores (numpy releases the GIL)."""
    blocks, oks = [], []
    with ThreadPoolExecutor(max(1, min(len(column.chunks), os.cpu_count() or 1))) as pool:
        scanned = list(pool.map(_tokens, column.chunks))
    for values, counts, bad in scanned:
        ok = (counts == NUM_PIXELS) & ~bad
        blocks.append(values[np.repeat(ok, counts)].astype(np.uint8).reshape(-1, NUM_PIXELS))
        oks.append(ok)
    if not oks:
        return np.zeros((0, NUM_PIXELS), np.uint8), np.zeros(0, bool)
    return np.concatenate(blocks), np.concatenate(oks)

"""AffectNet annotation parsing: the small release's ``.npy`` files and the full release's CSV
rows (see the ``loader`` module docstring for the formats and UNVERIFIED variants)."""

from __future__ import annotations

import ast
import math
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ...errors import SampleError

if TYPE_CHECKING:
    from ..base import Report

CSV_COLUMNS = (
    "subDirectory_filePath",
    "face_x",
    "face_y",
    "face_width",
    "face_height",
    "facial_landmarks",
    "expression",
    "valence",
    "arousal",
)
NO_VALUE = -2.0  # valence/arousal sentinel of Uncertain and No-Face
N_LANDMARK_VALUES = 136
#: AffectNet expression id → canonical index (8 None, 9 Uncertain and 10 No-Face: no emotion label).
LABEL_MAP: dict[str, int | None] = {**{str(i): i for i in range(8)}, "8": None, "9": None, "10": None}


class _NpySpec(NamedTuple):
    """What a ``.npy`` header says, with what reading it needs worked out once per header text."""

    dtype: np.dtype
    shape: tuple[int, ...]
    order: str  # "C" or "F" (Fortran order)
    count: int
    nbytes: int
    #: how the one value of a single-string array decodes ("ascii", "utf-32-le" or "utf-32-be"); else None
    codec: str | None


_NPY_HEADERS: dict[bytes, _NpySpec] = {}


def _npy_header(header: bytes, file: str) -> _NpySpec:
    try:
        meta = ast.literal_eval(header.decode("latin1"))
        dtype = np.lib.format.descr_to_dtype(meta["descr"])
        shape = tuple(int(n) for n in meta["shape"])
        fortran = bool(meta["fortran_order"])
    except (ValueError, SyntaxError, KeyError, TypeError) as exc:
        raise SampleError("bad-annotation", f"unreadable .npy header ({exc})", file=file) from None
    if dtype.hasobject:
        raise SampleError("bad-annotation", "pickled objects in .npy file", file=file)
    count = math.prod(shape)
    codec = None
    if count == 1 and dtype.kind == "S":
        codec = "ascii"
    elif count == 1 and dtype.kind == "U":
        codec = "utf-32-be" if dtype.byteorder == ">" else "utf-32-le"
    spec = _NpySpec(dtype, shape, "F" if fortran else "C", count, count * dtype.itemsize, codec)
    if len(_NPY_HEADERS) < 256:
        _NPY_HEADERS[header] = spec
    return spec


def read_npy(data: bytes, file: str) -> np.ndarray:
    """The array in ``.npy`` bytes (format versions 1-3, no pickled objects).

    About ten times cheaper than ``np.load`` on AffectNet's tiny files: the header dictionary
    is parsed once per distinct header text and cached (the files share a handful of headers).
    """
    spec, end = _npy_layout(data, file)
    return np.frombuffer(data, spec.dtype, spec.count, end).reshape(spec.shape, order=spec.order)


def _npy_text(data: bytes, file: str) -> str:
    """The one value of a ``.npy`` annotation as text, as ``_scalar_text(read_npy(data))`` gives
    it; the string dtypes the release uses are decoded without building an array."""
    spec, end = _npy_layout(data, file)
    if spec.codec is None:
        return _scalar_text(read_npy(data, file), file)
    raw = data[end : end + spec.nbytes]
    if spec.codec == "ascii":
        return raw.rstrip(b"\0").decode("ascii", "replace").strip()
    return raw.decode(spec.codec).rstrip("\0").strip()


def _npy_layout(data: bytes, file: str) -> tuple[_NpySpec, int]:
    """What the header of ``.npy`` bytes says and where the values start."""
    if data[:6] != b"\x93NUMPY" or len(data) < 10:
        raise SampleError("bad-annotation", "not a .npy file", file=file)
    start = 10 if data[6] == 1 else 12
    end = start + int.from_bytes(data[8:start], "little")
    header = data[start:end]
    spec = _NPY_HEADERS.get(header) or _npy_header(header, file)
    if len(data) - end < spec.nbytes:
        raise SampleError("bad-annotation", "truncated .npy file", file=file)
    return spec, end


def _scalar_text(arr: np.ndarray, file: str) -> str:
    """A one-value annotation as text: '3' for array('3'), array(['3']), array(b'3') or array(3)."""
    if arr.size != 1:
        raise SampleError("bad-annotation", f"{arr.size} values, expected 1", file=file)
    value = arr.reshape(-1)[0].item()
    if isinstance(value, bytes):
        return value.decode("ascii", "replace").strip()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _affect(text: str, file: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        raise SampleError("bad-annotation", f"{text!r} is not a number", file=file) from None
    return None if value == NO_VALUE else value


def _header(fields: list[str], rel: str, report: "Report") -> dict[str, int] | None:
    """Column positions: from the header row when there is one, else the standard order."""
    if fields[0] != CSV_COLUMNS[0]:
        report.note(f"{rel} has no header row; assumed the standard column order")
        return {c: i for i, c in enumerate(CSV_COLUMNS)}
    missing = [c for c in CSV_COLUMNS if c not in fields]
    if missing:
        report.fault("bad-header", f"header lacks {missing}; file skipped", rel, 1)
        return None
    return {c: fields.index(c) for c in CSV_COLUMNS}


class RowFault(ValueError):
    """A CSV row that cannot be used; ``kind`` is the fault code."""

    def __init__(self, reason: str, kind: str = "malformed-row"):
        super().__init__(reason)
        self.kind = kind


def _csv_payload(fields: list[str], col: dict[str, int]) -> tuple[Any, ...]:
    """(image path, face box, label_raw, valence, arousal, landmark text) of a CSV row; RowFault says why not."""
    if len(fields) != len(CSV_COLUMNS):
        raise RowFault(f"{len(fields)} comma-separated fields, expected {len(CSV_COLUMNS)}")
    path = fields[col["subDirectory_filePath"]].strip()
    folder, _, file_name = path.partition("/")
    if not (folder.isdigit() and file_name and "/" not in file_name and ".." not in file_name):
        raise RowFault(f"subDirectory_filePath {path!r} is not <folder>/<file>")
    try:
        box = [int(fields[col[c]]) for c in ("face_x", "face_y", "face_width", "face_height")]
    except ValueError:
        raise RowFault("face box is not 4 integers") from None
    label_raw = fields[col["expression"]].strip()
    if label_raw not in LABEL_MAP:
        raise RowFault(f"expression id {label_raw!r} not in 0..10", "unknown-label")
    affect = []
    for c in ("valence", "arousal"):
        try:
            value = float(fields[col[c]])
        except ValueError:
            raise RowFault(f"{c} {fields[col[c]]!r} is not a number") from None
        affect.append(None if value == NO_VALUE else value)
    landmarks = fields[col["facial_landmarks"]]
    if landmarks.count(";") != N_LANDMARK_VALUES - 1:
        raise RowFault(f"{landmarks.count(';') + 1} landmark values, expected {N_LANDMARK_VALUES}")
    return path, box, label_raw, affect[0], affect[1], landmarks


def _csv_landmarks(text: str, file: str, row: int) -> np.ndarray:
    try:
        values = np.array([float(v) for v in text.split(";")], dtype=np.float32)
    except ValueError:
        raise SampleError("malformed-row", "facial_landmarks holds a non-number", file=file, row=row) from None
    return values.reshape(68, 2)

"""Bosphorus file readers: ``.bnt`` binary grids (hand-built bytes) and ``.lm3`` / ``.lm2`` landmarks."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from ferbench.errors import SampleError
from ferbench.geometry.bnt import DEFAULT_ZMIN, encode_bnt, parse_bnt, read_bnt, write_bnt
from ferbench.geometry.bosphorus_landmarks import (
    LABELS,
    format_lm2,
    format_lm3,
    parse_lm2,
    parse_lm3,
    read_lm3,
    to_slots,
    write_lm3,
)

NAME = b"bs000_N_N_0.png"


def hand_built(rows: int = 2, cols: int = 3, count: int | None = None, zmin: float = -1e9) -> tuple[bytes, np.ndarray]:
    """A .bnt assembled field by field; plane k, stored cell i holds 100*k + i."""
    n = rows * cols
    stored = np.array([[100.0 * k + i for i in range(n)] for k in range(5)])
    stored[0, 4] = zmin  # background flagged in X only
    stored[2, 1] = zmin  # ... and in Z only
    head = struct.pack("<HHdH", rows, cols, zmin, len(NAME)) + NAME + struct.pack("<I", 5 * n if count is None else count)
    return head + stored.astype("<f8").tobytes(), stored


def test_header_fields_plane_order_and_bottom_to_top_rows():
    data, stored = hand_built()
    assert len(data) == 18 + len(NAME) + 40 * 2 * 3
    grid = parse_bnt(data)
    assert grid.shape == (2, 3) and grid.zmin == -1e9 and grid.image_name == NAME.decode()
    for k, plane in enumerate((grid.x, grid.y, grid.z, grid.u, grid.v)):  # X, Y, Z, u, v — not reversed
        # the file's first row is the bottom one: it becomes the last row
        np.testing.assert_array_equal(plane, stored[k].reshape(2, 3)[::-1])
    assert grid.y[1, 0] == 100.0 and grid.v[0, 0] == 403.0
    # stored cell 4 (X = zmin) -> file row 1, col 1 -> top row; stored cell 1 (Z = zmin) -> bottom row
    expected = np.ones((2, 3), bool)
    expected[0, 1] = expected[1, 1] = False
    np.testing.assert_array_equal(grid.valid, expected)


def test_write_read_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    planes = rng.normal(size=(5, 7, 4)) * 50
    valid = rng.random((7, 4)) > 0.3
    path = tmp_path / "bs001_E_FEAR_0.bnt"
    write_bnt(path, *planes, valid=valid, image_name="bs001_E_FEAR_0.png")
    grid = read_bnt(path)
    assert (grid.zmin, grid.image_name, grid.shape) == (DEFAULT_ZMIN, "bs001_E_FEAR_0.png", (7, 4))
    np.testing.assert_array_equal(grid.valid, valid)
    for got, want in zip((grid.x, grid.y, grid.z, grid.u, grid.v), planes):
        np.testing.assert_array_equal(got[valid], want[valid])
        assert (got[~valid] == DEFAULT_ZMIN).all()  # the sentinel sits in all five planes
    assert read_bnt(path.read_bytes()).image_name == grid.image_name
    assert path.stat().st_size == 18 + len("bs001_E_FEAR_0.png") + 40 * 7 * 4


def test_encode_matches_hand_built_layout():
    data, stored = hand_built()
    grid = parse_bnt(data)
    again = encode_bnt(grid.x, grid.y, grid.z, grid.u, grid.v, valid=grid.valid, zmin=grid.zmin, image_name=grid.image_name)
    back = parse_bnt(again)
    np.testing.assert_array_equal(back.valid, grid.valid)
    np.testing.assert_array_equal(back.z[grid.valid], grid.z[grid.valid])
    assert again[: 18 + len(NAME)] == data[: 18 + len(NAME)]


@pytest.mark.parametrize(
    "mutate, reason",
    [
        (lambda d: d[:10], "truncated header: 10 bytes"),
        (lambda d: d[:20], "name length 15 runs past the end"),
        (lambda d: d[:-8], "truncated data"),
        (lambda d: hand_built(count=6 * 8)[0], "value count 48 != 5 x 2 x 3 = 30"),
        (lambda d: struct.pack("<HHdH", 0, 3, -1e9, 0) + d[14:], "empty grid 0x3"),
    ],
)
def test_bad_files_raise_bad_header(mutate, reason):
    data, _ = hand_built()
    with pytest.raises(SampleError) as err:
        parse_bnt(mutate(data), file="bs000/x.bnt")
    assert err.value.kind == "bad-header" and reason in err.value.reason and err.value.file == "bs000/x.bnt"


LM3_TEXT = """# 3D Landmark File
*
scanned 2008, landmarked by hand
second info line

3 landmarks:
Outer left eyebrow
-55.7314 32.1125 -31.0977
Nose tip
0.5 -2.25 60.0
Chin middle
0.8842 -78.2270 -22.9135
"""

LM2_TEXT = """# 2D Landmark File

2 landmarks:

Labels:
Nose tip
Left mouth corner

2D Image coordinates:
240.5 300.25
200 380
"""


def test_lm3_header_info_block_and_slots():
    points = parse_lm3(LM3_TEXT)
    assert list(points) == ["Outer left eyebrow", "Nose tip", "Chin middle"]
    np.testing.assert_array_equal(points["Nose tip"], [0.5, -2.25, 60.0])
    slots = to_slots(points, 3)
    assert slots.shape == (24, 3)
    assert np.isfinite(slots).all(axis=1).sum() == 3
    np.testing.assert_array_equal(slots[LABELS.index("Nose tip")], [0.5, -2.25, 60.0])
    assert np.isnan(slots[LABELS.index("Ear lobe left")]).all()


def test_lm3_without_info_block_and_round_trip(tmp_path):
    points = {name: np.array([i, -i, 2.5 * i]) for i, name in enumerate(LABELS[:22])}
    text = format_lm3(points)
    assert text.splitlines()[:3] == ["# 3D Landmark File", "", "22 landmarks:"]
    write_lm3(tmp_path / "a.lm3", points, info=["free text"])
    for parsed in (parse_lm3(text), read_lm3(tmp_path / "a.lm3")):
        assert list(parsed) == list(points)
        np.testing.assert_allclose(np.array(list(parsed.values())), np.array(list(points.values())))


def test_lm2_markers_and_round_trip():
    points = parse_lm2(LM2_TEXT)
    np.testing.assert_array_equal(points["Nose tip"], [240.5, 300.25])
    text = format_lm2(points)
    assert "Labels:" in text.splitlines() and "2D Image coordinates:" in text.splitlines()
    again = parse_lm2(text)
    assert list(again) == ["Nose tip", "Left mouth corner"]
    np.testing.assert_allclose(again["Left mouth corner"], [200, 380])


@pytest.mark.parametrize(
    "text, reason",
    [
        (LM3_TEXT.replace("3 landmarks:", "4 landmarks:"), "4 landmarks announced, 3 present"),
        (LM3_TEXT.replace("0.5 -2.25 60.0", "0.5 -2.25"), "expected 3 numbers"),
        (LM3_TEXT.replace("3 landmarks:", "three landmarks"), "no '<N> landmarks:' line"),
    ],
)
def test_bad_lm3(text, reason):
    with pytest.raises(SampleError) as err:
        parse_lm3(text, file="x.lm3")
    assert err.value.kind == "bad-landmarks" and reason in err.value.reason


def test_bad_lm2_and_unknown_label():
    with pytest.raises(SampleError, match="no '2D Image coordinates:' line"):
        parse_lm2(LM2_TEXT.replace("2D Image coordinates:", "Coordinates:"))
    with pytest.raises(SampleError, match="unknown landmark label 'Nose bridge'"):
        to_slots({"Nose bridge": np.zeros(3)}, 3)
    # labels match regardless of case and spacing
    assert np.isfinite(to_slots({"nose  TIP": np.zeros(3)}, 3)[LABELS.index("Nose tip")]).all()

"""BU-3DFE geometry files: VRML meshes (n-gons, comma styles, texture) and .bnd landmarks."""

from __future__ import annotations

import numpy as np
import pytest

from ferbench.errors import SampleError
from ferbench.geometry import Mesh, read_bnd, read_vrml, write_bnd, write_vrml
from ferbench.geometry.mesh import GeometryError

POLYGONS = [[0, 1, 2], [2, 3, 4, 5], [5, 6, 7, 8, 9], [9, 10, 11, 0, 1, 2], [3, 4, 6]]
# fan triangulation around each polygon's first corner
TRIANGLES = [
    [0, 1, 2],
    [2, 3, 4], [2, 4, 5],
    [5, 6, 7], [5, 7, 8], [5, 8, 9],
    [9, 10, 11], [9, 11, 0], [9, 0, 1], [9, 1, 2],
    [3, 4, 6],
]  # fmt: skip


def _ngon_mesh() -> tuple[Mesh, list[list[int]]]:
    rng = np.random.default_rng(3)
    vertices = np.round(rng.uniform(-80, 80, (12, 3)), 4)
    uv = np.round(rng.uniform(0, 1, (15, 2)), 4).astype(np.float32)
    uv_polygons = [[p + 3 for p in poly] for poly in POLYGONS]  # texture indices differ from vertex indices
    return Mesh(vertices, np.zeros((0, 3)), uv, np.zeros((0, 3))), uv_polygons


@pytest.mark.parametrize("comma_style", ["bu3dfe", "commas"])
@pytest.mark.parametrize("first_on_open_line", [False, True])
def test_ngons_comma_styles_and_texture(tmp_path, comma_style, first_on_open_line):
    mesh, uv_polygons = _ngon_mesh()
    path = tmp_path / "F0001_AN01WH_F3D.wrl"
    write_vrml(
        path, mesh, "F0001_AN01WH_F3D.bmp", POLYGONS, comma_style,
        uv_polygons=uv_polygons, first_point_on_open_line=first_on_open_line,
    )  # fmt: skip
    text = path.read_text()
    assert ("point [ " in text) == first_on_open_line
    assert ("0, 1, 2, -1," in text) == (comma_style == "commas")
    got = read_vrml(path)
    assert got.vertices.shape == (12, 3) and got.faces.shape == (11, 3)
    np.testing.assert_array_equal(got.vertices, mesh.vertices)
    np.testing.assert_array_equal(got.faces, TRIANGLES)
    np.testing.assert_array_equal(got.uv, mesh.uv)
    np.testing.assert_array_equal(got.face_uv, np.array(TRIANGLES) + 3)
    assert got.faces.dtype == np.int32 and got.vertices.dtype == np.float64


def test_hand_written_file_with_mixed_separators():
    text = b"""#VRML V2.0 utf8
# exported by hand
Transform { children [ Shape { appearance Appearance {
  texture ImageTexture { url "x.bmp" } }
  geometry IndexedFaceSet {
    coord DEF co Coordinate { point [ -41.2134 23.5521 61.0098,
        -40.8871,23.9902,61.3344
\t-40.1107 24.4128 61.7012 ,
        1e1 -2.5E-1 0   # a comment
      ] }
    coordIndex [ 0,1,2,-1, 1 3 2 -1,0 1 3 2 -1 ]
    texCoord TextureCoordinate { point [ 0.5 0.5, 0.25 0.75, 1 0, 0 1, ] }
  }
} ] }
"""
    mesh = read_vrml(text)
    np.testing.assert_array_equal(mesh.vertices[3], [10.0, -0.25, 0.0])
    np.testing.assert_array_equal(mesh.faces, [[0, 1, 2], [1, 3, 2], [0, 1, 3], [0, 3, 2]])
    # no texCoordIndex: coordIndex indexes the texture coordinates too (VRML 97)
    np.testing.assert_array_equal(mesh.face_uv, mesh.faces)
    np.testing.assert_array_equal(mesh.uv[1], [0.25, 0.75])


def test_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    vertices = np.round(rng.normal(0, 40, (500, 3)), 6)
    faces = rng.integers(0, 500, (900, 3))
    uv = np.round(rng.uniform(0, 1, (500, 2)), 6).astype(np.float32)
    mesh = Mesh(vertices, faces, uv, faces)
    write_vrml(tmp_path / "m.wrl", mesh)
    got = read_vrml(tmp_path / "m.wrl")
    np.testing.assert_array_equal(got.vertices, vertices)
    np.testing.assert_array_equal(got.faces, faces)
    np.testing.assert_allclose(got.uv, uv, atol=1e-6)
    np.testing.assert_array_equal(got.face_uv, faces)


GOOD = b"Coordinate { point [ 0 0 0, 1 0 0, 0 1 0, 1 1 0 ] }\ncoordIndex [ 0 1 2 -1, 1 3 2 -1 ]\n"


@pytest.mark.parametrize(
    ("broken", "reason"),
    [
        (GOOD.replace(b"1 3 2 -1", b"1 4 2 -1"), "index 4 out of range"),
        (GOOD.replace(b"1 1 0 ]", b"1 1 0"), "Coordinate point block has no closing ']' before the next node"),
        (GOOD.replace(b"-1 ]", b"-1"), "coordIndex block has no closing ']'"),
        (GOOD.replace(b"1 0 0,", b"1 zero 0,"), "non-numeric token in Coordinate point: 'zero'"),
        (GOOD.replace(b"0 1 2 -1", b"0 1.5 2 -1"), "non-numeric token in coordIndex: '1.5'"),
        (GOOD.replace(b"0 1 2 -1, 1 3", b"0 1 -1, 1 3"), "polygon 0 has 2 corners"),
        (GOOD.replace(b"0 1 2 -1", b"0 1 2 -2"), "negative index -2"),
        (GOOD.replace(b"1 1 0 ]", b"1 1 ]"), "not a positive multiple of 3"),
        (GOOD.replace(b"0 1 2 -1, 1 3 2 -1", b""), "coordIndex is empty"),
        (GOOD.replace(b"Coordinate {", b"Coords {"), "no 'Coordinate { point [' block"),
        (GOOD + b"texCoordIndex [ 0 1 2 -1 ]", "texCoordIndex without a TextureCoordinate"),
        (GOOD + b"TextureCoordinate { point [ 0 0, 1 0, 0 1 ] } texCoordIndex [ 0 1 2 0 -1 ]", "do not match"),
    ],
)
def test_malformed_files_are_bad_mesh(broken, reason):
    with pytest.raises(SampleError) as info:
        read_vrml(broken)
    assert info.value.kind == "bad-mesh"
    assert reason in info.value.reason
    assert isinstance(info.value, GeometryError)


def test_unterminated_last_polygon_is_accepted():
    mesh = read_vrml(GOOD.replace(b"1 3 2 -1 ]", b"1 3 2 ]"))
    np.testing.assert_array_equal(mesh.faces, [[0, 1, 2], [1, 3, 2]])


# -- .bnd -----------------------------------------------------------------------------------


def test_bnd_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    idx = rng.integers(0, 20000, 83)
    xyz = np.round(rng.normal(0, 40, (83, 3)), 6)
    write_bnd(tmp_path / "F0001_AN01WH_F3D.bnd", idx, xyz)
    first = (tmp_path / "F0001_AN01WH_F3D.bnd").read_text().splitlines()[0]
    assert first == f"{idx[0]}\t\t{xyz[0, 0]:.6f}\t\t{xyz[0, 1]:.6f}\t\t{xyz[0, 2]:.6f}"
    got_idx, got_xyz = read_bnd(tmp_path / "F0001_AN01WH_F3D.bnd")
    np.testing.assert_array_equal(got_idx, idx)
    np.testing.assert_array_equal(got_xyz, xyz)


def test_bnd_separators_and_faults():
    lines = [f"{i} \t{i * 0.5:.3f}  {-i:.1f}\t\t{i}" for i in range(83)]
    lines[5] = "5.000000\t\t2.5\t\t-5.0\t\t5"  # integral float index
    idx, xyz = read_bnd(("\n".join(lines) + "\n\n").encode())
    assert idx.tolist() == list(range(83))
    np.testing.assert_array_equal(xyz[10], [5.0, -10.0, 10.0])

    with pytest.raises(SampleError) as info:
        read_bnd("\n".join(lines[:80]).encode())
    assert (info.value.kind, info.value.reason) == ("bad-landmarks", "80 landmark lines, expected 83")
    bad = lines.copy()
    bad[7] = "7\t\tx\t\t1\t\t2"
    with pytest.raises(SampleError) as info:
        read_bnd("\n".join(bad).encode())
    assert info.value.kind == "bad-landmarks" and info.value.row == 8
    bad[7] = "7.5\t\t0\t\t1\t\t2"
    with pytest.raises(SampleError, match="not a non-negative integer"):
        read_bnd("\n".join(bad).encode())

"""Read and write the VRML 2.0 ``IndexedFaceSet`` meshes of BU-3DFE (``*_F3D.wrl``, ``*_RAW.wrl``).

Only the parts BU-3DFE uses are read: the first ``Coordinate { point [ ... ] }`` block (x y z in
mm), ``coordIndex [ ... ]`` (0-based polygons, each ended by ``-1``), and optionally
``TextureCoordinate { point [ ... ] }`` (u v, v pointing up) with ``texCoordIndex [ ... ]``.
Everything else (Transform, Material, ImageTexture url) is skipped. Tokens may be separated by
commas and/or any whitespace, a trailing comma is optional and the first number may sit on the
``point [`` line. Polygons with 4 or more corners are fan-triangulated around their first corner.
Accepted although not seen in BU-3DFE (VRML 97 allows them; UNVERIFIED for this dataset): a last
polygon without its ``-1``, ``#`` comments inside the blocks, and a texture coordinate block
without ``texCoordIndex`` (then ``coordIndex`` indexes the texture coordinates too).

Parsing slices the blocks out of the file bytes and hands each to numpy's C text parser
(``np.fromstring``), which measured fastest (see ``ferbench.geometry.bench.bench_vrml``).
Malformed input raises ``GeometryError`` (a ``SampleError`` of kind ``bad-mesh``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import numpy as np

from .mesh import GeometryError, Mesh

# (keyword, pattern matched where the keyword starts); a regex search over megabytes is slow,
# bytes.find is not
_COORD = (b"Coordinate", re.compile(rb"Coordinate\s*\{\s*point\s*\["))
_COORD_INDEX = (b"coordIndex", re.compile(rb"coordIndex\s*\["))
_TEX = (b"TextureCoordinate", re.compile(rb"TextureCoordinate\s*\{\s*point\s*\["))
_TEX_INDEX = (b"texCoordIndex", re.compile(rb"texCoordIndex\s*\["))
_COMMENT = re.compile(rb"#[^\n\r]*")


def read_vrml(src: str | Path | bytes) -> Mesh:
    """The triangle mesh of a BU-3DFE VRML file (a path, or the file's bytes)."""
    data = src if isinstance(src, bytes) else Path(src).read_bytes()
    coord = _block(data, _COORD, "Coordinate point")
    if coord is None:
        raise GeometryError("no 'Coordinate { point [' block")
    vertices = _numbers(coord, np.float64, "Coordinate point")
    if vertices.size == 0 or vertices.size % 3:
        raise GeometryError(f"Coordinate point holds {vertices.size} numbers, not a positive multiple of 3")
    vertices = vertices.reshape(-1, 3)
    index = _block(data, _COORD_INDEX, "coordIndex")
    if index is None:
        raise GeometryError("no 'coordIndex [' block")
    faces, counts = _triangulate(_numbers(index, np.int64, "coordIndex"), len(vertices), "coordIndex")
    uv, face_uv = _texture(data, faces, counts)
    return Mesh(vertices, faces, uv, face_uv)


def _texture(data: bytes, faces: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    coord = _block(data, _TEX, "TextureCoordinate point")
    index = _block(data, _TEX_INDEX, "texCoordIndex")
    if coord is None:
        if index is not None:
            raise GeometryError("texCoordIndex without a TextureCoordinate block")
        return None, None
    uv = _numbers(coord, np.float64, "TextureCoordinate point")
    if uv.size % 2:
        raise GeometryError(f"TextureCoordinate point holds {uv.size} numbers, an odd count")
    uv = uv.reshape(-1, 2)
    if index is None:
        face_uv = faces
        if len(uv) == 0 or faces.max() >= len(uv):
            raise GeometryError("TextureCoordinate without texCoordIndex has fewer points than coordIndex uses")
    else:
        face_uv, uv_counts = _triangulate(_numbers(index, np.int64, "texCoordIndex"), len(uv), "texCoordIndex")
        if not np.array_equal(uv_counts, counts):
            raise GeometryError("texCoordIndex polygons do not match coordIndex polygons")
    return uv, face_uv


def _block(data: bytes, node: tuple[bytes, re.Pattern], name: str) -> bytes | None:
    """The bytes between ``[`` and its ``]`` of the first block of ``node``, or None."""
    match = _find(data, *node)
    if match is None:
        return None
    end = data.find(b"]", match.end())
    if end < 0:
        raise GeometryError(f"{name} block has no closing ']'")
    block = data[match.end() : end]
    if b"#" in block:
        block = _COMMENT.sub(b" ", block)
    if b"[" in block or b"{" in block or b"}" in block:
        raise GeometryError(f"{name} block has no closing ']' before the next node")
    return block


def _find(data: bytes, keyword: bytes, pattern: re.Pattern) -> re.Match | None:
    """First match of ``pattern`` at a whole-word occurrence of ``keyword``."""
    pos = data.find(keyword)
    while pos >= 0:
        whole_word = pos == 0 or not (data[pos - 1 : pos].isalnum() or data[pos - 1] == ord("_"))
        match = pattern.match(data, pos) if whole_word else None
        if match is not None:
            return match
        pos = data.find(keyword, pos + 1)
    return None


def _numbers(block: bytes, dtype: type, name: str) -> np.ndarray:
    """Numbers of a block separated by commas and/or whitespace."""
    text = block.replace(b",", b" ")
    if not text or text.isspace():
        return np.empty(0, dtype)
    try:
        values = np.fromstring(text, dtype=dtype, sep=" ")
    except ValueError:
        raise GeometryError(f"non-numeric token in {name}: {_first_bad(text, dtype)!r}") from None
    if dtype is np.float64 and not np.isfinite(values).all():
        raise GeometryError(f"non-finite number in {name}")
    return values


def _first_bad(text: bytes, dtype: type) -> str:
    convert = int if dtype is np.int64 else float
    for token in text.split():
        try:
            convert(token)
        except ValueError:
            return token.decode("latin-1")[:40]
    return "?"


def _triangulate(index: np.ndarray, n_points: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(M, 3) fan triangles and the corner count of each polygon of a ``-1``-separated index list."""
    if index.size == 0:
        raise GeometryError(f"{name} is empty")
    if index[-1] != -1:
        index = np.append(index, -1)
    if index.min() < -1:
        raise GeometryError(f"{name} has negative index {int(index.min())}")
    if index.max() >= n_points:
        raise GeometryError(f"{name} index {int(index.max())} out of range (only {n_points} points)")
    ends = np.flatnonzero(index == -1)
    starts = np.concatenate(([0], ends[:-1] + 1))
    counts = ends - starts
    if (counts < 3).any():
        k = int(np.argmax(counts < 3))
        raise GeometryError(f"{name} polygon {k} has {counts[k]} corners (a stray or missing -1)")
    if counts.size * 4 == index.size:  # triangles only
        return index.reshape(-1, 4)[:, :3].astype(np.int32), counts
    n_tri = counts - 2
    poly = np.repeat(np.arange(counts.size), n_tri)
    step = np.arange(n_tri.sum()) - np.repeat(np.cumsum(n_tri) - n_tri, n_tri) + 1
    first = starts[poly]
    tris = np.stack([index[first], index[first + step], index[first + step + 1]], axis=1)
    return tris.astype(np.int32), counts


def write_vrml(
    path: str | Path,
    mesh: Mesh,
    texture_url: str | None = None,
    polygons: Sequence[Sequence[int]] | None = None,
    comma_style: str = "bu3dfe",
    *,
    uv_polygons: Sequence[Sequence[int]] | None = None,
    first_point_on_open_line: bool = False,
    decimals: int = 6,
) -> None:
    """Write ``mesh`` the way BU-3DFE files look (see the skeleton in shared/formats/datasets-3d.md).

    ``polygons`` replaces ``mesh.faces`` with n-gons of mixed sizes; ``uv_polygons`` likewise
    replaces ``mesh.face_uv`` (default: ``polygons`` when the mesh has one uv per vertex).
    ``comma_style="bu3dfe"`` writes ``x y z,`` and ``i j k -1,`` with no comma after the last
    entry of a block; ``"commas"`` writes ``x, y, z,`` and ``i, j, k, -1,`` with a trailing comma
    everywhere. ``first_point_on_open_line`` puts the first point on the ``point [`` line.
    """
    if comma_style not in ("bu3dfe", "commas"):
        raise ValueError(f"comma_style must be 'bu3dfe' or 'commas', not {comma_style!r}")
    polys = mesh.faces if polygons is None else polygons
    body = [
        "#VRML V2.0 utf8\n",
        "Transform { children [ Shape {\n  appearance Appearance {\n",
        "    material Material { diffuseColor 0.7 0.7 0.7 }\n",
    ]
    if texture_url is not None:
        body.append(f'    texture ImageTexture {{ url "{texture_url}" }}\n')
    body.append("  }\n  geometry IndexedFaceSet {\n    coord Coordinate {\n")
    body.append(_points_block(mesh.vertices, comma_style, first_point_on_open_line, decimals))
    body.append("    }\n")
    body.append(_index_block("coordIndex", polys, comma_style))
    if mesh.uv is not None:
        body.append("    texCoord TextureCoordinate {\n")
        body.append(_points_block(mesh.uv, comma_style, first_point_on_open_line, decimals))
        body.append("    }\n")
        body.append(_index_block("texCoordIndex", _uv_polygons(mesh, polygons, uv_polygons), comma_style))
    body.append("  }\n} ] }\n")
    Path(path).write_text("".join(body), encoding="ascii", newline="\n")


def _uv_polygons(mesh: Mesh, polygons, uv_polygons):
    if uv_polygons is not None:
        return uv_polygons
    if polygons is None:
        return mesh.face_uv
    if len(mesh.uv) != len(mesh.vertices):
        raise ValueError("give uv_polygons with polygons unless the mesh has one uv per vertex")
    return polygons


def _points_block(points: np.ndarray, style: str, first_on_open_line: bool, decimals: int) -> str:
    width = points.shape[1]
    sep = ", " if style == "commas" else " "
    line = sep.join([f"%.{decimals}f"] * width) + ",\n        "
    text = (line * len(points)) % tuple(np.asarray(points, dtype=np.float64).ravel())
    text = text.rstrip()
    if style == "bu3dfe":
        text = text[:-1]  # BU-3DFE: no comma after the last point
    opener = "      point [ " if first_on_open_line else "      point [\n        "
    return f"{opener}{text}\n      ]\n"


def _index_block(name: str, polygons, style: str) -> str:
    sep = ", " if style == "commas" else " "
    end = f"{sep}-1,"
    rows = polygons.tolist() if isinstance(polygons, np.ndarray) else polygons
    lines = [sep.join(map(str, map(int, poly))) + end for poly in rows]
    if style == "bu3dfe" and lines:
        lines[-1] = lines[-1][:-1]
    return f"    {name} [\n      " + "\n      ".join(lines) + "\n    ]\n"

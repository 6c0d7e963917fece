"""The triangle mesh every geometry reader returns and every renderer takes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SampleError


class GeometryError(SampleError):
    """Malformed geometry input; a ``SampleError`` (kind ``bad-mesh`` unless told) the builder reports."""

    def __init__(self, reason: str, kind: str = "bad-mesh", file: str | None = None, row: int | None = None):
        super().__init__(kind, reason, file=file, row=row)


@dataclass
class Mesh:
    """Triangles in millimetres.

    ``vertices`` (N, 3) float64; ``faces`` (M, 3) int32 indices into ``vertices``;
    ``uv`` (K, 2) float32 texture coordinates in [0, 1] with v pointing up (v = 1 is the top
    row of the texture image); ``face_uv`` (M, 3) int32 indices into ``uv``, one per corner.
    """

    vertices: np.ndarray
    faces: np.ndarray
    uv: np.ndarray | None = None
    face_uv: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.vertices = np.asarray(self.vertices, dtype=np.float64).reshape(-1, 3)
        self.faces = np.asarray(self.faces, dtype=np.int32).reshape(-1, 3)
        if (self.uv is None) != (self.face_uv is None):
            raise ValueError("uv and face_uv go together")
        if self.uv is not None:
            self.uv = np.asarray(self.uv, dtype=np.float32).reshape(-1, 2)
            self.face_uv = np.asarray(self.face_uv, dtype=np.int32).reshape(-1, 3)
            if len(self.face_uv) != len(self.faces):
                raise ValueError(f"{len(self.face_uv)} face_uv rows for {len(self.faces)} faces")

    def used_vertices(self) -> np.ndarray:
        """(k, 3) coordinates of the vertices some face uses, in index order."""
        used = np.zeros(len(self.vertices), bool)
        used[self.faces.reshape(-1)] = True
        return self.vertices[used]

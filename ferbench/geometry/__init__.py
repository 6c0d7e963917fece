"""Geometry for the RGB-D datasets: mesh/landmark readers, depth rendering, face alignment.

Submodules: ``mesh`` (``Mesh``, ``GeometryError``), ``vrml`` (BU-3DFE ``.wrl``), ``bnd``
(BU-3DFE landmarks), ``render`` (a package: depth maps and registered colour), ``align``
(MediaPipe roll alignment, imports mediapipe lazily), ``bench`` (timings).
"""

from .bnd import read_bnd, write_bnd
from .mesh import GeometryError, Mesh
from .render import (
    DEPTH_UNIT_MM,
    Camera,
    View,
    depth_metadata,
    depth_to_png,
    png_to_depth_mm,
    render_grid_depth,
    render_mesh_depth,
    render_textured,
)
from .vrml import read_vrml, write_vrml

__all__ = [
    "DEPTH_UNIT_MM",
    "Camera",
    "GeometryError",
    "Mesh",
    "View",
    "depth_metadata",
    "depth_to_png",
    "png_to_depth_mm",
    "read_bnd",
    "read_vrml",
    "render_grid_depth",
    "render_mesh_depth",
    "render_textured",
    "write_bnd",
    "write_vrml",
]

"""Metric depth maps (and registered colour) rendered from face scans.

Depth convention (converters copy ``depth_metadata(camera)`` into the schema metadata):

* The scan frame is in millimetres with the face looking toward +z. The camera looks along −z.
  Image right = +x and image up = +y: a feature at +y lands in the upper half of the image
  (row 0 is the top row); nothing is ever flipped.
* The *reference plane* is z = ``z_plane`` = (largest z of the surface, i.e. the nearest point)
  + ``margin_mm``. Depth is the distance from that plane along the view axis in mm,
  ``depth = z_plane − z`` of the surface point seen at the pixel centre, so the nearest point
  has depth ``margin_mm`` and depth grows away from the camera. Perspective cameras measure the
  same z-distance (not the ray length).
* Pixel (row r, column c) covers the continuous image square [c, c+1) × [r, r+1); its centre
  (c + 0.5, r + 0.5) is where the surface is sampled. The optical axis passes through the image
  centre (size/2, size/2), at x = ``center_x``, y = ``center_y`` (the centre of the bounding box of
  the surface points, or the origin, see ``Camera.center``).
* Orthographic: a pixel is ``mm_per_px`` wide. Perspective: the eye sits ``distance_mm`` in front
  of the reference plane, at z = z_plane + distance_mm, with focal length ``focal_px``
  (default ``distance_mm / mm_per_px``, so the scale on the reference plane equals ``mm_per_px``).
* Stored as a 16-bit PNG in units of ``DEPTH_UNIT_MM`` = 0.1 mm, rounded to nearest; 0 = no
  surface; depths beyond 6553.5 mm saturate at 65535 and positive depths below 0.05 mm become 1,
  so a surface never reads as 0.

Backends: ``open3d`` casts one ray per pixel centre into ``t.geometry.RaycastingScene`` (exact;
it builds a BVH per mesh, so it pays off for many views of one mesh: ``Raycaster``); ``numpy`` is a
z-buffer evaluating each triangle's barycentric interpolation at the pixel centres it covers (exact
too, and about 3× faster for one view of a new scan). ``render_mesh_depth`` / ``render_grid_depth``
take ``backend="auto"`` (numpy; ``depth.AUTO_BACKEND``) unless asked for one. Colour comes from
pyrender + OSMesa with flat (unlit) texturing, using the same camera, so RGB and depth are
pixel-registered; depth always comes from ferbench's renderers (pyrender's orthographic depth is wrong).

Submodules, each importing only those listed before it: ``camera`` (``Camera``, ``View``,
frames and projection), ``storage`` (``DEPTH_UNIT_MM``, ``depth_metadata``, depth PNGs),
``raycast`` (``Raycaster``, open3d), ``zbuffer`` (numpy rasteriser), ``depth``
(``render_mesh_depth``, ``render_grid_depth``, ``grid_mesh``) and ``textured``
(``render_textured``). This package re-exports their public names.
"""

from ..mesh import GeometryError
from .camera import Camera, View, _frame, _project  # noqa: F401  (_frame, _project: geometry.bench)
from .depth import grid_mesh, render_grid_depth, render_mesh_depth
from .raycast import Raycaster, _open3d  # noqa: F401  (_open3d: its cache is cleared by tests)
from .storage import DEPTH_UNIT_MM, depth_metadata, depth_to_png, png_to_depth_mm
from .textured import render_textured

__all__ = [
    "DEPTH_UNIT_MM",
    "Camera",
    "GeometryError",
    "Raycaster",
    "View",
    "depth_metadata",
    "depth_to_png",
    "grid_mesh",
    "png_to_depth_mm",
    "render_grid_depth",
    "render_mesh_depth",
    "render_textured",
]

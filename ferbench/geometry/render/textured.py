"""Unlit textured colour from pyrender + OSMesa, pixel-registered with the depth of the same camera."""

from __future__ import annotations

import contextlib
import os
from functools import lru_cache

import numpy as np

from ..mesh import GeometryError, Mesh
from .camera import Camera, View
from .depth import render_mesh_depth

def render_textured(mesh: Mesh, texture: np.ndarray, camera: Camera = Camera()) -> tuple[np.ndarray, View]:
    """Unlit textured colour (size, size, 3) uint8, black where there is no surface, and its depth.

    Texture coordinates have v pointing up (v = 1 is the top row of ``texture``, an (H, W, 3)
    or (H, W) uint8 image). Colour is rendered by pyrender + OSMesa (unlit, sampled at pixel
    centres), depth by ``render_mesh_depth`` with the same camera frame.
    """
    if mesh.uv is None:
        raise GeometryError("mesh has no texture coordinates")
    if texture.ndim == 2:
        texture = np.repeat(texture[..., None], 3, axis=2)
    view = render_mesh_depth(mesh, camera)
    pyrender = _pyrender()
    frame, n = view.frame, camera.size
    origin = np.array([frame["center_x"], frame["center_y"], frame["z_plane"]])
    positions = (mesh.vertices[mesh.faces.reshape(-1)] - origin).astype(np.float32)
    material = pyrender.MetallicRoughnessMaterial(
        baseColorTexture=pyrender.Texture(
            source=np.ascontiguousarray(texture[..., :3], dtype=np.uint8), source_channels="RGB"
        ),
        doubleSided=True,
    )
    primitive = pyrender.Primitive(
        positions=positions, texcoord_0=mesh.uv[mesh.face_uv.reshape(-1)], material=material
    )
    far = float(-positions[:, 2].min()) + camera.margin_mm
    scene = pyrender.Scene(bg_color=(0, 0, 0, 0), ambient_light=(1, 1, 1))
    scene.add(pyrender.Mesh([primitive]))
    gl_camera, pose = _gl_camera(pyrender, camera, far)
    scene.add(gl_camera, pose=pose)
    color, _ = _offscreen(n).render(scene, flags=pyrender.RenderFlags.FLAT)
    return np.ascontiguousarray(color[..., :3]), view


def _gl_camera(pyrender, camera: Camera, far: float) -> tuple:
    """A pyrender camera at the reference plane (orthographic) or the eye (perspective), and its pose."""
    pose = np.eye(4)
    near = camera.margin_mm / 2
    if camera.projection == "orthographic":
        half = camera.size * camera.mm_per_px / 2
        return pyrender.OrthographicCamera(xmag=half, ymag=half, znear=near, zfar=far), pose
    pose[2, 3] = camera.distance_mm
    half = camera.size / 2
    gl = pyrender.IntrinsicsCamera(
        fx=camera.focal, fy=camera.focal, cx=half, cy=half, znear=near, zfar=far + camera.distance_mm
    )
    return gl, pose


@lru_cache(maxsize=1)
def _pyrender():
    os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")
    # Once OSMesa is loaded, a later `import triton` (torch imports it when it builds fused
    # optimisers) segfaults; the other order is safe, so a process that renders and then trains
    # (the demo, the test suite) imports triton first when it is installed.
    with contextlib.suppress(ImportError):
        import triton  # noqa: F401
    from ...extras import require
    pyrender = require("pyrender")

    return pyrender


@lru_cache(maxsize=4)
def _offscreen(size: int):
    try:
        return _pyrender().OffscreenRenderer(size, size)
    except ImportError as exc:  # an old PyOpenGL (< 3.1.10) lacks the OSMesa binding pyrender needs
        raise RuntimeError(
            f"pyrender cannot open an OSMesa context ({exc}); pip install 'ferbench[3d]' (PyOpenGL >= 3.1.10) "
            "and the system package libosmesa6 (see README)"
        ) from exc

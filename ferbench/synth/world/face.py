"""Rendering one face: pose the AU-driven mesh, frame it, render depth and shade registered RGB.

Depth goes through ``ferbench.geometry.render`` (orthographic, ``FOV_MM`` wide at scale 1) and
colour through ``ferbench.synth.shading`` (Lambertian RGB from the same pixel-centre rays).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from ...geometry.mesh import Mesh
from ...geometry.render import Camera, render_mesh_depth
from .. import shading
from ..shading import Light
from .aus import _activations, label_from_aus, level_of
from .geometry import _geometry
from .occluders import _occluder
from .subjects import Subject
from .texture import _albedo
from .topology import EYE, MOUTH, OCCLUDER, SKIN, _Topology, _topology

FOV_MM = 150.0  # image width at scale 1


@dataclass
class FaceSample:
    """One rendered synthetic face: labels, AUs, registered RGB + depth, mesh and landmarks.

    ``mesh`` is in the posed scan frame (mm; the image centre on the optical axis at x = y = 0) and
    holds skin, eyeball caps, mouth cavity and any occluder (``face_material`` per face: ``SKIN``,
    ``EYE``, ``MOUTH``, ``OCCLUDER``); its ``uv`` maps vertices into ``rgb`` (v up). Landmarks are
    mesh vertices named by ``LANDMARKS``; ``landmarks_2d`` are (x = column, y = row) pixels.
    ``depth_mm`` follows ``ferbench.geometry.render`` (``frame`` is the view frame).
    """

    subject: Subject
    label: int | None
    intensity: int
    aus: dict[int, float]
    rgb: np.ndarray
    depth_mm: np.ndarray
    mesh: Mesh
    landmarks_2d: np.ndarray
    landmarks_3d: np.ndarray
    pose: tuple[float, float, float]
    occluded: bool
    sides: dict[int, str] = field(default_factory=dict)
    occlusion: str | None = None
    face_material: np.ndarray | None = None
    frame: dict = field(default_factory=dict)

    @property
    def landmark_ids(self) -> np.ndarray:
        return _topology().landmarks


def _rotation(pose: tuple[float, float, float]) -> np.ndarray:
    """Rotation of (yaw about +y, pitch about +x, roll about +z) degrees, applied roll·pitch·yaw."""
    (cy, sy), (cp, sp), (cr, sr) = ((math.cos(a), math.sin(a)) for a in np.radians(pose))
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return rz @ rx @ ry


def _close_slits(v: np.ndarray, t: _Topology) -> None:
    """Lid/lip edges may meet but never cross: crossed pairs meet halfway."""
    up, lo = v[t.slit_upper, 1], v[t.slit_lower, 1]
    crossed = lo > up
    mid = (up + lo) / 2
    v[t.slit_upper[crossed], 1] = mid[crossed]
    v[t.slit_lower[crossed], 1] = mid[crossed]


def _background(size: int, rng: np.random.Generator) -> np.ndarray:
    """A random vertical colour gradient with grain, linear RGB."""
    top, bottom = rng.uniform(0.02, 0.7, 3), rng.uniform(0.02, 0.7, 3)
    ramp = np.linspace(0, 1, size)[:, None, None]
    return top + (bottom - top) * ramp + rng.normal(0, 0.02, (size, size, 3))


def render_face(
    subject: Subject,
    aus: Mapping[int, float],
    *,
    sides: Mapping[int, str] | None = None,
    size: int = 64,
    pose: tuple[float, float, float] = (0.0, 0.0, 0.0),
    light: Light | None = None,
    scale: float = 1.0,
    shift: tuple[float, float] = (0.0, 0.0),
    occlusion: str | None = None,
    seed: int = 0,
    label: int | None = None,
    intensity: int | None = None,
) -> FaceSample:
    """Render ``subject`` showing ``aus`` (FACS 0–5 intensities; ``sides`` marks unilateral AUs).

    ``pose`` is (yaw, pitch, roll) in degrees about the head centre; ``scale`` > 1 zooms in; ``shift``
    moves the face by that fraction of the image (x right, y down); ``seed`` drives the background,
    pixel noise and occluder placement. ``label`` defaults to ``label_from_aus``, ``intensity`` to
    ``level_of``.
    """
    sides = dict(sides or {})
    rng = np.random.default_rng(seed)
    t, geo = _topology(), _geometry(subject)
    act = _activations(aus, sides)
    verts = geo.rest + np.einsum("ks,ksnc->nc", act, geo.basis)
    _close_slits(verts, t)
    rot = _rotation(pose)
    centre = rot @ np.array([0.0, (subject.brow_y + subject.chin_y - 12) / 2, subject.head_d])
    fov = FOV_MM / scale
    offset = np.r_[centre[:2] - np.asarray(shift) * fov * np.array([1, -1]), 0.0]
    verts = verts @ rot.T - offset
    faces, material, tex = geo.faces, geo.material, geo.tex
    if occlusion is not None:
        ov, of, oalb = _occluder(occlusion, subject, verts[t.landmarks], rng)
        faces = np.concatenate([faces, of + len(verts)])
        material = np.concatenate([material, np.full(len(of), OCCLUDER, np.int8)])
        verts, tex = np.concatenate([verts, ov]), np.concatenate([tex, oalb])
    mesh = Mesh(verts, faces)
    view = render_mesh_depth(mesh, Camera(size=size, mm_per_px=fov / size, center="origin"))
    rgb = _shade(subject, mesh, material, tex, act, view.frame, light or Light(), rng)
    uv = view.project(verts) / size
    mesh.uv, mesh.face_uv = np.stack([uv[:, 0], 1 - uv[:, 1]], 1).astype(np.float32), mesh.faces.copy()
    lm3 = verts[t.landmarks]
    return FaceSample(
        subject=subject,
        label=label_from_aus(aus) if label is None else label,
        intensity=level_of(aus) if intensity is None else int(intensity),
        aus={int(k): float(v) for k, v in sorted(aus.items()) if v > 0},
        rgb=rgb,
        depth_mm=view.depth_mm,
        mesh=mesh,
        landmarks_2d=view.project(lm3).astype(np.float32),
        landmarks_3d=lm3.astype(np.float32),
        pose=tuple(float(a) for a in pose),
        occluded=occlusion is not None,
        sides={int(k): v for k, v in sides.items() if aus.get(k, 0) > 0},
        occlusion=occlusion,
        face_material=material,
        frame=view.frame,
    )


def _shade(
    s: Subject, mesh: Mesh, material: np.ndarray, tex: np.ndarray, act: np.ndarray, frame: dict, light: Light, rng
) -> np.ndarray:
    """sRGB uint8 image: per-pixel albedo by material, Lambertian light, background and noise."""
    hits = shading.cast(mesh, frame)
    image = _background(frame["camera"]["size"], rng)
    if hits.mask.any():
        q = hits.interpolate(mesh.faces, tex)
        normals = hits.interpolate(mesh.faces, shading.vertex_normals(mesh.vertices, mesh.faces))
        seen = material[hits.face[hits.mask]]
        albedo = np.empty((len(q), 3))
        for m in (SKIN, EYE, MOUTH, OCCLUDER):
            if (sel := seen == m).any():
                albedo[sel] = _albedo(m, s, q[sel], act)
        image[hits.mask] = shading.lambert(albedo, normals, light)
    image += rng.normal(0, 0.008, image.shape)
    return shading.to_srgb8(image)

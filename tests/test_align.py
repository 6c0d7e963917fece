"""MediaPipe eye-corner roll alignment on a real face photo (skimage's astronaut), RGB and depth alike."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data, transform

from ferbench.errors import SampleError
from ferbench.geometry.align import align_pair, estimate_roll, rotation_matrix, warp

EYES = (225.0, 104.0)  # about the eyes' midpoint in the astronaut image (x, y)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return data.astronaut()


def _rotated(image: np.ndarray, angle: float) -> np.ndarray:
    """``image`` turned counter-clockwise by ``angle`` degrees about the eyes (skimage convention)."""
    return np.rint(transform.rotate(image, angle, center=EYES) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def base_roll(astronaut) -> float:
    found = estimate_roll(astronaut)
    assert found is not None
    angle, (cx, cy) = found
    assert abs(angle) < 5 and abs(cx - EYES[0]) < 10 and abs(cy - EYES[1]) < 10
    return angle


@pytest.mark.parametrize("angle", [12.0, -8.0])
def test_roll_is_measured_and_undone(astronaut, base_roll, angle):
    rotated = _rotated(astronaut, angle)
    roll, _ = estimate_roll(rotated)
    assert roll - base_roll == pytest.approx(angle, abs=2.0)  # counter-clockwise on screen is positive
    result = align_pair(rotated)
    assert result.angle_deg == roll and result.depth is None
    assert result.rgb.shape == rotated.shape and result.rgb.dtype == np.uint8
    after, _ = estimate_roll(result.rgb)
    assert abs(after) < 2.0


def test_depth_gets_the_same_transform(astronaut):
    rotated = _rotated(astronaut, 12.0)
    depth = np.full(rotated.shape[:2], 5000, np.uint16)
    depth[:, :40] = 0  # no surface
    marker = (300, 150)  # (x, y), away from the rotation centre
    depth[marker[1] - 3 : marker[1] + 4, marker[0] - 3 : marker[0] + 4] = 1234
    result = align_pair(rotated, depth)
    assert result.depth.dtype == np.uint16 and result.depth.shape == depth.shape
    # nearest neighbour: no value is blended, 0 stays "no surface"
    assert set(np.unique(result.depth)) <= {0, 1234, 5000}
    mx, my = result.matrix @ [marker[0] + 0.5, marker[1] + 0.5, 1.0]
    assert result.depth[int(my), int(mx)] == 1234
    ys, xs = np.nonzero(result.depth == 1234)
    assert abs(xs.mean() + 0.5 - mx) < 0.5 and abs(ys.mean() + 0.5 - my) < 0.5
    # the colour went through the same matrix: the eyes' midpoint lands where the matrix sends it
    _, before = estimate_roll(rotated)
    _, after = estimate_roll(result.rgb)
    np.testing.assert_allclose(after, result.matrix @ [*before, 1.0], atol=2.0)


def test_no_face_is_a_reported_fault():
    grey = np.full((256, 256, 3), 128, np.uint8)
    assert estimate_roll(grey) is None
    with pytest.raises(SampleError) as info:
        align_pair(grey, np.zeros((256, 256), np.uint16))
    assert info.value.kind == "face-not-found"


def test_size_mismatch_is_a_reported_fault(astronaut):
    with pytest.raises(SampleError) as info:
        align_pair(astronaut, np.zeros((10, 10), np.uint16))
    assert info.value.kind == "size-mismatch"


def test_grayscale_and_float_depth(astronaut):
    gray = np.rint(astronaut.mean(axis=2)).astype(np.uint8)
    result = align_pair(gray, np.ones(gray.shape, np.float32))
    assert result.rgb.shape == gray.shape and result.rgb.dtype == np.uint8
    assert result.depth.dtype == np.float32
    assert set(np.unique(result.depth[np.isfinite(result.depth)])) == {1.0}


def test_warp_rotation_convention():
    image = np.zeros((21, 21), np.uint16)
    image[10, 15] = 7  # right of the centre (10.5, 10.5)
    turned = warp(image, rotation_matrix(90.0, (10.5, 10.5)), order=0)
    assert np.argwhere(turned == 7).tolist() == [[5, 10]]  # counter-clockwise: now above the centre
    floating = warp(np.ones((5, 5), np.float32), rotation_matrix(45.0, (2.5, 2.5)), order=0)
    assert np.isnan(floating[0, 0]) and floating[2, 2] == 1.0

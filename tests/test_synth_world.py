"""The synthetic expression world: identity, AU-built expressions, registered RGB + depth."""

from __future__ import annotations

import numpy as np
import pytest

from ferbench.synth import shading
from ferbench.synth import world as w

N_SUBJECTS, TRAIN_SUBJECTS = 12, 8


@pytest.fixture(scope="module")
def subjects() -> list[w.Subject]:
    return w.make_subjects(N_SUBJECTS, seed=0)


@pytest.fixture(scope="module")
def world(subjects) -> list[w.FaceSample]:
    return list(w.sample_world(subjects, size=32, seed=0))


def _split(samples):
    held_out = np.array([s.subject.id >= TRAIN_SUBJECTS for s in samples])
    return ~held_out, held_out


def test_prototypes_are_the_issue_table():
    assert {k: set(v) for k, v in w.EMOTION_AUS.items()} == {
        0: set(),
        1: {6, 12},
        2: {1, 4, 15},
        3: {1, 2, 5, 26},
        4: {1, 2, 4, 5, 20, 26},
        5: {9, 15, 16},
        6: {4, 5, 7, 23},
        7: {12, 14},
    }
    assert w.UNILATERAL == {7: frozenset({12, 14})}
    assert all(au in w.AU_NAMES for proto in w.EMOTION_AUS.values() for au in proto)
    assert w.prototype(3, 4) == {1: 5.0, 2: 5.0, 5: 4.0, 26: 5.0}
    assert w.prototype(1, 1) == {6: 1.6, 12: 2.0}
    assert w.prototype(0, 3) == {} and w.prototype(5, 0) == {}
    with pytest.raises(ValueError):
        w.prototype(1, 5)


def test_subjects_are_deterministic_per_seed_and_varied():
    a = w.make_subjects(20, seed=3)
    assert a == w.make_subjects(20, seed=3)
    assert w.make_subjects(5, seed=3) == a[:5]  # subject i depends on (seed, i) only
    assert w.make_subjects(5, seed=4) != a[:5]
    assert {s.sex for s in a} == {"F", "M"}
    assert len({s.skin for s in a}) == 20
    assert np.ptp([s.eye_x for s in a]) > 2 and np.ptp([s.nose_len for s in a]) > 4


def test_world_is_deterministic_per_seed(subjects):
    def draw(seed, subs=subjects[:2]):
        return list(w.sample_world(subs, labels=(0, 3, 7), intensities=(1, 4), size=24, seed=seed))

    a, b, c = draw(5), draw(5), draw(6)
    assert len(a) == 2 * 3 * 2
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.rgb, y.rgb)
        np.testing.assert_array_equal(x.depth_mm, y.depth_mm)  # NaN == NaN here
        np.testing.assert_array_equal(x.mesh.vertices, y.mesh.vertices)
        assert (x.aus, x.sides, x.pose, x.occlusion) == (y.aus, y.sides, y.pose, y.occlusion)
    assert all(not np.array_equal(x.rgb, z.rgb) for x, z in zip(a, c))
    # a sample does not depend on which other subjects are drawn
    alone = draw(5, subs=subjects[1:2])
    np.testing.assert_array_equal(alone[0].rgb, a[len(alone)].rgb)


def test_labels_agree_with_the_aus_that_made_them(world):
    assert len(world) == N_SUBJECTS * 7 * 4
    assert np.bincount([s.label for s in world]).tolist() == [N_SUBJECTS * 4] * 7
    for s in world:
        assert set(s.aus) == set(w.EMOTION_AUS[s.label])
        assert w.label_from_aus(s.aus) == s.label
        assert (s.intensity == 0) == (s.label == 0)
        expected = w.prototype(s.label, s.intensity, s.subject.gain)
        for au, v in s.aus.items():
            assert abs(v / expected[au] - 1) <= 0.1 + 1e-6 or v == 5.0
    contempt = w.sample_world(w.make_subjects(4, seed=1), labels=(7,), intensities=(2,), size=16)
    sides = [s.sides for s in contempt]
    assert all(set(d) == {12, 14} and len(set(d.values())) == 1 for d in sides)
    assert {d[12] for d in sides} <= {"L", "R"}


def test_linear_probe_on_aus_recovers_the_label(world):
    x = np.stack([np.r_[w.au_vector(s.aus), 1.0] for s in world])
    y = np.array([s.label for s in world])
    train, test = _split(world)
    coef = np.linalg.lstsq(x[train], np.eye(7)[y[train]], rcond=None)[0]
    assert ((x[test] @ coef).argmax(1) == y[test]).mean() >= 0.99


def test_mean_brightness_does_not_predict_the_label(world):
    brightness = np.array([s.rgb.mean() for s in world])
    y = np.array([s.label for s in world])
    train, test = _split(world)
    means = np.array([brightness[train & (y == c)].mean() for c in range(7)])
    pred = np.abs(brightness[test, None] - means).argmin(1)
    # nearest class mean on held-out subjects: chance is 1/7 ≈ 0.14
    balanced = np.mean([(pred[y[test] == c] == c).mean() for c in range(7)])
    assert balanced < 0.30


def test_rgb_and_depth_are_registered(subjects):
    s = w.render_face(subjects[0], w.prototype(3, 4), size=96, seed=1)
    depth = s.depth_mm
    # every pixel that shows a surface in colour has depth, and no other
    hits = shading.cast(s.mesh, s.frame)
    np.testing.assert_array_equal(hits.mask, np.isfinite(depth))
    # the nose tip projects onto the nearest depth pixel of a frontal face
    col, row = np.floor(s.landmarks_2d[w.NOSE_TIP]).astype(int)
    tip_depth = s.frame["z_plane"] - s.landmarks_3d[w.NOSE_TIP, 2]
    assert abs(depth[row, col] - tip_depth) < 1.5  # a pixel is 1.6 mm wide, the tip is a peak
    nearest = np.argwhere(depth == np.nanmin(depth))[:, ::-1] + 0.5  # (x, y) pixel centres
    assert np.abs(nearest - s.landmarks_2d[w.NOSE_TIP]).max() <= 1.0
    assert abs(tip_depth - s.frame["camera"]["margin_mm"]) < 1.0
    # background pixels differ from the face: the face is not the whole image
    assert 0.3 < np.isfinite(depth).mean() < 0.95


def test_mesh_landmarks_and_uv(subjects):
    s = w.render_face(subjects[1], w.prototype(1, 2), size=32, pose=(10.0, -5.0, 3.0), seed=2)
    np.testing.assert_allclose(s.mesh.vertices[s.landmark_ids], s.landmarks_3d, atol=1e-4)
    assert s.landmarks_3d.shape == (len(w.LANDMARKS), 3) and s.landmarks_2d.shape == (len(w.LANDMARKS), 2)
    assert s.mesh.face_uv.shape == s.mesh.faces.shape and s.face_material.shape == (len(s.mesh.faces),)
    # uv maps each landmark to where it appears in the image (v up)
    np.testing.assert_allclose(s.mesh.uv[s.landmark_ids] * [32, -32] + [0, 32], s.landmarks_2d, atol=1e-3)
    assert ((s.landmarks_2d > 0) & (s.landmarks_2d < 32)).all()


def test_identity_varies_and_the_same_subject_repeats(subjects):
    a = w.render_face(subjects[0], {}, size=32, seed=9)
    b = w.render_face(subjects[1], {}, size=32, seed=9)
    again = w.render_face(subjects[0], {}, size=32, seed=9)
    np.testing.assert_array_equal(a.rgb, again.rgb)
    both = np.isfinite(a.depth_mm) & np.isfinite(b.depth_mm)
    assert np.abs(a.rgb.astype(int) - b.rgb.astype(int)).mean() > 5
    assert np.abs(a.depth_mm[both] - b.depth_mm[both]).mean() > 1.0
    assert np.abs(a.landmarks_3d - b.landmarks_3d).max() > 3.0


def _landmark(sample, name):
    return sample.landmarks_3d[w.LANDMARKS.index(name)]


@pytest.mark.parametrize(
    ("aus", "name", "axis", "sign"),
    [
        ({1: 5.0}, "brow_inner_r", 1, +1),
        ({2: 5.0}, "brow_outer_l", 1, +1),
        ({4: 5.0}, "brow_inner_l", 1, -1),
        ({5: 5.0}, "lid_upper_r", 1, +1),
        ({12: 5.0}, "mouth_corner_l", 1, +1),
        ({15: 5.0}, "mouth_corner_r", 1, -1),
        ({20: 5.0}, "mouth_corner_l", 0, +1),
        ({26: 5.0}, "chin", 1, -1),
        ({26: 5.0}, "lip_lower_inner", 1, -1),
    ],
)
def test_action_units_move_the_face(subjects, aus, name, axis, sign):
    rest = w.render_face(subjects[2], {}, size=16)
    moved = w.render_face(subjects[2], aus, size=16)
    assert sign * (_landmark(moved, name)[axis] - _landmark(rest, name)[axis]) > 2.0


def test_eyes_close_and_lips_part(subjects):
    closed = w.render_face(subjects[0], {43: 5.0}, size=16)
    gap = _landmark(closed, "lid_upper_r")[1] - _landmark(closed, "lid_lower_r")[1]
    assert abs(gap) < 1e-6
    rest = w.render_face(subjects[0], {}, size=16)
    assert _landmark(rest, "lid_upper_r")[1] - _landmark(rest, "lid_lower_r")[1] > 5.0
    assert _landmark(rest, "lip_upper_inner")[1] == pytest.approx(_landmark(rest, "lip_lower_inner")[1])
    parted = w.render_face(subjects[0], {25: 5.0}, size=16)
    assert _landmark(parted, "lip_upper_inner")[1] - _landmark(parted, "lip_lower_inner")[1] > 3.0


def test_faces_are_closed_surfaces_behind_closed_lips_and_lids():
    from scipy import ndimage

    people = w.make_subjects(6, seed=7)  # includes narrow, tapering faces
    for s in w.sample_world(people, labels=range(8), intensities=(4,), size=32, pose_jitter=(25, 15, 10)):
        face = np.isfinite(s.depth_mm)
        assert not (ndimage.binary_fill_holes(face) & ~face).any(), "a hole in the face"
        seen = s.face_material[shading.cast(s.mesh, s.frame).face[face]]
        lips_part = {10, 16, 25, 26} & set(s.aus)
        assert ((seen == w.MOUTH).any() == bool(lips_part)) or s.occluded
    for person in people:
        closed = w.render_face(person, {43: 5.0}, size=32, pose=(20.0, 10.0, 0.0))
        seen = closed.face_material[shading.cast(closed.mesh, closed.frame).face[np.isfinite(closed.depth_mm)]]
        assert not (seen == w.EYE).any()


def test_contempt_acts_on_one_side_only(subjects):
    rest = w.render_face(subjects[3], {}, size=16)
    smirk = w.render_face(subjects[3], w.prototype(7, 4), sides={12: "R", 14: "R"}, size=16)
    assert smirk.label == 7 and smirk.sides == {12: "R", 14: "R"}
    lift = {n: _landmark(smirk, n)[1] - _landmark(rest, n)[1] for n in ("mouth_corner_r", "mouth_corner_l")}
    assert lift["mouth_corner_r"] > 2.0 and abs(lift["mouth_corner_l"]) < 0.2


def test_sequence_ramps_from_neutral_to_peak(subjects):
    frames = w.sequence(subjects[4], 3, 5, size=16)
    assert [f.label for f in frames] == [0, 3, 3, 3, 3]
    assert frames[0].aus == {} and frames[-1].aus == w.prototype(3, 4, subjects[4].gain)
    levels = [f.intensity for f in frames]
    assert levels[0] == 0 and levels[-1] == 4 and levels == sorted(levels)
    chin = [_landmark(f, "chin")[1] for f in frames]
    assert all(a > b for a, b in zip(chin, chin[1:]))
    assert all(w.label_from_aus(f.aus) == f.label for f in frames)


@pytest.mark.parametrize("kind", w.OCCLUSIONS)
def test_occluders_cover_the_face_in_rgb_and_depth(subjects, kind):
    clear = w.render_face(subjects[5], {}, size=32, seed=4)
    covered = w.render_face(subjects[5], {}, size=32, seed=4, occlusion=kind)
    assert covered.occluded and covered.occlusion == kind and not clear.occluded
    hits = shading.cast(covered.mesh, covered.frame)
    seen = covered.face_material[hits.face[hits.mask]]
    assert (seen == w.OCCLUDER).sum() > 10
    # depth is measured from a plane in front of the nearest point, so compare surface heights
    z_clear = clear.frame["z_plane"] - clear.depth_mm
    z_covered = covered.frame["z_plane"] - covered.depth_mm
    assert np.nanmax(z_covered - z_clear) > 1.0


def test_unknown_inputs_are_refused(subjects):
    with pytest.raises(ValueError, match="AU 3"):
        w.render_face(subjects[0], {3: 2.0}, size=8)
    with pytest.raises(ValueError, match="occlusion"):
        w.render_face(subjects[0], {}, size=8, occlusion="scarf")
    with pytest.raises(ValueError):
        w.sequence(subjects[0], 1, 1)

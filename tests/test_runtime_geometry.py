"""Retargeting geometry and the One Euro filter on exact, hand-checkable inputs."""

import cv2
import numpy as np
import pytest

from face2face.geometry import RIGID, align, apply_affine, similarity_fit
from face2face.runtime.retarget import RetargetConfig, Retargeter
from face2face.runtime.smooth import OneEuroConfig, OneEuroFilter

from conftest import IMAGES

PHOTOS = ["Tom_Cruise_avp_2014_4.jpg", "lp_d8.jpg", "lp_d19.jpg", "tpsmm_source.png", "2008_001009.jpg"]


@pytest.fixture(scope="module")
def faces(analyzer) -> list[np.ndarray]:
    """Real 68-point faces found on the shared photos."""
    return [analyzer.analyze(cv2.imread(str(IMAGES / p)))[0].landmarks for p in PHOTOS]


def _face(seed=0) -> np.ndarray:
    """Random points: enough for transform algebra that does not need a face."""
    rng = np.random.default_rng(seed)
    return (rng.uniform(60, 200, size=(68, 2))).astype(np.float32)


def _similarity(scale, angle, tx, ty):
    c, s = np.cos(angle) * scale, np.sin(angle) * scale
    return np.array([[c, -s, tx], [s, c, ty]])


def test_similarity_fit_recovers_a_known_transform():
    pts = _face()
    m = _similarity(1.7, 0.3, -40.0, 25.0)
    fitted = similarity_fit(pts, apply_affine(pts, m))
    np.testing.assert_allclose(fitted, m, atol=1e-4)


def test_aligned_is_pose_invariant(faces):
    template, driver = faces[0], faces[1]
    moved = apply_affine(driver, _similarity(0.6, -0.4, 300.0, 120.0))
    np.testing.assert_allclose(align(driver, template), align(moved, template), atol=1e-3)


def test_relative_neutral_gives_template_and_moves_scale_into_template_frame(faces):
    template = faces[0]
    neutral = apply_affine(faces[2], _similarity(2.0, 0.2, 500.0, 300.0))  # another face, bigger, rolled
    r = Retargeter(template, 256, RetargetConfig(mode="relative", neutral_frames=3))
    for _ in range(3):
        np.testing.assert_allclose(r(neutral), template, atol=1e-4)  # still capturing: template
    np.testing.assert_allclose(r(neutral), template, atol=1e-3)  # neutral face -> template exactly
    # the driver drops the lower lip by 20 px in the frame; roll of 0.2 rad and scale 2x are undone
    opened = neutral.copy()
    direction = np.array([-np.sin(0.2), np.cos(0.2)], np.float32)  # "down" in the driver's rolled face
    opened[57] += 20.0 * direction
    out = r(opened)
    scale = np.sqrt(abs(np.linalg.det(similarity_fit(neutral[RIGID], template[RIGID])[:, :2])))
    moved = out - template
    assert np.linalg.norm(moved[57]) == pytest.approx(20.0 * scale, rel=0.1)
    assert moved[57][1] > 0 and abs(moved[57][0]) < 0.2 * abs(moved[57][1])  # straight down in the template
    others = np.delete(np.arange(68), 57)
    assert np.abs(moved[others]).max() < 0.5  # nothing else moves much


@pytest.mark.parametrize("index", range(len(PHOTOS)))
def test_absolute_maps_the_driver_face_into_the_crop(faces, index):
    r = Retargeter(faces[0], 256, RetargetConfig(mode="absolute"))
    out = r(faces[index])
    assert out.min() > 10 and out.max() < 246  # the whole face, with a margin
    assert 90 < out[:, 0].max() - out[:, 0].min() < 200  # framed at the training scale


def test_one_euro_removes_jitter_and_follows_motion():
    rng = np.random.default_rng(0)
    f = OneEuroFilter(OneEuroConfig())
    still = np.full((68, 2), 100.0, np.float32)
    outs = [f(still + rng.normal(0, 1.0, still.shape).astype(np.float32), i / 30, 200.0).copy() for i in range(60)]
    raw_jitter = 1.0 * np.sqrt(2)
    assert np.std(np.diff(np.array(outs[30:]), axis=0)) < 0.5 * raw_jitter
    f.reset()
    for i in range(30):  # a fast move of 10 px/frame: the filter catches up within a few frames
        out = f(still + 10.0 * i, i / 30, 200.0)
    assert np.abs(out - (still + 290.0)).max() < 15.0

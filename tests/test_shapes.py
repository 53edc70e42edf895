"""The target's range of face shapes: fitted on a real dataset's landmarks, sketches held inside it."""

import json

import cv2
import numpy as np
import pytest

from face2face.geometry import align
from face2face.runtime.generator import Generator
from face2face.runtime.pipeline import Puppeteer, PuppetConfig
from face2face.runtime.retarget import RetargetConfig, Retargeter
from face2face.shapes import ShapeSpace
from face2face.train.prepare import read_landmarks

from conftest import IMAGES, copy_reference


@pytest.fixture(scope="module")
def target(tiny_dataset) -> tuple[np.ndarray, np.ndarray, ShapeSpace]:
    """The tiny dataset's template, its train landmarks aligned on it, and their shape space."""
    _, points, _ = read_landmarks(tiny_dataset / "train")
    template = points.mean(axis=0)
    aligned = np.stack([align(p, template) for p in points])
    return template, aligned, ShapeSpace.fit(aligned)


def _moved(space: ShapeSpace, points: np.ndarray, sigmas: float = 3.0) -> float:
    return float(np.linalg.norm(space.limit(points, sigmas) - points, axis=1).mean())


def test_components_are_orthonormal_and_keep_most_of_the_variance(target):
    _, aligned, space = target
    k = len(space.components)
    np.testing.assert_allclose(space.components @ space.components.T, np.eye(k), atol=1e-5)
    assert (np.diff(space.deviations) <= 1e-6).all()  # strongest first
    flat = aligned.reshape(len(aligned), 136) - space.mean.reshape(136)
    share = ((flat @ space.components.T) ** 2).sum(axis=0) / (flat**2).sum()  # of each component
    assert share[:-1].sum() < 0.99 <= share.sum() < 1.0  # the fewest components that keep 99%


def test_the_targets_own_shapes_pass_and_other_faces_are_held(target, analyzer):
    template, aligned, space = target
    own = [_moved(space, p) for p in aligned]
    assert max(own) < 0.15  # px in the 64 px crop: the target's own shapes barely move
    for name in ("lp_d8.jpg", "Tom_Cruise_avp_2014_4.jpg", "tpsmm_source.png"):
        other = align(analyzer.analyze(cv2.imread(str(IMAGES / name)))[0].landmarks, template)
        held = space.limit(other, 3.0)
        assert _moved(space, other) > 4 * max(own), name  # another face shape is not the target's
        weights = space.components @ (held - space.mean).reshape(136)
        assert (np.abs(weights) <= 3.0 * space.deviations + 1e-3).all()
        np.testing.assert_allclose(space.limit(held, 3.0), held, atol=1e-3)  # held shapes stay put


def test_a_shape_pushed_past_the_targets_range_comes_back_to_the_limit(target):
    _, aligned, space = target
    direction = space.components[0].reshape(68, 2)
    extreme = space.mean + 6.0 * space.deviations[0] * direction  # twice as far as the limit allows
    np.testing.assert_allclose(space.limit(extreme, 3.0), space.mean + 3.0 * space.deviations[0] * direction, atol=1e-3)
    np.testing.assert_allclose(space.limit(extreme, 6.5), extreme, atol=1e-3)  # a looser limit lets it be


def test_relative_retargeting_holds_the_sketch_within_the_targets_shapes(target, analyzer):
    template, _, space = target
    driver = analyzer.analyze(cv2.imread(str(IMAGES / "lp_d8.jpg")))[0].landmarks
    grin = driver.copy()  # the mouth 12 px wider
    grin[48:68, 0] += 6.0 * np.sign(grin[48:68, 0] - grin[48:68, 0].mean())
    free = Retargeter(template, 64, RetargetConfig(neutral_frames=1, shape_limit=0), space)
    held = Retargeter(template, 64, RetargetConfig(neutral_frames=1), space)
    for r in (free, held):
        r(driver)  # the neutral face
    unlimited = free(grin)
    np.testing.assert_allclose(held(grin), space.limit(unlimited, 3.0), atol=1e-4)
    assert held.held_px == pytest.approx(_moved(space, unlimited), rel=1e-4) and held.held_px > 0.1
    assert free.held_px == 0.0


def test_a_model_exported_before_shapes_runs_without_the_limit(tiny_model, tmp_path, analyzer, caplog):
    old = tmp_path / "old.onnx"
    old.write_bytes(tiny_model.read_bytes())
    copy_reference(tiny_model, tmp_path)
    info = json.loads(tiny_model.with_suffix(".json").read_text())
    old.with_suffix(".json").write_text(json.dumps({k: v for k, v in info.items() if k != "shape_space"}))
    with caplog.at_level("INFO"):
        puppeteer = Puppeteer(Generator(old, provider="cpu"), analyzer, PuppetConfig())
    assert puppeteer.retargeter.shapes is None and "no range of face shapes" in caplog.text
    current = Puppeteer(Generator(tiny_model, provider="cpu"), analyzer, PuppetConfig())
    assert isinstance(current.retargeter.shapes, ShapeSpace)

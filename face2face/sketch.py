"""The landmark sketch ("mask") the generator reads: one function for training and live use."""

from __future__ import annotations

import cv2
import numpy as np

# (name, first index, last index + 1, closed, BGR colour), iBUG 300-W order.
PARTS: tuple[tuple[str, int, int, bool, tuple[int, int, int]], ...] = (
    ("jaw", 0, 17, False, (255, 255, 255)),
    ("right_brow", 17, 22, False, (0, 255, 255)),
    ("left_brow", 22, 27, False, (0, 255, 255)),
    ("nose_bridge", 27, 31, False, (255, 128, 0)),
    ("nose_base", 30, 36, True, (255, 128, 0)),
    ("right_eye", 36, 42, True, (0, 255, 0)),
    ("left_eye", 42, 48, True, (0, 255, 0)),
    ("outer_lips", 48, 60, True, (0, 0, 255)),
    ("inner_lips", 60, 68, True, (255, 0, 255)),
)

PUPIL_COLOUR = (255, 255, 0)  # BGR cyan: a filled dot per pupil, drawn when the model uses pupils

# Fixed-point bits for sub-pixel drawing: points keep 1/16 px precision.
_SHIFT = 4


def line_thickness(size: int) -> int:
    """Stroke width for a sketch of ``size`` pixels (2 px at 256)."""
    return max(1, round(size / 128))


def pupil_radius(size: int) -> int:
    """Radius of a pupil dot for a sketch of ``size`` pixels (3 px at 256: about the iris)."""
    return max(1, round(size / 96))


def draw_sketch(points: np.ndarray, size: int, out: np.ndarray | None = None,
                pupils: np.ndarray | None = None) -> np.ndarray:
    """Draw 68 landmarks (``(68, 2)``, crop pixels) as coloured polylines on black, and a dot
    for each pupil of ``pupils`` (``(2, 2)``, NaN rows are skipped) when given.

    Returns a ``size x size x 3 uint8 BGR`` image; ``out``, if given, is cleared and reused.
    """
    if out is None:
        out = np.zeros((size, size, 3), dtype=np.uint8)
    else:
        out.fill(0)
    fixed = np.round(np.asarray(points, dtype=np.float64) * (1 << _SHIFT)).astype(np.int32)
    thickness = line_thickness(size)
    for _, start, stop, closed, colour in PARTS:
        cv2.polylines(out, [fixed[start:stop]], closed, colour, thickness, cv2.LINE_AA, _SHIFT)
    if pupils is not None:
        radius = pupil_radius(size) << _SHIFT
        for x, y in np.asarray(pupils, np.float64):
            if np.isfinite(x) and np.isfinite(y):
                centre = (round(x * (1 << _SHIFT)), round(y * (1 << _SHIFT)))
                cv2.circle(out, centre, radius, PUPIL_COLOUR, -1, cv2.LINE_AA, _SHIFT)
    return out

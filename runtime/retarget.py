"""Driver landmarks (frame pixels) -> landmarks in the generator's crop (what the sketch draws).

- ``absolute``: the driver's own points in a crop of the driver's face, framed as in training.
- ``aligned``: the driver's points moved by a similarity (scale, roll, shift) onto the
  target's landmark template, so size and position match the training data.
- ``relative``: the target's template plus the driver's change from their own neutral face,
  both measured in the template's frame, so the driver's face shape does not leak in; then held
  within the target's own range of face shapes (``face2face.shapes``), so a head turned or a
  mouth opened further than the target ever did is drawn as the nearest shape the model learned.

Gaze goes the same way (``GazeMapper``): pupils are carried in eye coordinates (relative to the
eye outline, ``face2face.pupils``); in ``relative`` mode the driver's change of gaze from their
neutral face moves the target's own mean pupils.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from face2face.geometry import Square, align, apply_affine, face_square, smooth_square
from face2face.pupils import eyes_open, from_eye_coordinates, to_eye_coordinates
from face2face.shapes import DEFAULT_LIMIT, ShapeSpace

Mode = Literal["absolute", "aligned", "relative"]
MODES: tuple[str, ...] = ("absolute", "aligned", "relative")

# Head motion carried into the target's frame: shift (crop sides) and log scale, at most. The
# shift moves the whole picture (hair and neck go with the face); the scale only the face, so it
# stays small: the face outgrowing its own head is what a viewer notices first.
MOTION_SHIFT_LIMIT = 0.08
MOTION_SCALE_LIMIT = 0.05

# Gaze kept inside the eye outline: eye coordinates (along, across), in eye widths.
GAZE_LIMIT = np.array([0.35, 0.15], np.float32)


MOVED_PX = 0.5  # the shape limit moved a sketch when its points moved this far on average (crop px)


@dataclass(frozen=True)
class RetargetConfig:
    """How the driver is mapped onto the target."""

    mode: Mode = "relative"
    neutral_frames: int = 10  # frames averaged into the driver's neutral face
    context: float = 1.0  # crop framing for ``absolute`` (the model's, from its sidecar)
    size_smoothing: float = 0.3  # crop size smoothing for ``absolute`` (as in preparation)
    shape_limit: float = DEFAULT_LIMIT  # ``relative``: standard deviations of the target's shapes (0: off)


class NeutralCapture:
    """The driver's neutral (the mean of their first frames) and changes measured from it."""

    def __init__(self, frames: int, shape: tuple[int, ...]) -> None:
        self.frames = frames
        self._sum = np.zeros(shape, np.float64)
        self._count = 0
        self.value: np.ndarray | None = None

    def reset(self) -> None:
        """Measure the neutral again over the next frames."""
        self._sum[:] = 0.0
        self._count = 0
        self.value = None

    def moved(self, reference: np.ndarray, current: np.ndarray) -> np.ndarray:
        """``reference`` moved by ``current``'s change from the neutral; while the neutral is
        still being measured (``current`` counts towards it), ``reference`` unmoved."""
        if self.value is None:
            self._sum += current
            self._count += 1
            if self._count >= self.frames:
                self.value = (self._sum / self._count).astype(np.float32)
            return reference.copy()
        return reference + (current - self.value)


class Retargeter:
    """Stateful mapping of driver landmarks to crop landmarks for one driver."""

    def __init__(self, template: np.ndarray, size: int, config: RetargetConfig = RetargetConfig(),
                 shapes: ShapeSpace | None = None) -> None:
        if config.mode not in MODES:
            raise ValueError(f"unknown retarget mode {config.mode!r}")
        self.config = config
        self.neutral = NeutralCapture(config.neutral_frames, (68, 2))  # driver's face, template frame
        self.square: Square | None = None  # last ``absolute`` crop
        self.set_target(template, size, shapes, config.context)

    def set_target(self, template: np.ndarray, size: int, shapes: ShapeSpace | None, context: float) -> None:
        """Map onto a model's template, crop size, range of shapes and framing from the next frame
        on; what was measured of the driver (the neutral face) stays."""
        self.template = np.asarray(template, np.float32)
        self.size = size
        self.config = replace(self.config, context=context)
        self.shapes = shapes if self.config.shape_limit > 0 else None
        self._hold: tuple[np.ndarray, np.ndarray] | None = None  # last points before and after the shape limit

    def recapture_neutral(self) -> None:
        """Measure the driver's neutral face again over the next frames."""
        self.neutral.reset()

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """Crop landmarks (``float32 (68, 2)``) for driver landmarks in frame pixels."""
        mode = self.config.mode
        if mode == "absolute":
            self.square = smooth_square(self.square, face_square(points, self.config.context), self.config.size_smoothing)
            return apply_affine(points, self.square.transform(self.size))
        aligned = align(points, self.template)
        if mode == "aligned":
            return aligned
        moved = self.neutral.moved(self.template, aligned)
        if self.shapes is None:
            return moved
        held = self.shapes.limit(moved, self.config.shape_limit)
        self._hold = moved, held
        return held

    @property
    def limited(self) -> bool:
        """Whether the shape limit moved the last points visibly (by more than ``MOVED_PX`` on average)."""
        return self.held_px > MOVED_PX

    @property
    def held_px(self) -> float:
        """Mean distance the shape limit moved the last points (0 where nothing was held)."""
        if self._hold is None:
            return 0.0
        moved, held = self._hold
        return float(np.linalg.norm(held - moved, axis=1).mean())


class HeadMotion:
    """The driver's head translation and scale since their neutral face, as the ``frame`` layout
    moves the target's face: ``(dx, dy)`` in face sizes and a scale, both clamped (the frame
    layout also holds the shift to its margin)."""

    def __init__(self, frames: int, shift_limit: float = MOTION_SHIFT_LIMIT, scale_limit: float = MOTION_SCALE_LIMIT) -> None:
        self.neutral = NeutralCapture(frames, (3,))  # cx, cy, log side of the driver's face square
        self.shift_limit, self.scale_limit = shift_limit, scale_limit

    def recapture_neutral(self) -> None:
        """Measure the driver's neutral head position again over the next frames."""
        self.neutral.reset()

    def __call__(self, square: Square) -> tuple[float, float, float]:
        change = self.neutral.moved(np.zeros(3, np.float32), np.array([square.cx, square.cy, np.log(square.side)], np.float32))
        if self.neutral.value is None:
            return 0.0, 0.0, 1.0
        side = float(np.exp(self.neutral.value[2]))
        dx, dy = np.clip(change[:2] / side, -self.shift_limit, self.shift_limit)
        scale = np.exp(np.clip(change[2], -self.scale_limit, self.scale_limit))
        return float(dx), float(dy), float(scale)


class GazeMapper:
    """Driver gaze (``float32 (2, 2)`` eye coordinates, unsure eyes already filled in) -> pupils
    in the crop's eye outlines; an eye the sketch shows closed gets none (NaN), as in training."""

    def __init__(self, template: np.ndarray, template_pupils: np.ndarray, config: RetargetConfig = RetargetConfig()) -> None:
        self.config = config
        self.neutral = NeutralCapture(config.neutral_frames, (2, 2))  # driver's gaze
        self.set_target(template, template_pupils)

    def set_target(self, template: np.ndarray, template_pupils: np.ndarray) -> None:
        """Move a model's own mean pupils from the next frame on; the driver's neutral gaze stays."""
        self.template_gaze = to_eye_coordinates(template_pupils, template)

    def recapture_neutral(self) -> None:
        """Measure the driver's neutral gaze again over the next frames."""
        self.neutral.reset()

    def __call__(self, gaze: np.ndarray, crop_points: np.ndarray) -> np.ndarray:
        """Pupils (crop pixels) in the eyes of ``crop_points`` for the driver's ``gaze``."""
        uv = self.neutral.moved(self.template_gaze, gaze) if self.config.mode == "relative" else gaze
        pupils = from_eye_coordinates(np.clip(uv, -GAZE_LIMIT, GAZE_LIMIT), crop_points)
        pupils[~eyes_open(crop_points)] = np.nan
        return pupils

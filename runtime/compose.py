"""Output frame layouts: the generated face in the target's own frame (``frame``), the face alone,
or driver | sketch | output for demos."""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

from face2face.geometry import Square, crop
from face2face.runtime.background import UPSCALE, BackgroundClip, FacePaster, crop_to_frame, face_outline

Layout = Literal["frame", "face", "side-by-side"]
LAYOUTS: tuple[str, ...] = ("frame", "face", "side-by-side")


FRAME_SIZE = (1280, 720)  # the frame layout's default output: a virtual camera's usual size


def output_size(layout: str, width: int | None, height: int | None, model_size: int | None = None) -> tuple[int, int]:
    """The output size asked for, or the layout's own: 1280x720 for ``frame``; for the others
    640x480 live (``model_size`` None), or the model size (three wide side-by-side) in a file."""
    if layout == "frame":
        default = FRAME_SIZE
    elif model_size is None:
        default = (640, 480)
    else:
        default = (3 * model_size if layout == "side-by-side" else model_size, model_size)
    return width or default[0], height or default[1]


class Composer:
    """Draws each output frame into one buffer made at start-up (``HxWx3 uint8 BGR``).

    The ``frame`` layout needs the model's background clip: the face goes where the target's face
    is in the clip's current frame, moved by the driver's head motion.
    """

    def __init__(self, layout: Layout, width: int, height: int, background: BackgroundClip | None = None) -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}")
        if layout == "frame" and background is None:
            raise ValueError("the frame layout needs a background clip")
        self.layout = layout
        self.background = background
        self.paster = FacePaster()
        self.out = np.zeros((height, width, 3), np.uint8)
        self.show_sketch = False  # draw the sketch over the face (``face`` layout)
        panels = 1 if layout == "face" else 3
        side = min(width // panels, height)
        x0, y0 = (width - panels * side) // 2, (height - side) // 2
        self._panels = [self.out[y0 : y0 + side, x0 + i * side : x0 + (i + 1) * side] for i in range(panels)]
        self._side = side
        self._scratch = np.empty((side, side, 3), np.uint8)

    def compose(self, frame: np.ndarray, sketch: np.ndarray, face: np.ndarray, square: Square | None,
                t: float = 0.0, motion: tuple[float, float, float] = (0.0, 0.0, 1.0),
                points: np.ndarray | None = None) -> np.ndarray:
        """The output frame for a driver frame, its sketch, the generated face (with its crop
        landmarks ``points``) and the driver's crop, at time ``t`` (s) with the driver's head
        ``motion`` (dx, dy in face sizes, scale)."""
        side = self._side
        if self.layout == "frame":
            clip = self.background
            index = clip.index(t)
            square, (dx, dy, scale) = clip.squares[index], motion
            x, y = clip.corner(dx * square.side, dy * square.side)  # the picture moves with the head
            h, w = self.out.shape[:2]
            np.copyto(self.out, clip.frames[index][y : y + h, x : x + w])
            target = Square(square.cx - x, square.cy - y, square.side * scale)
            outlines = [clip.outlines[index] - (x, y)]
            if points is not None:
                outlines.append(face_outline(crop_to_frame(points, target, face.shape[0])))
            self.paster.paste(self.out, face, target, outlines)
            return self.out
        if self.layout == "face":
            self._resize(face, self._panels[0], UPSCALE)
            if self.show_sketch:
                self._resize(sketch, self._scratch)
                cv2.add(self._panels[0], self._scratch, dst=self._panels[0])
            return self.out
        driver, drawn, generated = self._panels
        if square is None:  # no face: the middle of the frame
            h, w = frame.shape[:2]
            square = Square(w / 2, h / 2, min(w, h))
        crop(frame, square, side, out=self._scratch)
        driver[:] = self._scratch
        self._resize(sketch, drawn)
        self._resize(face, generated, UPSCALE)
        return self.out

    def _resize(self, image: np.ndarray, panel: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> None:
        """``image`` scaled into ``panel`` (faces as the frame layout enlarges them; sketches bilinear,
        which keeps their thin lines free of ringing)."""
        if image.shape[0] == self._side:
            panel[:] = image
        else:
            cv2.resize(image, (self._side, self._side), dst=self._scratch, interpolation=interpolation)
            if panel is not self._scratch:
                panel[:] = self._scratch

"""Output frame layouts: the generated face alone, or driver | sketch | output for demos."""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

from face2face.geometry import Square, crop

Layout = Literal["face", "side-by-side"]
LAYOUTS: tuple[str, ...] = ("face", "side-by-side")


class Composer:
    """Draws each output frame into one buffer made at start-up (``HxWx3 uint8 BGR``)."""

    def __init__(self, layout: Layout, width: int, height: int) -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}")
        self.layout = layout
        self.out = np.zeros((height, width, 3), np.uint8)
        self.show_sketch = False  # draw the sketch over the face (``face`` layout)
        panels = 1 if layout == "face" else 3
        side = min(width // panels, height)
        x0, y0 = (width - panels * side) // 2, (height - side) // 2
        self._panels = [self.out[y0 : y0 + side, x0 + i * side : x0 + (i + 1) * side] for i in range(panels)]
        self._side = side
        self._scratch = np.empty((side, side, 3), np.uint8)

    def compose(self, frame: np.ndarray, sketch: np.ndarray, face: np.ndarray, square: Square | None) -> np.ndarray:
        """The output frame for a driver frame, its sketch, the generated face and the driver's crop."""
        side = self._side
        if self.layout == "face":
            self._resize(face, self._panels[0])
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
        self._resize(face, generated)
        return self.out

    def _resize(self, image: np.ndarray, panel: np.ndarray) -> None:
        if image.shape[0] == self._side:
            panel[:] = image
        else:
            cv2.resize(image, (self._side, self._side), dst=self._scratch, interpolation=cv2.INTER_LINEAR)
            if panel is not self._scratch:
                panel[:] = self._scratch

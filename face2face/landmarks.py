"""68 facial landmarks (iBUG 300-W order) from dlib's shape predictor.

dlib's predictor was trained on boxes from dlib's own HOG detector, so a box from another
detector is first mapped to where HOG would have put it, and the points are then refined once
from a box derived from the first points. Box mappings were fitted on dlib's annotated
examples (the PASCAL VOC photos with ``*_with_face_landmarks.xml``).
"""

from __future__ import annotations

import dlib
import numpy as np

from face2face import assets
from face2face.geometry import Square

# Per detector: (centre shift x, centre shift y, side), in units of sqrt(w*h) of its box,
# taking its box to the square dlib's HOG detector would give the same face.
BOX_TO_DLIB = {
    "hog": (0.0, 0.0, 1.0),
    "ssd": (0.0, 0.077, 0.93),
    "yunet": (0.0, 0.062, 0.98),
}
# Landmarks -> HOG box: centred on the bounding box of the inner face (brows, eyes, nose, lips;
# the jaw line swings sideways on turned faces) shifted down 0.047, side 1.093, in units of
# sqrt(w*h) of the bounding box of all 68 points (43 faces, std 0.04-0.09). Re-predicting from
# this box reproduces dlib's points on its own boxes to 0.43 px on average.
LANDMARKS_TO_DLIB = (0.0, 0.047, 1.093)


def dlib_rect(square: Square) -> dlib.rectangle:
    """The dlib rectangle (inclusive corners) of a square."""
    left, top = round(square.cx - square.side / 2), round(square.cy - square.side / 2)
    size = max(round(square.side), 1)
    return dlib.rectangle(left, top, left + size - 1, top + size - 1)


def _mapped(x: float, y: float, w: float, h: float, mapping) -> Square:
    s = float(np.sqrt(max(w * h, 1e-6)))
    dx, dy, k = mapping
    return Square(x + w / 2 + dx * s, y + h / 2 + dy * s, k * s)


def dlib_square_from_box(box: tuple[float, float, float, float], detector: str) -> Square:
    """Where dlib's HOG detector would box the face that ``detector`` boxed as ``(x, y, w, h)``."""
    return _mapped(*box, BOX_TO_DLIB.get(detector, BOX_TO_DLIB["ssd"]))


def dlib_square_from_landmarks(points: np.ndarray) -> Square:
    """Where dlib's HOG detector would box a face with these 68 landmarks."""
    inner = points[17:]
    cx, cy = (inner.min(axis=0) + inner.max(axis=0)) / 2
    w, h = points.max(axis=0) - points.min(axis=0)
    s = float(np.sqrt(max(w * h, 1e-6)))
    dx, dy, k = LANDMARKS_TO_DLIB
    return Square(float(cx) + dx * s, float(cy) + dy * s, k * s)


class LandmarkPredictor:
    """dlib's 68-point shape predictor on ``HxWx3 uint8 BGR`` images."""

    def __init__(self, weights: str | None = None) -> None:
        self.predictor = dlib.shape_predictor(str(assets.locate("landmarks68", weights)))

    def predict(self, image: np.ndarray, rect: dlib.rectangle) -> np.ndarray:
        """The 68 points (``float32 (68, 2)``, image pixels) for the face in ``rect``.

        ``image`` is ``HxWx3 uint8 BGR``, passed as is: dlib turns colour into grey by averaging
        the three channels, so their order does not change the result and no copy is made.
        """
        shape = self.predictor(image, rect)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)

    def refine(self, image: np.ndarray, square: Square, passes: int = 3) -> np.ndarray:
        """Landmarks from a first box, re-run on the box derived from the result."""
        points = self.predict(image, dlib_rect(square))
        for _ in range(passes - 1):
            points = self.predict(image, dlib_rect(dlib_square_from_landmarks(points)))
        return points

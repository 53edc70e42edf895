"""Identity distance with dlib's ResNet face descriptor: below 0.6 reads as the same person."""

from __future__ import annotations

import cv2
import dlib
import numpy as np

from face2face import assets
from face2face.landmarks import dlib_rect, dlib_square_from_landmarks

SAME_PERSON = 0.6  # dlib's convention for its 128-D descriptor


class FaceIdentity:
    """128-D face descriptors from an image and its 68 landmarks."""

    def __init__(self, weights: str | None = None) -> None:
        self.model = dlib.face_recognition_model_v1(str(assets.locate("face-descriptor", weights)))

    def descriptor(self, image: np.ndarray, points: np.ndarray) -> np.ndarray:
        """The descriptor (``float64 (128,)``) of the face with landmarks ``points`` in a BGR image."""
        rect = dlib_rect(dlib_square_from_landmarks(points))
        shape = dlib.full_object_detection(rect, [dlib.point(int(round(x)), int(round(y))) for x, y in points])
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)  # the network reads colour, in RGB order
        return np.asarray(self.model.compute_face_descriptor(rgb, shape))


def distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance between two descriptors."""
    return float(np.linalg.norm(a - b))

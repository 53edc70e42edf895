"""Squares, crops and 2-D transforms on 68-point landmarks (``float32 (68, 2)``, pixels)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# iBUG 300-W index ranges
LEFT_EYE = slice(36, 42)  # the subject's right eye, on the left of the image
RIGHT_EYE = slice(42, 48)
MOUTH_CORNERS = (48, 54)

# Points that move little with expression: brow inner ends, nose, eye corners. Fitting the
# pose on these keeps a yawn or a smile from being read as a change of head size or roll.
RIGID = np.array([21, 22, 27, 28, 29, 30, 31, 33, 35, 36, 39, 42, 45])


@dataclass(frozen=True)
class Square:
    """An axis-aligned square ``(cx, cy, side)`` in image pixels."""

    cx: float
    cy: float
    side: float

    def transform(self, size: int) -> np.ndarray:
        """The ``2x3`` affine matrix that maps image pixels into a ``size`` x ``size`` crop."""
        k = size / self.side
        return np.array(
            [[k, 0.0, size / 2 - k * self.cx], [0.0, k, size / 2 - k * self.cy]], dtype=np.float64
        )


def face_square(points: np.ndarray, context: float = 1.0) -> Square:
    """A crop square from the landmarks that holds the face with some context around it.

    Follows the FFHQ alignment rule (centre a fifth of the way from the eyes to the mouth
    corners; size from the larger of the eye-to-eye and eye-to-mouth distances), which leans on
    the eyes and mouth corners rather than the jaw and lips, so it barely moves when the mouth
    opens or the brows rise. ``context`` scales the side (1.0 = forehead to chin plus a margin).
    """
    eye_l = points[LEFT_EYE].mean(axis=0)
    eye_r = points[RIGHT_EYE].mean(axis=0)
    eye_avg = (eye_l + eye_r) / 2
    mouth_avg = (points[MOUTH_CORNERS[0]] + points[MOUTH_CORNERS[1]]) / 2
    eye_to_mouth = mouth_avg - eye_avg
    centre = eye_avg + 0.2 * eye_to_mouth
    half = max(np.hypot(*(eye_r - eye_l)) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    return Square(float(centre[0]), float(centre[1]), float(2.0 * half * context))


def smooth_square(previous: Square | None, current: Square, alpha: float) -> Square:
    """Exponential smoothing of a square's size across consecutive frames (centre kept as is).

    Landmark noise moves the size estimate by ~1% a frame; the centre is steadier and should
    follow head motion without lag.
    """
    if previous is None:
        return current
    return Square(current.cx, current.cy, previous.side + alpha * (current.side - previous.side))


def crop(image: np.ndarray, square: Square, size: int, out: np.ndarray | None = None) -> np.ndarray:
    """The ``size`` x ``size`` crop of ``image`` under ``square`` (edges replicated outside the image)."""
    return cv2.warpAffine(
        image, square.transform(size), (size, size), dst=out, flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )


def apply_affine(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Points ``(N, 2)`` mapped by a ``2x3`` affine matrix, as ``float32``."""
    return (points @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)


def similarity_fit(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The ``2x3`` similarity (scale, rotation, translation) that best maps ``src`` onto ``dst``.

    Least squares (Umeyama 1991), no reflection.
    """
    src = src.astype(np.float64)
    dst = dst.astype(np.float64)
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0
    fix = np.diag([1.0, sign])
    rot = u @ fix @ vt
    scale = (sig * np.diag(fix)).sum() / max((s**2).sum() / len(src), 1e-12)
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rot
    matrix[:, 2] = mu_d - scale * rot @ mu_s
    return matrix


def align(points: np.ndarray, template: np.ndarray) -> np.ndarray:
    """``points`` moved by the similarity that best fits their rigid points onto the template's."""
    return apply_affine(points, similarity_fit(points[RIGID], template[RIGID]))

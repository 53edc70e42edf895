"""Pupils (iris centres) from an image and its 68 landmarks, so the sketch can carry gaze.

The 68 landmarks have no pupils. Inside each eye outline the iris is the darkest blob, darkest
of all in the red channel, where skin and the white of the eye are bright. The estimate is the
darkness-weighted centre of the darkest pixels of the blurred eye region, with the outline
pulled in towards its centre line so lashes and lid shadows do not drag it up or down. No pupil
is returned when the eye is closed (eye aspect ratio) or the estimate is unsure (too little
contrast between the iris and the rest of the eye: a glare on glasses, a shadowed socket).

Pupils are ``float32 (2, 2)`` arrays (right eye, left eye; same pixels as the landmarks), NaN
where there is none. An eye's own frame (``eye_frame``) expresses a pupil relative to the eye
outline, which is how gaze is carried from one face to another.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

EYES = (slice(36, 42), slice(42, 48))  # right eye, left eye (iBUG order; the person's right)


@dataclass(frozen=True)
class PupilConfig:
    """Thresholds of the pupil finder."""

    min_open: float = 0.18  # eye aspect ratio below which the eye counts as closed
    dark_share: float = 0.3  # share of the eye's pixels taken as iris candidates
    min_contrast: float = 14.0  # red levels between the iris candidates and the rest of the eye
    shrink: tuple[float, float] = (0.85, 0.6)  # outline pulled towards its centre (along, across the eye)


def eye_aspect_ratio(eye: np.ndarray) -> float:
    """(|p2-p6| + |p3-p5|) / (2 |p1-p4|) of a 6-point eye outline (Soukupova & Cech 2016)."""
    vertical = np.linalg.norm(eye[1] - eye[5]) + np.linalg.norm(eye[2] - eye[4])
    return float(vertical / (2.0 * max(np.linalg.norm(eye[0] - eye[3]), 1e-6)))


def find_pupils(image: np.ndarray, points: np.ndarray, config: PupilConfig = PupilConfig()) -> np.ndarray:
    """Pupil centres of a face in ``image`` (BGR or grey) with 68 ``points``; NaN where none."""
    out = np.full((2, 2), np.nan, np.float32)
    for i, (eye_slice, is_open) in enumerate(zip(EYES, eyes_open(points, config))):
        centre = _iris_centre(image, np.asarray(points[eye_slice], np.float32), config) if is_open else None
        if centre is not None:
            out[i] = centre
    return out


def _iris_centre(image: np.ndarray, eye: np.ndarray, config: PupilConfig) -> np.ndarray | None:
    width = float(np.linalg.norm(eye[3] - eye[0]))
    if width < 6.0:  # too small to see an iris
        return None
    x0, y0 = np.floor(eye.min(axis=0)).astype(int) - 1
    x1, y1 = np.ceil(eye.max(axis=0)).astype(int) + 2
    h, w = image.shape[:2]
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 6 or y1 - y0 < 3:
        return None
    patch = image[y0:y1, x0:x1]
    red = np.ascontiguousarray(patch[..., 2]) if patch.ndim == 3 else patch
    red = cv2.GaussianBlur(red, (0, 0), max(0.5, width / 40)).astype(np.float32)
    mask = np.zeros(red.shape, np.uint8)
    cv2.fillPoly(mask, [np.round(_shrunk(eye, config.shrink) - [x0, y0]).astype(np.int32)], 1)
    inside = mask.view(bool)
    values = red[inside]
    if values.size < 8:
        return None
    cut = float(np.quantile(values, config.dark_share))
    dark, light = values[values <= cut], values[values > cut]
    if not light.size or float(np.median(light)) - float(dark.mean()) < config.min_contrast:
        return None
    weight = np.where(inside & (red <= cut), cut + 1.0 - red, 0.0).astype(np.float32)
    m = cv2.moments(weight)
    if m["m00"] <= 0:
        return None
    return np.array([m["m10"] / m["m00"] + x0, m["m01"] / m["m00"] + y0], np.float32)


def _shrunk(eye: np.ndarray, shrink: tuple[float, float]) -> np.ndarray:
    """The eye outline scaled towards its centre, separately along and across the eye."""
    centre = eye.mean(axis=0)
    axis = eye[3] - eye[0]
    axis = axis / max(float(np.linalg.norm(axis)), 1e-6)
    normal = np.array([-axis[1], axis[0]], np.float32)
    rel = eye - centre
    return centre + np.outer(rel @ axis * shrink[0], axis) + np.outer(rel @ normal * shrink[1], normal)


def eyes_open(points: np.ndarray, config: PupilConfig = PupilConfig()) -> np.ndarray:
    """``bool (2,)``: which eyes of 68 ``points`` are open (eye aspect ratio at least ``min_open``)."""
    return np.array([eye_aspect_ratio(points[e]) >= config.min_open for e in EYES])


def fill_gaze(gaze: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Gaze (eye coordinates) with each unsure eye (NaN) given the other eye's gaze (eyes move
    together), or ``fallback`` when neither eye is sure."""
    out = gaze.copy()
    for i in range(2):
        if not np.isfinite(gaze[i]).all():
            out[i] = gaze[1 - i] if np.isfinite(gaze[1 - i]).all() else fallback[i]
    return out


def eye_frame(eye: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(origin, 2x2 basis) of an eye outline: origin at its centre, axes along and across the
    eye, one unit = the corner-to-corner width. ``origin + uv @ basis`` maps eye coordinates to pixels."""
    eye = np.asarray(eye, np.float32)
    along = eye[3] - eye[0]
    across = np.array([-along[1], along[0]], np.float32)
    return eye.mean(axis=0), np.stack([along, across])


def to_eye_coordinates(pupils: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Pupils (pixels) as coordinates in their eye's frame (NaN stays NaN)."""
    out = np.full((2, 2), np.nan, np.float32)
    for i, eye_slice in enumerate(EYES):
        origin, basis = eye_frame(points[eye_slice])
        out[i] = np.linalg.solve(basis.T, pupils[i] - origin)
    return out


def from_eye_coordinates(uv: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Eye coordinates back to pixels in the eye outlines of ``points``."""
    out = np.empty((2, 2), np.float32)
    for i, eye_slice in enumerate(EYES):
        origin, basis = eye_frame(points[eye_slice])
        out[i] = origin + uv[i] @ basis
    return out

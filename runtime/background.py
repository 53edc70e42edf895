"""The target's own frames around the generated face: the background clip that travels with a
model (``MODEL.background/``, written by ``export``) and the seamless paste of a face crop.

The clip is a stretch of the target video with its face crop square in every frame; it plays
forwards then backwards (ping-pong), so the loop never jumps, and is held with a margin so the
whole picture can move with the driver's head. The generated crop replaces the target's face,
blended into the frame over a feathered outline whose colours are matched to the frame's.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from face2face.errors import Face2FaceError
from face2face.geometry import Square, crop

SQUARES = "squares.json"  # in the clip folder: {"fps": ..., "size": [w, h], "squares": [[cx, cy, side], ...]}
MASK_SIZE = 96  # px of the grid the pasted region and the colour match are worked out on
FEATHER = 0.08  # share of the crop side over which the generated face fades into the frame
MASK_GROW = 0.03  # the face outline is widened by this share of the crop side before feathering
FOREHEAD = 0.08  # the pasted forehead reaches this share of the chin-to-brows distance above the brows (below the hairline)
COLOUR_LIMIT = 24.0  # at most this many 8-bit levels of colour correction per channel
COLOUR_EVERY = 3  # frames between two measurements of the colour offset
COLOUR_SMOOTHING = 0.4  # EMA weight of each measurement (about 0.15 a frame): steady, no flicker
CAMERA_MARGIN = 0.05  # share of the output height the picture can move by with the driver's head
ALPHA_FLOOR = 0.004  # weights at or below this leave the frame as it is (under half an 8-bit level)
UPSCALE = cv2.INTER_CUBIC  # how the generated face is enlarged: into the frame, or to a panel (bilinear: softer)


def background_folder(model: str | os.PathLike) -> Path:
    """``MODEL.background/`` beside ``MODEL.onnx``."""
    path = Path(model)
    return path.with_name(path.stem + ".background")


def clip_identity(folder: str | os.PathLike) -> bytes:
    """What tells a clip from another: its ``squares.json`` (source frames, squares and landmarks);
    b"" where there is none to read."""
    try:
        return (Path(folder) / SQUARES).read_bytes()
    except OSError:
        return b""


@dataclass
class BackgroundClip:
    """Frames of the target video fitted into the output size with a margin on every side, so the
    picture can move with the driver's head (a camera following it), with the target's crop
    square and face outline in each."""

    frames: list[np.ndarray]  # (H + 2 margin) x (W + 2 margin) x 3 uint8 BGR, W x H the output size
    squares: list[Square]  # the target's face square in each frame, pixels of ``frames``
    outlines: list[np.ndarray]  # the target's face outline in each frame, pixels of ``frames``
    fps: float
    margin: int = 0  # px the picture can move by in each direction

    def index(self, t: float) -> int:
        """The frame shown at time ``t`` (s): forwards, then backwards, then forwards again."""
        n = len(self.frames)
        if n == 1:
            return 0
        step = int(t * self.fps) % (2 * n - 2)
        return step if step < n else 2 * n - 2 - step

    def corner(self, dx: float, dy: float) -> tuple[int, int]:
        """Top-left corner (in ``frames`` px) of the output's view of a frame whose picture moves
        by ``(dx, dy)`` px, clamped to the margin."""
        m = self.margin
        return m - max(-m, min(m, round(dx))), m - max(-m, min(m, round(dy)))


def load_background(folder: str | os.PathLike, out_width: int, out_height: int, still: bool = False) -> BackgroundClip:
    """A background clip (a ``MODEL.background/`` folder) fitted into ``out_width x out_height``,
    with ``CAMERA_MARGIN`` of the height around it: the picture is enlarged just enough that
    moving it by the margin never shows an edge where it fills the output. ``still``: its first
    frame only."""
    folder = Path(folder)
    try:
        meta = json.loads((folder / SQUARES).read_text())
        squares, fps, (width, height) = meta["squares"], float(meta["fps"]), meta["size"]
        points, crop_size = np.asarray(meta["points"], np.float64), float(meta["crop_size"])
        if not squares or fps <= 0 or np.asarray(squares, np.float64).shape != (len(squares), 3):
            raise ValueError("empty clip, bad fps or squares")
        if points.shape != (len(squares), 68, 2) or crop_size <= 0:
            raise ValueError("landmarks do not match the frames")
        if still:
            squares, points = squares[:1], points[:1]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise Face2FaceError(f"{folder / SQUARES}: unreadable background clip ({exc}); export the model again") from None
    margin = round(CAMERA_MARGIN * out_height)
    scale = min(out_width / width, out_height / height)  # fitted, aspect kept
    scale *= max([(out + 2 * margin) / out for out, size in ((out_width, width), (out_height, height))
                  if size * scale >= out - 1], default=1.0)  # enlarged where it fills the output
    full = (out_width + 2 * margin, out_height + 2 * margin)
    x0, y0 = round((full[0] - width * scale) / 2), round((full[1] - height * scale) / 2)
    size = (round(width * scale), round(height * scale))
    frames = []
    for i in range(len(squares)):
        image = cv2.imread(str(folder / f"{i:04d}.jpg"), cv2.IMREAD_COLOR)
        if image is None or image.shape[:2] != (height, width):
            raise Face2FaceError(f"{folder}/{i:04d}.jpg: missing or not {width}x{height}; export the model again")
        canvas = np.zeros((full[1], full[0], 3), np.uint8)
        canvas[y0 : y0 + size[1], x0 : x0 + size[0]] = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        frames.append(canvas)
    placed = [Square(cx * scale + x0, cy * scale + y0, side * scale) for cx, cy, side in squares]
    outlines = [face_outline(crop_to_frame(p, square, crop_size)) for p, square in zip(points, placed)]
    return BackgroundClip(frames, placed, outlines, fps, margin)


def crop_to_frame(points: np.ndarray, square: Square, crop_size: float) -> np.ndarray:
    """Points in a ``crop_size`` crop -> frame pixels under ``square``."""
    k = square.side / crop_size
    return (np.asarray(points, np.float64) * k + (square.cx - square.side / 2, square.cy - square.side / 2)).astype(np.float32)


def face_outline(points: np.ndarray) -> np.ndarray:
    """The face's outline as a polygon (``float32 (N, 2)``): the 68 points' hull with a forehead
    added above the brows (the landmarks stop at the brows)."""
    brows = points[17:27]
    up = brows.mean(axis=0) - points[8]  # chin -> brows
    forehead = brows + FOREHEAD * up
    return cv2.convexHull(np.concatenate([points, forehead]).astype(np.float32)).reshape(-1, 2)


class FacePaster:
    """Pastes generated face crops into frames, colours matched where they meet.

    With outlines, the pasted region is the generated face's outline joined with the outline of
    the face it replaces (so neither shows twice), widened and feathered; without, the whole
    crop square with a feathered border. The region and the colour match are worked out on a
    small grid (``MASK_SIZE``) and the weights scaled up: the cost barely grows with the face.
    """

    def __init__(self, feather: float = FEATHER) -> None:
        self.feather = feather
        n = np.arange(MASK_SIZE)
        ramp = np.clip(np.minimum(n + 0.5, MASK_SIZE - n - 0.5) / (feather * MASK_SIZE), 0.0, 1.0)
        ramp = ramp * ramp * (3 - 2 * ramp)  # smoothstep
        self._border = np.outer(ramp, ramp).astype(np.float32)  # 1 inside, 0 at the square's border
        self._grow = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (int(MASK_GROW * MASK_SIZE) | 1,) * 2)
        self._blur = int(feather * MASK_SIZE) | 1
        self._offset = np.zeros(3)
        self._pasted = 0  # frames since the last reset

    def weights(self, side: int, outlines: list[np.ndarray] | None) -> np.ndarray:
        """``MASK_SIZE`` square float32 weights over the crop square for outlines in square px
        (``side`` across): 1 on the face, feathered to 0."""
        if not outlines:
            return self._border
        mask = np.zeros((MASK_SIZE, MASK_SIZE), np.uint8)
        for polygon in outlines:
            cv2.fillConvexPoly(mask, np.round(polygon * (MASK_SIZE / side)).astype(np.int32), 255)
        mask = cv2.GaussianBlur(cv2.dilate(mask, self._grow), (self._blur, self._blur), 0)
        return mask.astype(np.float32) * (1.0 / 255.0) * self._border

    def reset(self) -> None:
        """Forget the colour offset (a new stream)."""
        self._offset[:] = 0.0
        self._pasted = 0

    def paste(self, frame: np.ndarray, face: np.ndarray, square: Square, outlines: list[np.ndarray] | None = None) -> None:
        """Blend ``face`` (a square crop) into ``frame`` in place, over ``square`` (clipped to the
        frame); ``outlines`` (frame px) bound the pasted region when given."""
        side = max(int(round(square.side)), 2)
        x0, y0 = int(round(square.cx - side / 2)), int(round(square.cy - side / 2))
        h, w = frame.shape[:2]
        fx0, fy0, fx1, fy1 = max(x0, 0), max(y0, 0), min(x0 + side, w), min(y0 + side, h)
        if fx1 - fx0 < 2 or fy1 - fy0 < 2:
            return
        small = self.weights(side, [o - (x0, y0) for o in outlines] if outlines else None)
        band = ((small > 0.02) & (small < 0.98)).astype(np.uint8) if self._pasted % COLOUR_EVERY == 0 else None
        if band is not None and band.any():  # the seam, where both show
            there = crop(frame, Square(x0 + side / 2, y0 + side / 2, side), MASK_SIZE)
            ours = cv2.resize(face, (MASK_SIZE, MASK_SIZE), interpolation=cv2.INTER_LINEAR)
            offset = np.subtract(cv2.mean(there, band)[:3], cv2.mean(ours, band)[:3])
            weight = 1.0 if self._pasted == 0 else COLOUR_SMOOTHING
            self._offset += weight * (np.clip(offset, -COLOUR_LIMIT, COLOUR_LIMIT) - self._offset)
        self._pasted += 1
        self._blend(frame, face, small, x0, y0, side)

    def _blend(self, frame: np.ndarray, face: np.ndarray, small: np.ndarray, x0: int, y0: int, side: int) -> None:
        """``face`` (colour matched) over ``frame`` by the weights ``small``, on the square at
        ``(x0, y0)``, ``side`` across. Only the part of the square under non-zero weights (about
        half of it) is scaled up and blended."""
        n = face.shape[0]
        alpha = cv2.resize(small, (n, n), interpolation=cv2.INTER_LINEAR)
        rows, cols = np.nonzero(alpha.max(axis=1) > ALPHA_FLOOR)[0], np.nonzero(alpha.max(axis=0) > ALPHA_FLOOR)[0]
        if not len(rows):
            return
        h, w = frame.shape[:2]
        k = side / n  # face px -> frame px; the face rows r0:r1 cover frame rows y0 + r0 * k ...
        r0, r1 = max(rows[0], int(np.ceil(-y0 / k))), min(rows[-1] + 1, int((h - y0) / k))
        c0, c1 = max(cols[0], int(np.ceil(-x0 / k))), min(cols[-1] + 1, int((w - x0) / k))
        top, bottom, left, right = (y0 + round(r0 * k), y0 + round(r1 * k), x0 + round(c0 * k), x0 + round(c1 * k))
        if bottom - top < 1 or right - left < 1:
            return
        size = (right - left, bottom - top)
        a = cv2.resize(alpha[r0:r1, c0:c1], size, interpolation=cv2.INTER_LINEAR)
        matched = cv2.add(face[r0:r1, c0:c1], (*self._offset, 0.0))  # saturating, per channel
        generated = cv2.resize(matched, size, interpolation=UPSCALE)
        region = frame[top:bottom, left:right]
        cv2.blendLinear(generated, region, a, 1.0 - a, dst=region)

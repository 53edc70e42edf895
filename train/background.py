"""The background clip an exported model carries: a stretch of the target video, with its face
crop square in every frame, that the runtime's ``frame`` layout puts the generated face into.

The stretch is the one of the train split where the face moves least (the generated face carries
the driver's head motion, the clip should not add its own), played ping-pong by the runtime so it
breathes and blinks without a jump. Frames are JPEG (quality 95) at the video's own size.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import cv2
import numpy as np

from face2face.runtime.background import SQUARES, background_folder
from face2face.train.prepare import read_manifest
from face2face.video import VideoSource

log = logging.getLogger(__name__)

BACKGROUND_FRAMES = 60  # 2 s at 30 fps, 4 s per ping-pong cycle


def train_squares(data: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frame indices, crop squares ``(N, 3)`` and crop landmarks ``(N, 68, 2)`` of the train pairs
    cut from the first source video."""
    meta = json.loads((data / "train" / "landmarks.json").read_text())
    keep = [i for i, name in enumerate(meta["names"]) if name.startswith("00_")]
    frames = np.array([int(meta["names"][i].split("_")[1]) for i in keep])
    squares = np.asarray(meta["squares"], np.float64)[keep]
    points = np.asarray(meta["points"], np.float64).reshape(len(meta["names"]), 68, 2)[keep]
    return frames, squares, points


def steadiest_stretch(squares: np.ndarray, length: int) -> int:
    """Start of the ``length`` consecutive squares whose centre and size change least in total."""
    if len(squares) <= length:
        return 0
    step = np.abs(np.diff(squares[:, :2], axis=0)).sum(axis=1) / squares[1:, 2] + np.abs(np.diff(np.log(squares[:, 2])))
    windows = np.convolve(step, np.ones(length - 1), mode="valid")
    return int(np.argmin(windows))


def write_background(data: str | Path, model: str | Path, length: int = BACKGROUND_FRAMES) -> Path | None:
    """Write ``MODEL.background/`` from the dataset's first source video; None (and a warning) if
    that video cannot be read here. Atomic: a partial folder never takes the final name."""
    data, model = Path(data), Path(model)
    video = Path(read_manifest(data)["sources"][0]["path"])
    if not video.is_file():
        log.warning("%s: target video not found; %s gets no background clip (layout face only)", video, model.name)
        return None
    frames, squares, points = train_squares(data)
    if len(frames) == 0:
        return None
    start = steadiest_stretch(squares, length)
    picks, picked = frames[start : start + length], squares[start : start + length]
    crop_points = points[start : start + length]
    folder = background_folder(model)
    tmp = folder.with_name(f".{folder.name}.part")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        with VideoSource(str(video)) as source:
            fps, size, wanted, index = source.fps, [source.width, source.height], set(picks.tolist()), 0
            written = 0
            for frame in source:
                if index in wanted:
                    cv2.imwrite(str(tmp / f"{written:04d}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 95])
                    written += 1
                index += 1
                if index > picks[-1]:
                    break
        if written != len(picks):
            log.warning("%s: could read only %d of the %d background frames; no background clip", video, written, len(picks))
            return None
        step = float(np.median(np.diff(picks))) if len(picks) > 1 else 1.0
        (tmp / SQUARES).write_text(json.dumps({
            "fps": fps / step, "size": size, "source": video.name, "frames": picks.tolist(),
            "squares": np.round(picked, 2).tolist(), "crop_size": int(read_manifest(data)["size"]),
            "points": np.round(crop_points, 2).tolist()}))
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("background clip: %d frames of %s (from frame %d), %s", len(picks), video.name, picks[0], folder.name)
    return folder

"""Target video(s) -> paired dataset of (landmark sketch, face crop) images.

Layout written under the output folder::

    train/input/*.png   sketches          test/input/*.png
    train/target/*.png  face crops        test/target/*.png
    train/landmarks.json  test/landmarks.json   per pair: 68 points and 2 pupils (null where
                        the eye is closed or unsure) in crop pixels, and the crop square
                        (cx, cy, side) in source-frame pixels
    manifest.json       written last: its presence marks a complete dataset
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from face2face.console import plural
from face2face.coverage import FEATURES, coverage
from face2face.coverage import features as coverage_features
from face2face.coverage import picture as coverage_picture
from face2face.detectors import DetectorConfig
from face2face.errors import Face2FaceError
from face2face.files import write_atomic
from face2face.faces import FaceAnalyzer
from face2face.geometry import Square, apply_affine, crop, face_square, smooth_square
from face2face.pupils import find_pupils
from face2face.sketch import draw_sketch
from face2face.video import VideoSource

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
COVERAGE_PICTURE = "coverage.png"  # one row per coverage feature: the drivers' range, the target's frames
FORMAT = "face2face-dataset"
SPLITS = ("train", "test")
REFERENCES = "references"  # the reference bank's folder (``face2face.train.references``)
REFERENCES_DONE = "references.json"  # written after the bank and every pair's reference
# A video that stops decoding this many frames in a row before its announced end is over.
MAX_CONSECUTIVE_UNREADABLE = 25


@dataclass(frozen=True)
class PrepareConfig:
    """How frames become training pairs."""

    every: int = 1  # keep every N-th frame
    size: int = 256  # side of the square crops and sketches, px
    max_pairs: int | None = None  # stop once this many pairs are kept (all videos together)
    test_fraction: float = 0.2  # last share of each video (in time) held out for testing
    detector: str = "ssd"  # face detector name
    context: float = 1.0  # crop side relative to the default face framing
    min_face_fraction: float = 0.5  # crop squares smaller than size * this are too small
    size_smoothing: float = 0.3  # weight of the new frame in the crop size's running average
    pupils: bool = True  # draw pupils in the sketches (they are found and stored either way)
    overwrite: bool = False  # replace an existing complete dataset


@dataclass
class SourceStats:
    """What happened to one video's frames."""

    path: str
    fps: float = 0.0
    frames_read: int = 0
    kept: list[str] = field(default_factory=list)  # pair names in time order
    pairs: dict[str, int] = field(default_factory=dict)  # per split, once split
    last_square: Square | None = None  # crop of the previous sampled frame, if it was kept
    dropped: dict[str, int] = field(
        default_factory=lambda: {"no_face": 0, "several_faces": 0, "face_too_small": 0, "unreadable": 0}
    )


def prepare(
    videos: list[str],
    out_dir: str | Path,
    config: PrepareConfig = PrepareConfig(),
    analyzer: FaceAnalyzer | None = None,
    progress: Callable[[int, int | None], None] | None = None,
) -> dict:
    """Turn target videos into a dataset folder; returns the manifest it wrote.

    ``progress(frames_done, frames_total_or_None)`` is called after every sampled frame.
    """
    if not 0.0 <= config.test_fraction < 1.0:
        raise Face2FaceError(f"--test-fraction must be in [0, 1), got {config.test_fraction}")
    if config.every < 1:
        raise Face2FaceError(f"--every must be at least 1, got {config.every}")
    out = Path(out_dir)
    if (out / MANIFEST).exists() and not config.overwrite:
        raise Face2FaceError(f"{out}: already holds a dataset; choose another folder or --overwrite")
    sources = [_open(v) for v in videos]  # fail early on a bad path, before any work
    for source in sources:
        source.close()
    analyzer = analyzer or FaceAnalyzer(DetectorConfig(name=config.detector))
    _reset(out)
    staging = out / ".staging"
    for kind in ("input", "target"):
        (staging / kind).mkdir(parents=True)
    total = sum(-(-(s.frame_count or 0) // config.every) for s in sources) or None  # frames sampled
    points: dict[str, np.ndarray] = {}
    pupils: dict[str, np.ndarray] = {}
    squares: dict[str, list[float]] = {}
    stats: list[SourceStats] = []
    done = 0
    started = time.perf_counter()
    for index, video in enumerate(videos):
        s = SourceStats(path=str(Path(video).resolve()))  # export finds it from any folder
        stats.append(s)
        with _open(video) as source:
            s.fps = source.fps
            for frame_index, frame in _sampled(source, config.every, s):
                done += 1
                pair = _pair(analyzer, frame, config, s)
                if pair is not None:
                    name = f"{index:02d}_{frame_index:06d}"
                    sketch, face, crop_points, crop_pupils, square = pair
                    _write_png(staging / "input" / f"{name}.png", sketch)
                    _write_png(staging / "target" / f"{name}.png", face)
                    points[name] = crop_points
                    pupils[name] = crop_pupils
                    squares[name] = [square.cx, square.cy, square.side]
                    s.kept.append(name)
                if progress:
                    progress(done, total)
                if config.max_pairs and len(points) >= config.max_pairs:
                    break
        if not s.kept:
            _clear(out)
            with contextlib.suppress(OSError):
                out.rmdir()  # only if nothing else was in it
            raise Face2FaceError(
                f"{video}: no usable face in {s.frames_read} frames read "
                f"(dropped: {describe_dropped(s.dropped)}); is the target's face visible and large enough?"
            )
        if config.max_pairs and len(points) >= config.max_pairs:
            break
    manifest = _finish(out, staging, stats, points, pupils, squares, config, time.perf_counter() - started)
    return manifest


def sample_faces(video: str, samples: int = 8, config: PrepareConfig = PrepareConfig(),
                 analyzer: FaceAnalyzer | None = None) -> SourceStats:
    """A quick look before preparing: what ``prepare`` would keep of ``samples`` frames spread over
    ``video`` (``kept``: their frame indexes; ``dropped``: why the others would go)."""
    with _open(video) as source:
        every = max(1, (source.frame_count or samples) // samples)
        analyzer = analyzer or FaceAnalyzer(DetectorConfig(name=config.detector))
        stats = SourceStats(path=str(video), fps=source.fps)
        for index, frame in itertools.islice(_sampled(source, every, stats), samples):
            stats.last_square = None  # frames far apart: no crop carried over
            if _pair(analyzer, frame, config, stats) is not None:
                stats.kept.append(str(index))
    return stats


def describe_sample(stats: SourceStats) -> str:
    """e.g. "a usable face in 7 of 8 frames sampled (dropped: no_face 1)"."""
    return (f"a usable face in {len(stats.kept)} of {plural(stats.frames_read, 'frame')} sampled"
            + (f" (dropped: {describe_dropped(stats.dropped)})" if len(stats.kept) < stats.frames_read else ""))


def _open(video: str) -> VideoSource:
    try:
        return VideoSource(str(video))
    except Face2FaceError:
        raise
    except Exception as exc:  # OpenCV raises cv2.error on some garbage files
        raise Face2FaceError(f"{video}: not a readable video ({exc})") from None


def _reset(out: Path) -> None:
    """Clear what an earlier (possibly interrupted) run left in the output folder."""
    if out.exists() and not out.is_dir():
        raise Face2FaceError(f"{out}: exists and is not a folder")
    _clear(out)
    out.mkdir(parents=True, exist_ok=True)


def _clear(out: Path) -> None:
    """Remove what ``prepare`` (and ``face2face.train.references``, from it) writes in ``out``, and
    nothing else the folder holds."""
    (out / MANIFEST).unlink(missing_ok=True)
    (out / REFERENCES_DONE).unlink(missing_ok=True)  # first: the references' mark of completion
    (out / COVERAGE_PICTURE).unlink(missing_ok=True)
    for name in (".staging", *SPLITS, REFERENCES):
        shutil.rmtree(out / name, ignore_errors=True)


def _sampled(source: VideoSource, every: int, stats: SourceStats):
    """(frame index, frame) for every ``every``-th frame; undecodable frames are counted."""
    index, failures = -1, 0
    while True:
        index += 1
        if index % every:
            if not source.grab():
                if not _skip_broken(source, index, stats, failures):
                    return
                failures += 1
            continue
        frame = source.read()
        if frame is None:
            if not _skip_broken(source, index, stats, failures):
                return
            failures += 1
            continue
        failures = 0
        stats.frames_read += 1
        yield index, frame


def _skip_broken(source: VideoSource, index: int, stats: SourceStats, failures: int) -> bool:
    """True if a failed read is a broken frame inside the video (counted), False at its end."""
    if source.frame_count is None or index >= source.frame_count - 1:
        return False
    if failures >= MAX_CONSECUTIVE_UNREADABLE:
        return False
    stats.dropped["unreadable"] += 1
    return True


def _pair(analyzer: FaceAnalyzer, frame: np.ndarray, config: PrepareConfig, s: SourceStats):
    """(sketch, face crop, crop landmarks, crop pupils, square) for a frame with exactly one
    usable face, else None."""
    detections = analyzer.detect(frame)
    previous, s.last_square = s.last_square, None
    if not detections:
        s.dropped["no_face"] += 1
        return None
    if len(detections) > 1:
        s.dropped["several_faces"] += 1
        return None
    points = analyzer.landmarks(frame, detections[0])
    square = smooth_square(previous, face_square(points, config.context), config.size_smoothing)
    if square.side < config.size * config.min_face_fraction:
        s.dropped["face_too_small"] += 1
        return None
    s.last_square = square
    face = crop(frame, square, config.size)
    transform = square.transform(config.size)
    crop_points = apply_affine(points, transform)
    crop_pupils = apply_affine(find_pupils(frame, points), transform)
    sketch = draw_sketch(crop_points, config.size, pupils=crop_pupils if config.pupils else None)
    return sketch, face, crop_points, crop_pupils, square


def _write_png(path: Path, image: np.ndarray) -> None:
    if not cv2.imwrite(str(path), image):
        raise Face2FaceError(f"{path}: cannot write (disk full or no permission?)")


def _finish(out, staging, stats, points, pupils, squares, config, seconds) -> dict:
    """Move staged pairs into train/test by time, write landmarks, then the manifest."""
    split_of: dict[str, str] = {}
    for s in stats:
        n_test = int(round(len(s.kept) * config.test_fraction))
        for i, name in enumerate(s.kept):
            split_of[name] = "test" if i >= len(s.kept) - n_test else "train"
        s.pairs = {sp: sum(split_of[n] == sp for n in s.kept) for sp in SPLITS}
    for split in SPLITS:
        names = sorted(n for n, sp in split_of.items() if sp == split)
        for kind in ("input", "target"):
            (out / split / kind).mkdir(parents=True)
            for name in names:
                (staging / kind / f"{name}.png").rename(out / split / kind / f"{name}.png")
        landmarks = {
            "names": names,
            "points": [points[n].tolist() for n in names],  # exact float32 values
            "pupils": [[None if np.isnan(p).any() else p.tolist() for p in pupils[n]] for n in names],
            "squares": [[round(v, 3) for v in squares[n]] for n in names],
        }
        (out / split / "landmarks.json").write_text(json.dumps(landmarks))
    shutil.rmtree(staging)
    values = np.array([coverage_features(points[n], pupils[n]) for n in sorted(split_of)]).reshape(-1, len(FEATURES))
    covered = coverage(values)
    if len(values):
        cv2.imwrite(str(out / COVERAGE_PICTURE), coverage_picture(values))
    dropped = {k: sum(s.dropped[k] for s in stats) for k in stats[0].dropped}
    frames_read = sum(s.frames_read for s in stats)
    manifest = {
        "format": FORMAT,
        "version": 1,
        "size": config.size,
        "pairs": {sp: sum(v == sp for v in split_of.values()) for sp in SPLITS},
        "frames_read": frames_read,
        "dropped": dropped,
        "sources": [
            {"path": s.path, "fps": s.fps, "frames_read": s.frames_read, "pairs": s.pairs,
             "dropped": s.dropped}
            for s in stats
        ],
        "options": asdict(config),
        "coverage": covered,
        "seconds": round(seconds, 2),
        "frames_per_second": round(frames_read / max(seconds, 1e-9), 2),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_atomic(out / MANIFEST, json.dumps(manifest, indent=2).encode())
    return manifest


def describe_dataset(manifest: dict) -> str:
    """One line: the pairs of each split, the frames they came from, and what was dropped."""
    return (f"{manifest['pairs']['train']} train + {manifest['pairs']['test']} test pairs from "
            f"{plural(manifest['frames_read'], 'frame')} ({manifest['frames_per_second']} frames/s); "
            f"dropped: {describe_dropped(manifest['dropped'])}")


def read_manifest(root: str | Path) -> dict:
    """The dataset's manifest, or a one-line error when the folder is not a complete dataset
    (pointing at the dataset inside a quickstart folder given in its place)."""
    root = Path(root)
    if not root.is_dir():
        raise Face2FaceError(f"{root}: no such dataset folder (make one with `face2face prepare`)")
    path = root / MANIFEST
    if not path.is_file():
        if (root / "data" / MANIFEST).is_file():
            raise Face2FaceError(f"{root}: a quickstart folder, not a dataset; its dataset is {root / 'data'}")
        raise Face2FaceError(f"{root}: no {MANIFEST}; not a complete dataset (run `face2face prepare`)")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise Face2FaceError(f"{path}: unreadable ({exc})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("size"), int):
        raise Face2FaceError(f"{path}: not a face2face dataset manifest (no integer 'size')")
    return manifest


def dataset_features(data: str | Path) -> np.ndarray:
    """The coverage ``features`` (``face2face.coverage``) of every pair of a dataset, from the
    landmarks and pupils of its splits: ``(N, len(FEATURES))``."""
    rows = [coverage_features(p, q) for split in SPLITS if (Path(data) / split / "landmarks.json").is_file()
            for _, points, pupils in [read_landmarks(Path(data) / split)] for p, q in zip(points, pupils)]
    return np.array(rows).reshape(-1, len(FEATURES))


def read_landmarks(split_dir: str | Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(names, ``float32 (N, 68, 2)`` points, ``float32 (N, 2, 2)`` pupils with NaN where none)
    of a dataset split's ``landmarks.json``."""
    path = Path(split_dir) / "landmarks.json"
    try:
        data = json.loads(path.read_text())
        names = list(data["names"])
        points = np.asarray(data["points"], np.float32).reshape(len(names), 68, 2)
        pupils = np.full((len(names), 2, 2), np.nan, np.float32)
        for i, pair in enumerate(data.get("pupils") or []):  # datasets made before pupils have none
            for eye, p in enumerate(pair):
                if p is not None:
                    pupils[i, eye] = p
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise Face2FaceError(f"{path}: unreadable landmarks ({exc}); prepare the dataset again") from None
    return names, points, pupils


def describe_dropped(dropped: dict[str, int]) -> str:
    """e.g. "no_face 3, face_too_small 1" ("none" where nothing was dropped)."""
    return ", ".join(f"{k} {v}" for k, v in dropped.items() if v) or "none"

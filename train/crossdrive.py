"""Cross-driver evaluation: another person drives the model; does the output stay the target?

For each retargeting mode, the driver video runs through the same per-frame path as the live
loop (tracker, One Euro filter, retargeting, sketch, generator), and each output is scored:
- face rate: a face is found on the output;
- identity: dlib descriptor distance from the output to the target's photos (low is good) and
  to the driver's own face (high is good); below 0.6 reads as the same person;
- expression fidelity: mean px distance between the landmarks found on the output and the
  landmarks the sketch asked for (how faithfully the requested expression is rendered);
- shape hold: mean px distance the ``relative`` sketch was moved to stay within the target's own
  range of face shapes (how much of the driver's expression the shape limit gave up);
- gaze error: mean px distance between the pupils found on the output (inside the eye outlines
  the sketch asked for) and the pupils the driver's gaze asks for, over eyes showing both. The
  driver's gaze is followed for every model with a pupil template, so a model trained without
  pupils shows how far its eyes stray from the driver's gaze;
- steadiness: mean change of grey level (0-255) from one frame to the next inside the face, of
  the output crop and of the driver's own face crop (as the side-by-side layout shows it), and
  their ratio: flicker and jitter the driver did not make show as a ratio near or above 1;
- sharpness: the fine detail inside the output's face outline (the sketch's landmarks) over the
  mean of the target's train photos inside their own outlines (there is no photo of the frame
  the driver asks for), and the checkerboard's RMS amplitude (grey levels) beside theirs, as
  ``evaluate`` measures them (face2face.train.evaluate.fine_detail). ``evaluate``'s detail match
  (whether the output's fine detail is the real photo's, in place) is not reported here: no photo
  shows the target making the driver's expression, so there is nothing to match pixel by pixel,
  and sharpness alone cannot tell the target's detail from invented texture;
- coverage: the share of the driver's frames outside what the target video covers
  (``face2face.coverage.outside``: any feature beyond the target's range, each person from their
  own neutral), per feature, and identity and expression error over the frames inside and outside
  it; and the share of frames the shape limit moved the sketch (``relative``).
No TensorFlow here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from face2face.coverage import FEATURES, features, outside, ranges
from face2face.faces import FaceAnalyzer
from face2face.geometry import apply_affine, crop, face_square
from face2face.identity import FaceIdentity, distance
from face2face.pupils import find_pupils
from face2face.runtime.background import face_outline
from face2face.runtime.generator import Generator
from face2face.runtime.pipeline import STAGES, Puppeteer, PuppetConfig
from face2face.runtime.retarget import MODES, RetargetConfig
from face2face.shapes import DEFAULT_LIMIT
from face2face.train.evaluate import fine_detail, sharpness
from face2face.train.prepare import dataset_features, read_landmarks
from face2face.video import VideoSource


@dataclass(frozen=True)
class CrossDriveConfig:
    """What the cross-driver evaluation runs."""

    frames: int = 150  # driver frames per mode
    target_photos: int = 30  # train photos averaged into the target's identity and fine detail
    modes: tuple[str, ...] = MODES
    provider: str = "auto"  # generator engine (face2face.runtime.generator)
    precision: str = "auto"
    shape_limit: float = DEFAULT_LIMIT  # ``relative`` mode (face2face.runtime.retarget)


class Steadiness:
    """Mean frame-to-frame change of grey level inside the face over a stream of face crops."""

    def __init__(self) -> None:
        self.previous: np.ndarray | None = None
        self.changes: list[float] = []

    def add(self, image: np.ndarray | None, points: np.ndarray | None) -> None:
        """The next crop and its face landmarks (crop px); None for a frame without a face."""
        if image is None or points is None:
            self.previous = None
            return
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        if self.previous is not None:
            face = np.zeros(grey.shape, np.uint8)
            cv2.fillConvexPoly(face, cv2.convexHull(np.round(points).astype(np.int32)), 1)
            self.changes.append(float(cv2.mean(cv2.absdiff(grey, self.previous), face)[0]))
        self.previous = grey

    @property
    def value(self) -> float | None:
        """The mean change, or None before two face frames in a row."""
        return float(np.mean(self.changes)) if self.changes else None


def _mean_distance(descriptors: list[np.ndarray], reference: list[np.ndarray]) -> float | None:
    if not descriptors or not reference:
        return None
    return float(np.mean([distance(d, r) for d in descriptors for r in reference]))


def cross_drive(model: str | Path, data: str | Path, driver: str, config: CrossDriveConfig = CrossDriveConfig(),
                analyzer: FaceAnalyzer | None = None) -> dict:
    """Score each retargeting mode on a driver video; returns a JSON-ready report."""
    analyzer = analyzer or FaceAnalyzer()
    identity = FaceIdentity()
    generator = Generator(model, config.provider, config.precision, layout="frame")  # live's default
    target, target_detail = _target_reference(Path(data), identity, config.target_photos)
    target_ranges = ranges(dataset_features(Path(data)))
    with VideoSource(driver) as source:
        frames = [f for _, f in zip(range(config.frames), source)]
        fps = source.fps
    driver_faces = []
    for frame in frames[:: max(1, len(frames) // 10)]:
        faces = analyzer.analyze(frame)
        if faces:
            driver_faces.append(identity.descriptor(frame, faces[0].landmarks))
    size = generator.info.size
    report = {"model": str(model), "data": str(data), "driver": str(driver), "frames": len(frames),
              "provider": generator.provider, "precision": generator.precision,
              "driver_to_target": _mean_distance(driver_faces, target), "shape_limit": config.shape_limit,
              "target_detail": target_detail[0], "target_checkerboard": target_detail[1], "modes": {}}
    row = np.zeros(len(STAGES))
    for mode in config.modes:
        retarget = RetargetConfig(mode=mode, shape_limit=config.shape_limit)
        puppet = Puppeteer(generator, analyzer, PuppetConfig(width=size, height=size, retarget=retarget, measure_gaze=True))
        outputs, fidelity, gaze, held, limited, details, found = [], [], [], [], [], [], 0
        steady_out, steady_driver = Steadiness(), Steadiness()
        driven: list[tuple[np.ndarray, float, float]] = []  # per frame with a sketch: driver features, identity, expression error
        for index, frame in enumerate(frames):
            out = puppet.process(frame, index / fps, row)
            steady_out.add(out, puppet.points)
            if puppet.points is not None:
                held.append(puppet.retargeter.held_px)
                limited.append(puppet.retargeter.limited)
                details.append(fine_detail(out, face_outline(puppet.points)))
            steady_driver.add(*_driver_crop(frame, puppet.driver_points, size, puppet.retargeter.config.context))
            faces = analyzer.analyze(out)
            descriptor = identity.descriptor(out, faces[0].landmarks) if faces else None
            error = (float(np.linalg.norm(faces[0].landmarks - puppet.points, axis=1).mean())
                     if faces and puppet.points is not None else None)
            if puppet.points is not None:
                driver = features(puppet.driver_points, find_pupils(frame, puppet.driver_points))
                driven.append((driver, descriptor, error))
            if not faces:
                continue
            found += 1
            outputs.append(descriptor)
            if error is not None:
                fidelity.append(error)
            if puppet.pupils is not None:
                errors = np.linalg.norm(find_pupils(out, puppet.points) - puppet.pupils, axis=1)
                gaze.extend(float(e) for e in errors if np.isfinite(e))
        report["modes"][mode] = {
            "face_rate": found / max(len(frames), 1),
            "identity_to_target": _mean_distance(outputs, target),
            "identity_to_driver": _mean_distance(outputs, driver_faces),
            "expression_error_px": float(np.mean(fidelity)) if fidelity else None,
            # robust to the rare frame where the landmark predictor fails on the output itself
            "expression_error_median_px": float(np.median(fidelity)) if fidelity else None,
            "gaze_error_px": float(np.mean(gaze)) if gaze else None,
            "gaze_eyes": len(gaze),
            "shape_held_px": float(np.mean(held)) if held else None,
            "change_output": steady_out.value,
            "change_driver": steady_driver.value,
            "change_ratio": (steady_out.value / steady_driver.value
                             if steady_out.value is not None and steady_driver.value else None),
            # over the frames with a sketch: the mean of each frame's ratio to the target's detail
            "sharpness": sharpness(float(np.mean([d for d, _ in details])), target_detail[0]) if details else None,
            "checkerboard": float(np.mean([c for _, c in details])) if details else None,
            "shape_limited": float(np.mean(limited)) if limited else None,
            "coverage": _coverage_split(driven, target_ranges, target, mode),
        }
    return report


def _coverage_split(driven: list[tuple[np.ndarray, np.ndarray | None, float | None]], target_ranges: np.ndarray,
                    target: list[np.ndarray], mode: str) -> dict | None:
    """The driver's frames outside the target's coverage in retargeting ``mode`` (share, per
    feature) and identity and expression error over the frames inside and outside it."""
    if not driven:
        return None
    flags = outside(np.array([d for d, _, _ in driven]), target_ranges, mode)
    out_any = flags.any(axis=1)

    def scores(where: np.ndarray) -> dict:
        picked = [(descriptor, error) for (_, descriptor, error), w in zip(driven, where) if w and descriptor is not None]
        return {"frames": int(where.sum()),
                "identity_to_target": _mean_distance([d for d, _ in picked], target),
                "expression_error_px": float(np.mean([e for _, e in picked])) if picked else None}

    return {"outside_share": float(out_any.mean()),
            "by_feature": {name: float(flags[:, i].mean()) for i, name in enumerate(FEATURES)},
            "inside": scores(~out_any), "outside": scores(out_any)}


def _driver_crop(frame: np.ndarray, points: np.ndarray | None, size: int,
                 context: float) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The driver's face crop (``size`` px, framed like a training crop) and its landmarks in it."""
    if points is None:
        return None, None
    square = face_square(points, context)
    return crop(frame, square, size), apply_affine(points, square.transform(size))


def _target_reference(data: Path, identity: FaceIdentity, count: int) -> tuple[list[np.ndarray], tuple[float, float]]:
    """Descriptors of evenly spaced train photos, from the landmarks stored with them, and their
    mean fine detail and checkerboard inside their face outlines (``fine_detail``)."""
    names, points, _ = read_landmarks(data / "train")
    picks = np.linspace(0, len(names) - 1, min(count, len(names))).round().astype(int)
    out, details = [], []
    for i in picks:
        photo = cv2.imread(str(data / "train" / "target" / f"{names[i]}.png"))
        out.append(identity.descriptor(photo, points[i]))
        details.append(fine_detail(photo, face_outline(points[i])))
    detail, checker = np.mean(details, axis=0)
    return out, (float(detail), float(checker))


def format_cross_drive(report: dict) -> str:
    """The report as a small table."""
    fmt = lambda v, spec: "n/a" if v is None else format(v, spec)  # noqa: E731
    lines = [f"{report['model']} driven by {report['driver']} ({report['frames']} frames); "
             f"driver's own face to target: {fmt(report['driver_to_target'], '.3f')}; sharpness against the "
             f"target's train photos, whose checkerboard is {report['target_checkerboard']:.2f} grey levels RMS",
             f"{'mode':10s} {'face rate':>9s} {'id->target':>10s} {'id->driver':>10s} {'expr err px':>11s} "
             f"{'gaze err px':>11s} {'change out/driver':>17s} {'held px':>7s} {'sharpness':>9s} {'checker':>7s}"]
    for mode, m in report["modes"].items():
        lines.append(f"{mode:10s} {100 * m['face_rate']:8.1f}% {fmt(m['identity_to_target'], '10.3f')} "
                     f"{fmt(m['identity_to_driver'], '10.3f')} {fmt(m['expression_error_px'], '11.2f')} "
                     f"{fmt(m['gaze_error_px'], '11.2f')} {fmt(m['change_ratio'], '17.2f')} "
                     f"{fmt(m['shape_held_px'], '7.2f')} {fmt(m['sharpness'], '9.3f')} {fmt(m['checkerboard'], '7.2f')}")
    lines.append(f"{'coverage':10s} {'outside':>9s} {'id inside':>10s} {'id outside':>10s} {'expr inside':>11s} "
                 f"{'expr outside':>12s} {'shape-limited':>13s}  (driver frames beyond the target video's range)")
    for mode, m in report["modes"].items():
        c = m["coverage"]
        if c is None:
            continue
        widest = sorted(c["by_feature"].items(), key=lambda kv: -kv[1])[:2]
        lines.append(f"{mode:10s} {100 * c['outside_share']:8.1f}% {fmt(c['inside']['identity_to_target'], '10.3f')} "
                     f"{fmt(c['outside']['identity_to_target'], '10.3f')} {fmt(c['inside']['expression_error_px'], '11.2f')} "
                     f"{fmt(c['outside']['expression_error_px'], '12.2f')} {fmt(m['shape_limited'], '13.2f')}  "
                     + ", ".join(f"{name} {100 * share:.0f}%" for name, share in widest))
    return "\n".join(lines)

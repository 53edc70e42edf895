"""Face analysis: detection + 68 landmarks on photos, and a tracker for video streams."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import dlib
import numpy as np

from face2face.detectors import Detection, DetectorConfig, create_detector
from face2face.landmarks import (
    LandmarkPredictor,
    dlib_rect,
    dlib_square_from_box,
    dlib_square_from_landmarks,
)


@dataclass(frozen=True)
class Face:
    """A face: its box ``(x, y, w, h)``, the detector's score and 68 landmarks (pixels)."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray  # float32 (68, 2), iBUG 300-W order


class FaceAnalyzer:
    """A detector chosen by name plus dlib's 68-point predictor."""

    def __init__(
        self, detector: DetectorConfig | str = "ssd", landmark_weights: str | None = None
    ) -> None:
        self.detector = create_detector(detector)
        self.predictor = LandmarkPredictor(landmark_weights)

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Face boxes in an ``HxWx3 uint8 BGR`` image, best score first."""
        return self.detector.detect(image)

    def landmarks(self, image: np.ndarray, detection: Detection) -> np.ndarray:
        """68 landmarks for a detected face (box mapped to dlib's convention, then refined)."""
        return self.predictor.refine(image, dlib_square_from_box(detection.box, self.detector.name))

    def analyze(self, image: np.ndarray) -> list[Face]:
        """Every face in the image with its landmarks."""
        return [Face(d.box, d.score, self.landmarks(image, d)) for d in self.detect(image)]


@dataclass(frozen=True)
class TrackerConfig:
    """How the tracker trades detector runs for speed."""

    redetect_every: int = 60  # run the full detector at least every N frames
    verify_every: int = 5  # check every N frames that a face is still where the landmarks are
    max_scale_change: float = 0.25  # a larger jump in face size between frames = face lost
    min_inside: float = 0.6  # share of the face square that must stay inside the frame


class FaceTracker:
    """Follows one face through a video: detect once, then predict from the last landmarks.

    The detector runs on the first frame, when the face is lost, and every ``redetect_every``
    frames. The shape predictor always returns 68 points, even on a wall, so the track is
    checked: every frame for implausible jumps or the face leaving the frame, and every
    ``verify_every`` frames by dlib's HOG detector on a small crop around the face (~2 ms);
    when that check fails the full detector decides.
    """

    def __init__(self, analyzer: FaceAnalyzer, config: TrackerConfig = TrackerConfig()) -> None:
        self.analyzer = analyzer
        self.config = config
        self.detector_runs = 0
        self._points: np.ndarray | None = None
        self._since_detection = 0
        self._verifier = dlib.get_frontal_face_detector()

    def reset(self) -> None:
        """Forget the current face; the next frame runs the detector."""
        self._points = None

    def update(self, frame: np.ndarray) -> np.ndarray | None:
        """The tracked face's landmarks (``float32 (68, 2)``) in this frame, or None."""
        if self._points is not None and self._since_detection < self.config.redetect_every:
            previous = dlib_square_from_landmarks(self._points)
            points = self.analyzer.predictor.predict(frame, dlib_rect(previous))
            self._since_detection += 1
            due = self._since_detection % self.config.verify_every == 0
            if self._plausible(previous, points, frame.shape) and (not due or self._verified(frame, points)):
                self._points = points
                return points
        return self._detect(frame)

    def _verified(self, frame: np.ndarray, points: np.ndarray) -> bool:
        """Whether HOG sees a face in a 120 px crop around the landmarks (lenient threshold)."""
        square = dlib_square_from_landmarks(points)
        side = 1.5 * square.side
        x0, y0 = int(max(square.cx - side / 2, 0)), int(max(square.cy - side / 2, 0))
        patch = frame[y0 : int(y0 + side), x0 : int(x0 + side)]
        if patch.size == 0:
            return False
        scale = 120.0 / max(patch.shape[:2])
        small = cv2.resize(patch, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        return len(self._verifier.run(small, 0, -0.5)[0]) > 0

    def _detect(self, frame: np.ndarray) -> np.ndarray | None:
        self.detector_runs += 1
        self._since_detection = 0
        detections = self.analyzer.detect(frame)
        if not detections:
            self._points = None
            return None
        chosen = max(detections, key=lambda d: d.box[2] * d.box[3])
        if self._points is not None:  # keep following the same person if they are still there
            tracked = dlib_square_from_landmarks(self._points)
            near = [d for d in detections if abs(d.box[0] + d.box[2] / 2 - tracked.cx) < tracked.side / 2
                    and abs(d.box[1] + d.box[3] / 2 - tracked.cy) < tracked.side / 2]
            chosen = near[0] if near else chosen
        # Start again from the detection: the old track may be what failed the checks.
        self._points = self.analyzer.landmarks(frame, chosen)
        return self._points

    def _plausible(self, old, points: np.ndarray, shape: tuple[int, ...]) -> bool:
        """Whether the new points are the same face a frame later: no jump, still in the frame."""
        new = dlib_square_from_landmarks(points)
        if abs(new.side / old.side - 1.0) > self.config.max_scale_change:
            return False
        if np.hypot(new.cx - old.cx, new.cy - old.cy) > 0.5 * old.side:
            return False
        h, w = shape[:2]
        ix = max(0.0, min(new.cx + new.side / 2, w) - max(new.cx - new.side / 2, 0.0))
        iy = max(0.0, min(new.cy + new.side / 2, h) - max(new.cy - new.side / 2, 0.0))
        return ix * iy >= self.config.min_inside * new.side**2

"""`face2face record`: a target video made for training, with prompts for what it still misses.

Each frame from the camera (or a video file standing in for it) is written to the output as it
is; meanwhile the face is tracked, its coverage features measured (``face2face.coverage``) and
the next thing to record is prompted: turn the head, open the mouth wide, close the eyes. What
spoils training is warned of: too dark, blurred, the face too small, a second face. It stops when
the target covers what drivers do (no end missing, ``goal`` of the drivers' range on average),
on ``q`` in the preview, at ``seconds``, or at the end of a file; the video is then complete, and
quickstart takes it as it is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import cv2
import numpy as np

from face2face.coverage import FEATURES, coverage, describe, features
from face2face.faces import FaceAnalyzer, FaceTracker
from face2face.geometry import face_square
from face2face.pupils import find_pupils
from face2face.video import VideoSource, VideoWriter

log = logging.getLogger(__name__)

DARK = 60.0  # mean grey level inside the face square below which a frame is too dark
BLUR = 30.0  # variance of the Laplacian of the face (at 128 px) below which it is blurred
SMALL = 128  # face square side (px) below which the face is too small for a 256 px crop
FACES_EVERY = 15  # frames between counts of the faces in view (the full detector)
COVERAGE_EVERY = 15  # frames between coverage updates
MIN_SECONDS = 10.0  # never stops on coverage before this much video
# What to ask for next where an end is missing, in this order: (feature, low end?) -> prompt
PROMPTS = {
    ("mouth", False): "open the mouth wide", ("smile", False): "smile broadly", ("eyes", True): "close the eyes",
    ("yaw", True): "turn the head to your right", ("yaw", False): "turn the head to your left",
    ("pitch", True): "look up", ("pitch", False): "look down",
    ("roll", True): "lean the head to one side", ("roll", False): "lean the head to the other side",
    ("gaze_x", True): "glance to one side", ("gaze_x", False): "glance to the other side",
    ("gaze_y", True): "glance up", ("gaze_y", False): "glance down",
    ("smile", True): "purse the lips", ("eyes", False): "open the eyes wide", ("mouth", True): "close the mouth",
}


@dataclass
class RecordReport:
    """What ``record`` wrote and found."""

    path: str
    frames: int = 0
    seconds: float = 0.0
    faces: int = 0  # frames with the face tracked
    stopped_by: str = "end"  # coverage | quit | seconds | end | interrupt
    coverage: dict = field(default_factory=dict)  # ``face2face.coverage.coverage`` of the frames with a face
    warnings: dict = field(default_factory=lambda: {"no_face": 0, "dark": 0, "blurred": 0, "small": 0,
                                                    "several_faces": 0})

    def lines(self) -> list[str]:
        """The summary: what was written, why it stopped, the coverage and the warnings."""
        said = [f"{self.path}: {self.frames} frames, {self.seconds:.1f} s, the face in {self.faces}; stopped: "
                f"{self.stopped_by}", *describe(self.coverage)]
        warned = {k: v for k, v in self.warnings.items() if v}
        if warned:
            said.append("warnings (frames): " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in warned.items()))
        return said


def next_prompt(report: dict) -> str:
    """What to record next for a coverage report: the first missing end in ``PROMPTS``' order."""
    missing = {(name, end == "low") for name, f in report.get("features", {}).items() for end in f["missing"]}
    return next((prompt for key, prompt in PROMPTS.items() if key in missing), "")


def warnings_of(frame: np.ndarray, points: np.ndarray) -> list[str]:
    """What spoils this frame for training: ``dark``, ``blurred``, ``small``."""
    square = face_square(points)
    side = int(square.side)
    x0, y0 = max(int(square.cx - side / 2), 0), max(int(square.cy - side / 2), 0)
    face = cv2.cvtColor(frame[y0 : y0 + side, x0 : x0 + side], cv2.COLOR_BGR2GRAY)
    found = []
    if face.size == 0:
        return found
    if face.mean() < DARK:
        found.append("dark")
    if cv2.Laplacian(cv2.resize(face, (128, 128), interpolation=cv2.INTER_AREA), cv2.CV_64F).var() < BLUR:
        found.append("blurred")
    if side < SMALL:
        found.append("small")
    return found


def overlay(frame: np.ndarray, prompt: str, shares: dict, warned: list[str]) -> np.ndarray:
    """The preview: the frame with the prompt, a meter per feature and the frame's warnings."""
    shown = frame.copy()
    cv2.putText(shown, prompt or "covered: press q to stop", (20, 40), cv2.FONT_HERSHEY_SIMPLEX, 1.0,
                (0, 255, 255), 2, cv2.LINE_AA)
    for i, name in enumerate(FEATURES):
        y = 70 + 22 * i
        share = shares.get(name) or 0.0
        cv2.rectangle(shown, (20, y), (220, y + 14), (80, 80, 80), -1)
        cv2.rectangle(shown, (20, y), (20 + int(200 * share), y + 14), (0, 200, 0), -1)
        cv2.putText(shown, name, (230, y + 12), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    if warned:
        cv2.putText(shown, ", ".join(warned), (20, shown.shape[0] - 20), cv2.FONT_HERSHEY_SIMPLEX, 0.8,
                    (0, 0, 255), 2, cv2.LINE_AA)
    return shown


def record(source: VideoSource, path: str, analyzer: FaceAnalyzer, seconds: float = 120.0, goal: float = 0.8,
           window: bool = False) -> RecordReport:
    """Record ``source`` into ``path`` with coverage prompts (see the module); the file is complete
    on return, and removed if recording fails."""
    fps = source.fps or 30.0
    tracker = FaceTracker(analyzer)
    report = RecordReport(path)
    values: list[np.ndarray] = []
    prompt, shares = "", {}
    with VideoWriter(path, source.width, source.height, fps) as writer:
        try:
            for frame in source:
                writer.write(frame)
                report.frames += 1
                points = tracker.update(frame)
                warned = []
                if points is None:
                    warned.append("no_face")
                else:
                    report.faces += 1
                    values.append(features(points, find_pupils(frame, points)))
                    warned += warnings_of(frame, points)
                if report.frames % FACES_EVERY == 1 and len(analyzer.detect(frame)) > 1:
                    warned.append("several_faces")
                for kind in warned:
                    report.warnings[kind] += 1
                if values and report.frames % COVERAGE_EVERY == 0:
                    report.coverage = coverage(np.array(values))
                    prompt = next_prompt(report.coverage)
                    shares = {k: f["covered"] for k, f in report.coverage["features"].items()}
                    reached = np.mean([s for s in shares.values() if s is not None]) >= goal
                    if reached and not report.coverage["missing"] and report.frames / fps >= MIN_SECONDS:
                        report.stopped_by = "coverage"
                        break
                if window:
                    cv2.imshow("face2face record", overlay(frame, prompt, shares, warned))
                    if cv2.waitKey(1) & 0xFF == ord("q"):
                        report.stopped_by = "quit"
                        break
                if report.frames / fps >= seconds:
                    report.stopped_by = "seconds"
                    break
        except KeyboardInterrupt:
            report.stopped_by = "interrupt"  # what was recorded is kept: a shorter video is still one
    if window:
        cv2.destroyAllWindows()
    report.coverage = coverage(np.array(values).reshape(-1, len(FEATURES)))
    report.seconds = round(report.frames / fps, 1)
    return report

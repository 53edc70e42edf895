"""What a target video covers of what drivers do: head pose, mouth, smile, eyes and gaze, measured
from the 68 landmarks (and pupils) every frame already has, against the range the shared driver
clips span (``DRIVERS``; ``scripts/driver_ranges.py`` measures it again).

Features, each scale-free (in eye distances where a length):
- ``yaw``: the nose tip's place between the jaw's ends, -1 (at the left end in the image) to 1;
- ``pitch``: the nose tip's height between the eyes' line and the chin, as a share of it;
- ``roll``: the eyes' line against the horizontal, degrees;
- ``mouth``: the inner lips' gap; ``smile``: the mouth's width;
- ``eyes``: the mean of both eyes' aspect ratios (height over width; closed near 0.1);
- ``gaze_x``, ``gaze_y``: both pupils' mean place in their eyes' frames (``face2face.pupils``).
All but ``mouth`` are taken from the person's own median (their neutral: faces differ, a wide mouth
for one is a smile for another; ``live``'s relative mode moves the target by the driver's change
from their neutral too). A target covers a feature's range to the extent its frames (2nd to 98th
percentile) overlap the drivers' (5th to 95th); an end it misses by more than ``SHORT`` of the
drivers' span is named, with what to record.
"""

from __future__ import annotations

import math
import warnings

import cv2
import numpy as np

from face2face.pupils import to_eye_coordinates

FEATURES = ("yaw", "pitch", "roll", "mouth", "smile", "eyes", "gaze_x", "gaze_y")
ABSOLUTE = ("mouth",)  # the others are measured from the person's median (``from_neutral``)
LEVELLED = ("roll",)  # what the relative and aligned modes take out of the driver's face (``counted``)
# The drivers' 5th-95th percentiles, each driver from their own neutral, pooled over lp_d3, lp_d12,
# lp_d18, tpsmm_driving and vr_4 (1,121 frames, 913 with pupils; ``python scripts/driver_ranges.py``).
DRIVERS = {
    "yaw": (-0.265, 0.275), "pitch": (-0.076, 0.073), "roll": (-5.78, 8.42), "mouth": (-0.01, 0.433),
    "smile": (-0.124, 0.144), "eyes": (-0.108, 0.163), "gaze_x": (-0.148, 0.084), "gaze_y": (-0.017, 0.028),
}
SPAN = np.array([DRIVERS[name][1] - DRIVERS[name][0] for name in FEATURES])  # the drivers' span per feature
IS_ABSOLUTE = np.array([name in ABSOLUTE for name in FEATURES])
SHORT = 0.25  # a target whose range stops short of the drivers' by this share of their span misses that end
TARGET_PERCENTILES = (2.0, 98.0)  # a target's range: a few odd frames do not make it
MARGIN = 0.1  # a driver's frame leaves the target's range when beyond it by this share of the drivers' span
# What to record for an end that is missing: (feature, low end?) -> advice
ADVICE = {
    ("yaw", True): "no frame with the head turned to one side: turn the head slowly left and right",
    ("yaw", False): "no frame with the head turned to the other side: turn the head slowly left and right",
    ("pitch", True): "no frame looking up: tilt the head up and down for a few seconds",
    ("pitch", False): "no frame looking down: tilt the head up and down for a few seconds",
    ("roll", True): "the head never leans one way: lean it to each shoulder",
    ("roll", False): "the head never leans the other way: lean it to each shoulder",
    ("mouth", False): "no frame with the mouth wide open: record 10 s of talking and laughing",
    ("mouth", True): "the mouth is never closed: record a few seconds with the lips together",
    ("smile", False): "no broad smile: smile widely, with teeth, for a few seconds",
    ("smile", True): "the lips are never pursed or narrow: pout or say 'oo' for a moment",
    ("eyes", True): "no frame with the eyes closed: close them for a second or two, and blink",
    ("eyes", False): "the eyes are never wide open: raise the brows, look surprised",
    ("gaze_x", True): "the eyes never look to one side: look left and right without turning the head",
    ("gaze_x", False): "the eyes never look to the other side: look left and right without turning the head",
    ("gaze_y", True): "the eyes never look up: look up and down without moving the head",
    ("gaze_y", False): "the eyes never look down: look up and down without moving the head",
}


def features(points: np.ndarray, pupils: np.ndarray | None = None) -> np.ndarray:
    """``float64 (len(FEATURES),)`` for one face's 68 landmarks (any pixel scale) and its pupils
    (``(2, 2)``, NaN where none; gaze is NaN without them)."""
    points = np.asarray(points, np.float64)
    left, right = points[36:42].mean(axis=0), points[42:48].mean(axis=0)
    dx, dy = right - left
    roll = math.degrees(math.atan2(dy, dx))
    distance = math.hypot(dx, dy)
    c, s = dx / distance, dy / distance
    level = (points - (left + right) / 2) @ np.array([[c, -s], [s, c]]) / distance  # eyes level, eye distance 1
    jaw_left, jaw_right, nose, chin = level[0, 0], level[16, 0], level[30], level[8, 1]
    yaw = 2.0 * (nose[0] - jaw_left) / max(jaw_right - jaw_left, 1e-6) - 1.0
    pitch = nose[1] / max(chin, 1e-6)
    mouth = float(np.mean(level[[66, 65, 67], 1] - level[[62, 63, 61], 1]))
    smile = float(np.linalg.norm(level[54] - level[48]))
    eyes = np.mean([_aspect(level[36:42]), _aspect(level[42:48])])
    gaze = (np.full(2, np.nan) if pupils is None or np.isnan(pupils).all()
            else np.nanmean(to_eye_coordinates(np.asarray(pupils, np.float32), points.astype(np.float32)), axis=0))
    return np.array([yaw, pitch, roll, mouth, smile, eyes, *gaze], np.float64)


def _aspect(eye: np.ndarray) -> float:
    """An eye's height over its width (six points, iBUG order)."""
    height = np.linalg.norm(eye[1] - eye[5]) + np.linalg.norm(eye[2] - eye[4])
    return float(height / (2.0 * max(np.linalg.norm(eye[3] - eye[0]), 1e-6)))


def from_neutral(values: np.ndarray) -> np.ndarray:
    """One person's frames' ``features`` (``(N, len(FEATURES))``) with each feature but the
    ``ABSOLUTE`` ones taken from the person's median."""
    out = np.array(values, np.float64)
    for i in np.flatnonzero(~IS_ABSOLUTE):
        finite = np.isfinite(out[:, i])
        if finite.any():
            out[:, i] -= np.median(out[finite, i])
    return out


def coverage(values: np.ndarray) -> dict:
    """A target's coverage from its frames' ``features`` (``(N, len(FEATURES))``, as measured):
    per feature its range (``from_neutral``), the drivers', the share of theirs it covers and the
    ends it misses; ``missing``: one line of advice per end missed. JSON-ready."""
    report, missing = {}, []
    for name, (low, high) in zip(FEATURES, ranges(values)):
        lo, hi = DRIVERS[name]
        if np.isnan(low):
            report[name] = {"target": None, "drivers": [lo, hi], "covered": None, "missing": []}
            continue
        low, high = float(low), float(high)
        covered = max(0.0, min(high, hi) - max(low, lo)) / (hi - lo)
        ends = [end for end, short in (("low", low - lo), ("high", hi - high)) if short > SHORT * (hi - lo)]
        missing += [ADVICE[name, end == "low"] for end in ends]
        report[name] = {"target": [round(low, 3), round(high, 3)], "drivers": [lo, hi],
                        "covered": round(covered, 2), "missing": ends}
    return {"features": report, "missing": missing}


def ranges(values: np.ndarray) -> np.ndarray:
    """``(len(FEATURES), 2)``: a person's range of each feature (``from_neutral``; the 2nd to 98th
    percentile of their frames), NaN where no frame has it."""
    values = from_neutral(values)
    out = np.full((len(FEATURES), 2), np.nan)
    for i in range(len(FEATURES)):
        column = values[:, i][np.isfinite(values[:, i])]
        if len(column):
            out[i] = np.percentile(column, TARGET_PERCENTILES)
    return out


def outside(driver: np.ndarray, target: np.ndarray, mode: str = "absolute") -> np.ndarray:
    """``bool (N, len(FEATURES))``: where a driver's frames (``features``, as measured, the driver's
    neutral their median) leave the target's ``ranges`` (``beyond``) in a way retargeting ``mode``
    passes on to the sketch (``counted``)."""
    return beyond(from_neutral(driver), target) & counted(mode)


def counted(mode: str) -> np.ndarray:
    """``bool (len(FEATURES),)``: the features a retargeting mode passes on to the sketch: the
    ``relative`` and ``aligned`` modes level the driver's face first, so its roll never reaches
    the generator (it moves no landmark of the target's)."""
    return np.array([not (name in LEVELLED and mode in ("relative", "aligned")) for name in FEATURES])


def beyond(deviations: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Where ``deviations`` (from the driver's neutral) leave the target's ``ranges`` by more than
    ``MARGIN`` of the drivers' span (NaN on either side: not outside)."""
    with np.errstate(invalid="ignore"):
        return (deviations < target[:, 0] - MARGIN * SPAN) | (deviations > target[:, 1] + MARGIN * SPAN)


class CoverageWatch:
    """Counts, frame by frame, where a driver leaves the target's ranges (``outside``), the driver's
    neutral being the median of their last ``NEUTRAL_FRAMES`` frames (renewed every ``RENEW``)."""

    NEUTRAL_FRAMES = 300
    RENEW = 30

    def __init__(self, target: list, mode: str = "absolute") -> None:
        self.set_target(target)
        self._counted = counted(mode)
        self._recent = np.full((self.NEUTRAL_FRAMES, len(FEATURES)), np.nan)
        self._neutral = np.zeros(len(FEATURES))
        self.frames = 0
        self.last = np.zeros(len(FEATURES), bool)  # the last frame's flags
        self.outside = np.zeros(len(FEATURES), np.int64)  # frames beyond the target's range, per feature
        self.outside_any = 0
        self.shape_limited = 0  # frames whose sketch the shape limit moved

    def set_target(self, target: list) -> None:
        """The target's ranges as a model's sidecar holds them (``[lo, hi]`` or None per feature)."""
        self.target = np.array([[np.nan, np.nan] if r is None else r for r in target], np.float64)

    def add(self, points: np.ndarray, pupils: np.ndarray | None, shape_limited: bool) -> np.ndarray:
        """One driver frame's landmarks and pupils (px); returns its flags per feature."""
        values = features(points, pupils)
        self._recent[self.frames % self.NEUTRAL_FRAMES] = values
        if self.frames % self.RENEW == 0 or self.frames < self.RENEW:
            with warnings.catch_warnings():  # a feature no frame has yet (gaze without pupils) stays NaN
                warnings.simplefilter("ignore", RuntimeWarning)
                neutral = np.nanmedian(self._recent, axis=0)
            self._neutral = np.where(np.isfinite(neutral) & ~IS_ABSOLUTE, neutral, 0.0)
        flags = self.last = beyond(values - self._neutral, self.target) & self._counted
        self.frames += 1
        self.outside += flags
        self.outside_any += bool(flags.any())
        self.shape_limited += bool(shape_limited)
        return flags

    def status(self) -> str:
        """One short line for a preview: what the last frame left, and the share of frames so far."""
        share = 100 * self.outside_any / max(self.frames, 1)
        left = [name for name, flag in zip(FEATURES, self.last) if flag]
        return (f"outside the target's video: {', '.join(left)}" if left else "inside the target's video") + \
            f" ({share:.0f}% of frames outside)"

    def summary(self) -> str:
        """One line: the share of frames outside the target's coverage, the features most left, and
        the shape limit's share."""
        if not self.frames:
            return ""
        widest = sorted(zip(FEATURES, self.outside), key=lambda kv: -kv[1])[:3]
        features_left = ", ".join(f"{name} {100 * n / self.frames:.0f}%" for name, n in widest if n)
        return (f"driver outside the target video's coverage in {100 * self.outside_any / self.frames:.0f}% of "
                f"{self.frames} frames with a face" + (f" ({features_left})" if features_left else "")
                + f"; the shape limit moved {100 * self.shape_limited / self.frames:.0f}% of sketches")


def describe(report: dict) -> list[str]:
    """A line on what the target covers, then one line of advice per end it misses."""
    shares = {name: f["covered"] for name, f in report["features"].items() if f["covered"] is not None}
    if not shares:
        return []
    narrowest = sorted(shares, key=shares.get)[:3]
    lines = [f"coverage: {100 * np.mean(list(shares.values())):.0f}% of the drivers' range on average; narrowest "
             + ", ".join(f"{name} {100 * shares[name]:.0f}%" for name in narrowest)]
    return lines + [f"  missing: {advice}" for advice in report["missing"]]


def table(report: dict) -> str:
    """The coverage as a few lines: feature, the target's range against the drivers', covered share."""
    lines = [f"{'feature':8s} {'target':>15s} {'drivers':>15s} covered"]
    for name, f in report["features"].items():
        target = "n/a" if f["target"] is None else f"{f['target'][0]:.2f} .. {f['target'][1]:.2f}"
        covered = "n/a" if f["covered"] is None else f"{100 * f['covered']:.0f}%"
        lines.append(f"{name:8s} {target:>15s} {f['drivers'][0]:>6.2f} .. {f['drivers'][1]:<5.2f} {covered:>6s}")
    return "\n".join(lines)


def picture(values: np.ndarray, width: int = 640) -> np.ndarray:
    """One row per feature: the drivers' range as a grey band, each target frame (``features``, as
    measured) as a tick (BGR uint8)."""
    values = from_neutral(values)
    row, label, pad = 28, 80, 10
    image = np.full((row * len(FEATURES) + pad, width, 3), 255, np.uint8)
    span = width - label - 2 * pad
    for i, name in enumerate(FEATURES):
        lo, hi = DRIVERS[name]
        left, right = lo - (hi - lo) * 0.5, hi + (hi - lo) * 0.5  # the drivers' range in the middle half
        x = lambda v: int(label + pad + span * (v - left) / (right - left))  # noqa: E731
        top = pad + i * row
        cv2.putText(image, name, (pad, top + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.rectangle(image, (x(lo), top + 4), (x(hi), top + row - 6), (210, 210, 210), -1)
        for v in values[:, i][np.isfinite(values[:, i])]:
            xv = min(max(x(v), label + pad), label + pad + span)
            cv2.line(image, (xv, top + 6), (xv, top + row - 8), (200, 90, 0), 1)
    return image

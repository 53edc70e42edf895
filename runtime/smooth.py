"""One Euro filter (Casiez et al. 2012) on landmark arrays: steady when still, quick when moving."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OneEuroConfig:
    """Filter parameters; lower ``min_cutoff`` = less jitter, higher ``beta`` = less lag."""

    min_cutoff: float = 1.0  # Hz: cutoff at rest
    beta: float = 5.0  # cutoff growth (Hz) per face size per second of speed
    d_cutoff: float = 1.0  # Hz: cutoff for the speed estimate


def _alpha(cutoff: np.ndarray | float, dt: float):
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Filters ``float32 (N, 2)`` points over time; speeds are measured in face sizes per second.

    Normalising by the face size makes one set of parameters work for near and far faces.
    """

    def __init__(self, config: OneEuroConfig = OneEuroConfig()) -> None:
        self.config = config
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t = 0.0

    @property
    def value(self) -> np.ndarray | None:
        """The last filtered points (None before the first or after a reset)."""
        return self._x

    def reset(self) -> None:
        """Forget the past (e.g. after the face was lost)."""
        self._x = None

    def __call__(self, points: np.ndarray, t: float, scale: float) -> np.ndarray:
        """The filtered points at time ``t`` (seconds); ``scale`` is the face size in px."""
        if self._x is None or t <= self._t:
            self._x = points.astype(np.float32, copy=True)
            self._dx = np.zeros_like(self._x)
            self._t = t
            return self._x
        c = self.config
        dt = t - self._t
        self._t = t
        dx = (points - self._x) / (dt * scale)
        self._dx += _alpha(c.d_cutoff, dt) * (dx - self._dx)
        cutoff = c.min_cutoff + c.beta * np.abs(self._dx)
        self._x += _alpha(cutoff, dt) * (points - self._x)
        return self._x

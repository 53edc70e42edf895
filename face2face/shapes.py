"""The target's own range of face shapes, and sketches held inside it.

A generator renders the shapes it was trained on. A driver who turns or tilts their head, or
opens their mouth, further than the target ever did asks for a sketch the model never saw, and
it answers with a doubled, smeared face. ``ShapeSpace`` is fitted at export on the train split's
landmarks, each aligned on the template by its rigid points (as ``relative`` retargeting aligns
the driver): the principal components of the 136 coordinates that explain ``VARIANCE`` of the
target's shapes. ``limit`` projects a sketch's landmarks onto them and holds each component
within some standard deviations of the target's mean, so the sketch becomes the nearest shape
the model learned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

VARIANCE = 0.99  # share of the target's shape variance the components keep
DEFAULT_LIMIT = 3.0  # standard deviations each component may reach at run time


@dataclass(frozen=True)
class ShapeSpace:
    """Mean shape ``float32 (68, 2)``, orthonormal components ``float32 (k, 136)`` and their
    standard deviations ``float32 (k,)``, all in the template's crop pixels."""

    mean: np.ndarray
    components: np.ndarray
    deviations: np.ndarray

    @classmethod
    def fit(cls, aligned: np.ndarray, variance: float = VARIANCE) -> ShapeSpace:
        """Principal components of ``aligned`` landmarks ``(N, 68, 2)`` that explain ``variance``."""
        flat = aligned.reshape(len(aligned), 136).astype(np.float64)
        mean = flat.mean(axis=0)
        _, singular, vt = np.linalg.svd(flat - mean, full_matrices=False)
        var = singular**2 / max(len(flat) - 1, 1)
        keep = int(np.searchsorted(np.cumsum(var) / max(var.sum(), 1e-12), variance) + 1)
        keep = min(keep, int((var > 1e-12).sum()))
        return cls(mean.reshape(68, 2).astype(np.float32), vt[:keep].astype(np.float32),
                   np.sqrt(var[:keep]).astype(np.float32))

    def limit(self, points: np.ndarray, sigmas: float) -> np.ndarray:
        """``points`` ``(68, 2)`` projected onto the components, each held within ``sigmas``
        standard deviations of the mean."""
        weights = self.components @ (points.reshape(136) - self.mean.reshape(136))
        weights = np.clip(weights, -sigmas * self.deviations, sigmas * self.deviations)
        return (self.mean + (weights @ self.components).reshape(68, 2)).astype(np.float32)

    def to_json(self) -> dict:
        """Plain lists for the sidecar."""
        return {"mean": np.round(self.mean, 3).tolist(), "components": np.round(self.components, 6).tolist(),
                "deviations": np.round(self.deviations, 4).tolist()}

    @classmethod
    def from_json(cls, data: dict) -> ShapeSpace:
        """The inverse of ``to_json``; ``ValueError`` if the arrays are missing or do not fit together."""
        problem = "shape_space needs mean 68x2, components kx136 and k positive deviations, all finite"
        try:
            mean, components, deviations = (np.asarray(data[k], np.float32) for k in ("mean", "components", "deviations"))
        except (KeyError, TypeError, ValueError):
            raise ValueError(problem) from None
        if (mean.shape != (68, 2) or components.ndim != 2 or components.shape[1] != 136 or not len(components)
                or deviations.shape != (len(components),) or (deviations <= 0).any()
                or not all(np.isfinite(a).all() for a in (mean, components, deviations))):
            raise ValueError(problem)
        return cls(mean, components, deviations)

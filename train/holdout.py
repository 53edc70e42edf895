"""The weights a run hands over: scored on train pairs held back from training, the best kept.

The last ``holdout`` share of the train split (by time, so they are not neighbours of the frames
trained on) is never trained on. At every checkpoint the generator, as it would be exported
(batch-norm statistics of the train split, dropout off), is scored on them by face L1: the mean
absolute error inside the face's outline, the region the product shows. The weights handed over
are the latest whose score is within ``TOLERANCE`` of the lowest (a few dozen neighbouring frames
score checkpoints of the same stretch of training up to 10-20% apart, and later weights have
trained longer); they go to ``RUN/best`` and every score to ``RUN/scores.json``; ``export`` takes
them. So the end of a run (the settling shock, a bad last stretch) cannot spoil what is handed
over, and the test split stays untouched for ``evaluate``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from face2face.errors import Face2FaceError
from face2face.files import write_atomic
from face2face.runtime.background import face_outline
from face2face.train.pairs import Split, read_inputs
from face2face.train.evaluate import outline_mask
from face2face.train.options import SCORES
from face2face.train.prepare import read_landmarks


TOLERANCE = 0.1  # a score this much above the lowest still counts as the best (docs/training.md)


def split_holdout(split: Split, fraction: float) -> tuple[Split, Split | None]:
    """(pairs to train on, the last ``fraction`` of them held back), at least one of each where
    ``fraction`` > 0 and the split has two pairs or more."""
    count = int(round(len(split.names) * fraction))
    if fraction > 0 and len(split.names) >= 2:
        count = min(max(count, 1), len(split.names) - 1)
    if count == 0:
        return split, None
    return replace(split, names=split.names[:-count]), replace(split, names=split.names[-count:])


@dataclass(frozen=True)
class Scores:
    """``RUN/scores.json``: face L1 on the held-back pairs at each scored step (lower is better)."""

    held_out: list[str]
    scores: dict[int, float]

    @property
    def best(self) -> int | None:
        """The step handed over: the latest whose score is within ``TOLERANCE`` of the lowest."""
        if not self.scores:
            return None
        limit = (1.0 + TOLERANCE) * min(self.scores.values())
        return max(step for step, value in self.scores.items() if value <= limit)

    def write(self, run: Path) -> None:
        doc = {"metric": "face_l1", "held_out": self.held_out, "best_step": self.best,
               "scores": {str(k): v for k, v in sorted(self.scores.items())}}
        write_atomic(run / SCORES, json.dumps(doc, indent=2).encode())


def read_scores(run: str | Path) -> Scores | None:
    """The run's held-out scores, or None for a run without them (holdout off, or made before it)."""
    path = Path(run) / SCORES
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
        return Scores(list(doc["held_out"]), {int(k): float(v) for k, v in doc["scores"].items()})
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise Face2FaceError(f"{path}: unreadable ({exc}); delete it to export the last weights") from None


def face_pairs(split: Split) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(generator inputs in [-1, 1] (``read_inputs``), photos in [0, 1], masks inside each face's
    outline) of ``split``'s pairs: ``float32 (N, size, size, C)``, ``(N, size, size, 3)`` RGB and
    ``bool (N, size, size)``."""
    names, points, _ = read_landmarks(split.root / split.name)
    where = {n: i for i, n in enumerate(names)}
    photos, masks = [], []
    for name, photo_path in zip(split.names, split.targets()):
        if name not in where:
            raise Face2FaceError(f"{split.root / split.name}/landmarks.json: no landmarks for pair {name}")
        photo = cv2.imread(photo_path, cv2.IMREAD_COLOR)
        photos.append(cv2.cvtColor(photo, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0)
        masks.append(outline_mask(face_outline(points[where[name]]), (split.size, split.size)))
    return read_inputs(split), np.stack(photos), np.stack(masks)


class HoldoutScorer:
    """Face L1 of a generator on the held-back pairs, which are read once."""

    def __init__(self, held: Split) -> None:
        self.names = list(held.names)
        self._sketches, self._photos, self._masks = face_pairs(held)

    def score(self, generator) -> float:
        """Mean face L1 (pixels in [0, 1]) of ``generator(sketch, training=False)``."""
        errors = []
        for sketch, photo, mask in zip(self._sketches, self._photos, self._masks):
            output = (np.asarray(generator(sketch[None], training=False), np.float32)[0] + 1.0) / 2.0
            errors.append(float(np.abs(np.clip(output, 0.0, 1.0) - photo)[mask].mean()))
        return float(np.mean(errors))

"""The target's own pixels for the generator: train photos of the target, the ones nearest in face
shape warped onto the sketch's landmarks and blended, one function for training and live use.

A ``ReferenceBank`` holds ``BANK_SIZE`` face crops of the target with their 68 landmarks. For a
sketch's landmarks, ``ReferenceBank.build`` takes the ``NEAREST`` (two) crops whose shapes (68
points, similarity-aligned to the bank's template) are closest and blends them with weights that
fall to zero at the next-nearest crop's distance, so the reference changes continuously as the
face moves: no popping when the nearest crop changes. The blend is made in the heavier crop's
geometry (the other crop warped onto its landmarks once while the pair stays, bicubic) and warped
piecewise-affinely onto the sketch's landmarks (one Delaunay triangulation of the template's points
and the crop's border; a map per frame, ``cv2.remap``): one warp a frame in a stream, the same
geometry as warping each crop on its own. The generator then copies what is still true of those
crops (skin, the frames of glasses, the iris) and redraws what is not (an open mouth over a closed
one, a blink).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from face2face.errors import Face2FaceError
from face2face.geometry import similarity_fit

NEAREST = 2  # crops blended per frame (``ReferenceBank.build`` blends two at most)
BANK_SIZE = 96  # crops a bank keeps (farthest-point samples of the train frames' shapes; docs/experiments.md)
EXCLUDE_SECONDS = 1.0  # a training pair never takes a crop from within this much video of its own frame
BANK_FILE = "bank.json"
MAP_STEP = 2  # the warp's maps are exact every this many pixels (``PiecewiseAffine``)
_BORDER_STEPS = 4  # border points per side of the crop, corners included once
STEADY_SECONDS = 0.15  # time constant of the blend's weights in a stream (``SteadyBlend``; docs/experiments.md)
RESTART_SECONDS = 0.5  # a longer gap between frames restarts them
ONTO_INTERPOLATION = cv2.INTER_CUBIC  # the second crop's warp onto the first's landmarks (resampled twice)


def normalised_shapes(points: np.ndarray, template: np.ndarray) -> np.ndarray:
    """``(N, 136)``: each 68-point set moved by its best similarity onto ``template``, flattened."""
    shapes = np.empty((len(points), 136), np.float32)
    for i, p in enumerate(points):
        m = similarity_fit(p, template)
        shapes[i] = (p @ m[:, :2].T + m[:, 2]).reshape(-1)
    return shapes


def triangulation(template: np.ndarray, size: int) -> np.ndarray:
    """``int32 (T, 3)``: Delaunay triangles over the template's 68 points and the crop's border points
    (indices into ``with_border(points, size)``)."""
    points = with_border(template, size)
    subdiv = cv2.Subdiv2D((-2, -2, size + 4, size + 4))
    for x, y in points:
        subdiv.insert((float(x), float(y)))
    triangles = []
    lookup = {(round(float(x), 3), round(float(y), 3)): i for i, (x, y) in enumerate(points)}
    for t in subdiv.getTriangleList().reshape(-1, 3, 2):
        keys = [(round(float(x), 3), round(float(y), 3)) for x, y in t]
        if all(k in lookup for k in keys):
            triangles.append([lookup[k] for k in keys])
    return np.asarray(triangles, np.int32)


def with_border(points: np.ndarray, size: int) -> np.ndarray:
    """``float64 (68 + B, 2)``: the landmarks, then fixed points along the crop's border (they map to themselves)."""
    return np.concatenate([np.asarray(points, np.float64), _border(size)])


@functools.lru_cache(maxsize=8)
def _border(size: int) -> np.ndarray:
    """``float64 (B, 2)``: the crop's fixed border points, clockwise from its top-left corner."""
    edge = np.linspace(-1.0, size, _BORDER_STEPS + 1)[:-1]
    far = float(size)
    border = np.concatenate([
        np.stack([edge, np.full_like(edge, -1.0)], 1), np.stack([np.full_like(edge, far), edge], 1),
        np.stack([far - 1.0 - edge, np.full_like(edge, far)], 1), np.stack([np.full_like(edge, -1.0), far - 1.0 - edge], 1),
    ])
    border.flags.writeable = False
    return border


class PiecewiseAffine:
    """Warps images onto destination landmarks, triangle by triangle, for one crop size.

    The maps are computed exactly on a grid of every ``MAP_STEP``-th pixel (one more row and
    column of it beyond each edge) and interpolated linearly in between: the warp is linear inside
    each triangle, so only pixels within a step of a triangle's edge move, by a fraction of a
    pixel; a quarter of the work.
    """

    def __init__(self, triangles: np.ndarray, size: int) -> None:
        self.triangles, self.size = triangles, size
        coarse = -(-size // MAP_STEP) + 2
        # grid node c sits at full-resolution position STEP * (c - 1) + (STEP - 1) / 2
        along = MAP_STEP * (np.arange(coarse, dtype=np.float32) - 1) + (MAP_STEP - 1) / 2
        self._xs, self._ys = np.meshgrid(along, along)
        # ... so full-resolution pixel x reads the grid at (x - (STEP - 1) / 2) / STEP + 1, which is
        # where cv2.resize's bilinear STEP-fold enlargement puts pixel x + STEP
        self._enlarged = np.empty((MAP_STEP * coarse, MAP_STEP * coarse, 2), np.float32)
        self._ids = np.empty((coarse, coarse), np.int32)
        self._coeff = np.empty((coarse, coarse, 6), np.float32)
        self._map = np.empty((coarse, coarse, 2), np.float32)
        self._full = self._enlarged[MAP_STEP:MAP_STEP + size, MAP_STEP:MAP_STEP + size]  # a view: no copy
        self._identity = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
        self._table = np.zeros((len(triangles) + 1, 3, 2))  # per triangle [x, y, 1] -> source point
        self._table[-1] = self._identity  # for any pixel no triangle covers
        self._table32 = np.empty((len(triangles) + 1, 6), np.float32)
        self._next, self._after = triangles[:, [1, 2, 0]], triangles[:, [2, 0, 1]]  # each corner's next two

    def triangles_of(self, points: np.ndarray) -> np.ndarray:
        """``(T, 3, 2)``: the triangles' corners for landmarks ``points`` (what ``warp`` reads an image by)."""
        return with_border(points, self.size)[self.triangles]

    def set_destination(self, points: np.ndarray) -> None:
        """Rasterise the triangles at the destination landmarks (which triangle holds each pixel)."""
        dst = with_border(points, self.size)
        self._ids.fill(len(self.triangles))  # the identity row for any pixel no triangle covers
        coarse = np.round(((dst - (MAP_STEP - 1) / 2) / MAP_STEP + 1) * 16).astype(np.int32)
        for t, corners in enumerate(coarse[self.triangles]):  # one call per triangle: its id
            cv2.fillConvexPoly(self._ids, corners, t, cv2.LINE_8, 4)
        # the inverse of each triangle's rows (x, y, 1) in closed form, its adjugate over its determinant:
        # column i is the cross product of rows i + 1 and i + 2
        (x1, y1), (x2, y2) = dst[self._next].transpose(2, 0, 1), dst[self._after].transpose(2, 0, 1)
        adjugate = np.stack([y1 - y2, x2 - x1, x1 * y2 - x2 * y1], axis=1)
        det = adjugate[:, 2].sum(axis=1)
        ok = np.abs(det) > 1e-6
        self._inverse = adjugate * (ok / np.where(ok, det, 1.0))[:, None, None]
        self._bad = None if ok.all() else ~ok  # degenerate triangles (a closed mouth's inner lips): a shift
        self._centres = None if self._bad is None else dst[self.triangles].mean(axis=1)

    def maps(self, source: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(map_x, map_y) for ``cv2.remap``: where each destination pixel reads an image whose
        triangles are ``source`` (``triangles_of``)."""
        coeff = self._table[:-1]
        np.matmul(self._inverse, source, out=coeff)  # [x, y, 1] @ coeff = source point
        bad = self._bad
        if bad is not None:
            coeff[bad] = self._identity
            coeff[bad, 2] = (source.mean(axis=1) - self._centres)[bad]
        self._table32[:] = self._table.reshape(-1, 6)
        np.take(self._table32, self._ids, axis=0, out=self._coeff)
        c = self._coeff
        for axis in range(2):
            out = self._map[..., axis]
            out[...] = c[..., axis] * self._xs
            out += c[..., 2 + axis] * self._ys
            out += c[..., 4 + axis]
        cv2.resize(self._map, self._enlarged.shape[1::-1], dst=self._enlarged, interpolation=cv2.INTER_LINEAR)
        return self._full[..., 0], self._full[..., 1]

    def warp(self, image: np.ndarray, source: np.ndarray, out: np.ndarray | None = None,
             interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
        """``image`` (its triangles ``source``: ``triangles_of`` its landmarks) warped onto the
        destination landmarks."""
        self.maps(source)
        return cv2.remap(image, self._full, None, interpolation, dst=out, borderMode=cv2.BORDER_REPLICATE)


@dataclass
class ReferenceBank:
    """Face crops of the target (``uint8 (K, S, S, 3)`` BGR) with their landmarks (``float32 (K, 68, 2)``,
    crop px), and what each came from (``names``: dataset pair names)."""

    images: np.ndarray
    points: np.ndarray
    names: list[str]
    template: np.ndarray  # (68, 2): the shapes are compared after a similarity fit onto it
    shapes: np.ndarray = field(init=False)
    warper: PiecewiseAffine = field(init=False)

    def __post_init__(self) -> None:
        self.size = self.images.shape[1]
        self.shapes = normalised_shapes(self.points, self.template)
        self.warper = PiecewiseAffine(triangulation(self.template, self.size), self.size)
        self._sources = [self.warper.triangles_of(p) for p in self.points]
        self._other = np.empty((self.size, self.size, 3), np.uint8)
        self._blend = np.empty_like(self._other)
        self._pair: tuple[int, int] | None = None

    def __len__(self) -> int:
        return len(self.names)

    def nearest(self, points: np.ndarray, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(indices, weights summing to 1) of the crops blended for ``points``; ``allowed`` (bool (K,))
        leaves crops out. Weights fall to zero at the distance of the next crop not taken."""
        shape = normalised_shapes(points[None], self.template)[0]
        distance = np.sqrt(((self.shapes - shape) ** 2).mean(axis=1))
        if allowed is not None:
            distance = np.where(allowed, distance, np.inf)
        order = np.argsort(distance, kind="stable")
        candidates = int(np.isfinite(distance).sum())
        if candidates == 0:
            raise Face2FaceError("no reference crop to choose from (every crop is excluded)")
        take = order[: min(NEAREST, candidates)]
        if candidates > NEAREST:
            weights = distance[order[NEAREST]] - distance[take]
        else:
            weights = np.ones(len(take))
        weights = np.ones(len(take)) if weights.sum() <= 1e-9 else weights
        return take, (weights / weights.sum()).astype(np.float32)

    def warped(self, index: int, points: np.ndarray) -> np.ndarray:
        """Crop ``index`` warped onto ``points`` (crop px), alone: ``uint8 (S, S, 3)`` BGR."""
        self.warper.set_destination(points)
        return self.warper.warp(self.images[index], self._sources[index])

    def build(self, points: np.ndarray, out: np.ndarray | None = None, allowed: np.ndarray | None = None,
              steady: SteadyBlend | None = None, t: float = 0.0) -> np.ndarray:
        """The reference for a sketch of ``points`` (crop px): ``uint8 (S, S, 3)`` BGR; in a stream of
        frames, ``steady`` smooths the blend's weights over time (``t``: the frame's time, s)."""
        take, weights = self.nearest(points, allowed)
        if steady is not None:
            take, weights = steady(take, weights, t)
        base = int(take[0])
        if len(take) == 1:
            image = self.images[base]
        else:
            image = self._blend
            cv2.addWeighted(self.images[base], float(weights[0]), self._onto(base, int(take[1])), float(weights[1]), 0.0,
                            dst=image)
        self.warper.set_destination(points)
        return self.warper.warp(image, self._sources[base], out=out)

    def _onto(self, base: int, other: int) -> np.ndarray:
        """Crop ``other`` warped onto crop ``base``'s landmarks (kept while the pair stays)."""
        if self._pair != (base, other):
            self.warper.set_destination(self.points[base])
            self.warper.warp(self.images[other], self._sources[other], out=self._other, interpolation=ONTO_INTERPOLATION)
            self._pair = (base, other)
        return self._other


class SteadyBlend:
    """The blend's weights over a stream of frames (``live``, ``reenact``, the cross-driver
    figures): each crop's weight follows what ``ReferenceBank.nearest`` gives for the frame with a
    time constant of ``STEADY_SECONDS``, and the ``NEAREST`` heaviest are blended. The reference
    then stops flickering between crops whose shapes are about as near (landmark noise swaps them
    from frame to frame); the crops are still warped onto each frame's own landmarks. A gap of
    over ``RESTART_SECONDS`` (the face lost) starts again from the frame's own weights."""

    def __init__(self, crops: int) -> None:
        self._weights = np.zeros(crops, np.float32)
        self._t: float | None = None

    def __call__(self, take: np.ndarray, weights: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
        """(indices, weights summing to 1) to blend at time ``t`` (s), for the frame's own ``take``, ``weights``."""
        gap = None if self._t is None else t - self._t
        keep = 0.0 if gap is None or not 0.0 <= gap <= RESTART_SECONDS else float(np.exp(-gap / STEADY_SECONDS))
        self._weights *= keep
        self._weights[take] += (1.0 - keep) * weights
        self._t = t
        heaviest = np.argsort(-self._weights, kind="stable")[: len(take)]
        kept = self._weights[heaviest]
        return heaviest, (kept / kept.sum()).astype(np.float32)


def save_bank(bank: ReferenceBank, folder: str | Path) -> None:
    """Write the bank's crops (``NAME.png``) and ``bank.json`` (names, landmarks, template) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, image in zip(bank.names, bank.images):
        if not cv2.imwrite(str(folder / f"{name}.png"), image):
            raise Face2FaceError(f"{folder / name}.png: cannot write (disk full or no permission?)")
    doc = {"names": bank.names, "points": bank.points.tolist(), "template": bank.template.tolist()}
    (folder / BANK_FILE).write_text(json.dumps(doc))


def load_bank(folder: str | Path) -> ReferenceBank:
    """The bank ``save_bank`` wrote, or a one-line error naming what is missing."""
    folder = Path(folder)
    path = folder / BANK_FILE
    try:
        doc = json.loads(path.read_text())
        names = [str(n) for n in doc["names"]]
        points = np.asarray(doc["points"], np.float32).reshape(len(names), 68, 2)
        template = np.asarray(doc["template"], np.float32).reshape(68, 2)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise Face2FaceError(f"{path}: unreadable reference bank ({exc}); export the model again") from None
    images = []
    for name in names:
        image = cv2.imread(str(folder / f"{name}.png"), cv2.IMREAD_COLOR)
        if image is None:
            raise Face2FaceError(f"{folder / name}.png: missing or unreadable reference crop; export the model again")
        images.append(image)
    if not names or len({im.shape for im in images}) != 1 or images[0].shape[0] != images[0].shape[1]:
        raise Face2FaceError(f"{folder}: no reference crops, or crops of different sizes; export the model again")
    return ReferenceBank(np.stack(images), points, names, template)

"""A dataset folder's pairs, read without TensorFlow: the checks of a split and the generator's inputs.

Pairs come from ``face2face prepare``: ``DIR/{split}/input/NAME.png`` (sketch) and
``DIR/{split}/target/NAME.png`` (photo), both ``size x size`` RGB PNG, and, for a generator that
reads the target's own pixels, ``DIR/{split}/reference/NAME.png`` (``face2face.train.references``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from face2face.errors import Face2FaceError
from face2face.train.prepare import MANIFEST, read_manifest

SWAP_FOLDER = "reference_swap"  # in the train split, beside "reference" (``face2face.train.references``)


@dataclass(frozen=True)
class Split:
    """The checked pairs of one split of a dataset folder."""

    root: Path  # the dataset folder
    name: str  # "train" or "test"
    names: list[str]  # pair names, sorted
    size: int  # image side, px
    reference: bool = False  # the generator's input carries each pair's reference after its sketch

    def inputs(self) -> list[str]:
        return [str(self.root / self.name / "input" / f"{n}.png") for n in self.names]

    def references(self) -> list[str]:
        return [str(self.root / self.name / "reference" / f"{n}.png") for n in self.names]

    def swaps(self) -> list[str]:
        """Each pair's reference with another crop's mouth and eyes (``references.ensure_swaps``)."""
        return [str(self.root / self.name / SWAP_FOLDER / f"{n}.png") for n in self.names]

    def targets(self) -> list[str]:
        return [str(self.root / self.name / "target" / f"{n}.png") for n in self.names]


def check_split(root: str | Path, split: str = "train", check_sizes: bool = True, reference: bool = False) -> Split:
    """List and check one split: every input has a target (and, with ``reference``, a reference),
    and all images have the same size."""
    root = Path(root)
    manifest = read_manifest(root)
    size = manifest["size"]
    folder = root / split
    inputs = {p.stem for p in (folder / "input").glob("*.png")}
    targets = {p.stem for p in (folder / "target").glob("*.png")}
    if not inputs and not targets:
        raise Face2FaceError(f"{folder}: no pairs (empty or missing {split} split)")
    if inputs - targets:
        missing = sorted(inputs - targets)
        raise Face2FaceError(f"{folder}: {len(missing)} input(s) without a target, e.g. {missing[0]}.png")
    if targets - inputs:
        missing = sorted(targets - inputs)
        raise Face2FaceError(f"{folder}: {len(missing)} target(s) without an input, e.g. {missing[0]}.png")
    names = sorted(inputs)
    kinds = ("input", "target", "reference") if reference else ("input", "target")
    if reference:
        missing = sorted(set(names) - {p.stem for p in (folder / "reference").glob("*.png")})
        if missing:
            raise Face2FaceError(f"{folder}: {len(missing)} pair(s) without a reference, e.g. {missing[0]}.png; "
                                 "delete references.json in the dataset folder to write them again")
    if check_sizes:
        for kind in kinds:
            for name in names:
                path = folder / kind / f"{name}.png"
                image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
                if image is None:
                    raise Face2FaceError(f"{path}: not a readable PNG")
                if image.shape[:2] != (size, size) or image.ndim != 3 or image.shape[2] != 3:
                    raise Face2FaceError(
                        f"{path}: mixed sizes: {image.shape} != ({size}, {size}, 3) from the manifest")
    return Split(root, split, names, size, reference)


def read_images(split: Split, indices: list[int] | np.ndarray | None = None) -> list[tuple[np.ndarray, ...]]:
    """The generator's inputs of ``split``'s pairs (all, or those at ``indices``) as they are on
    disk: (sketch,) or (sketch, reference), ``size x size`` BGR uint8 (what ``Generator`` takes)."""
    picks = range(len(split.names)) if indices is None else indices
    paths = [split.inputs(), *([split.references()] if split.reference else [])]
    images = []
    for i in picks:
        parts = tuple(cv2.imread(kind[i], cv2.IMREAD_COLOR) for kind in paths)
        for kind, image in zip(paths, parts):
            if image is None:
                raise Face2FaceError(f"{kind[i]}: missing or unreadable; prepare the dataset again")
            if image.shape != (split.size, split.size, 3):
                raise Face2FaceError(f"{kind[i]}: not a {split.size}x{split.size} image; prepare the dataset again")
        images.append(parts)
    return images


def read_inputs(split: Split, indices: list[int] | np.ndarray | None = None) -> np.ndarray:
    """``read_images`` as the generator's ``float32 [N, size, size, C]`` RGB in [-1, 1], the same
    values as ``make_dataset``'s."""
    return np.concatenate([as_input(parts) for parts in read_images(split, indices)])


def spread(count: int, total: int) -> np.ndarray:
    """Indices of ``count`` of ``total`` items evenly spread (all of them where there are fewer)."""
    return np.unique(np.linspace(0, total - 1, min(count, total)).round().astype(int))


def as_input(images: tuple[np.ndarray, ...]) -> np.ndarray:
    """(sketch[, reference]) BGR uint8 -> the generator's ``float32 [1, s, s, C]`` RGB in [-1, 1]."""
    rgb = [cv2.cvtColor(image, cv2.COLOR_BGR2RGB) for image in images]
    return (np.concatenate(rgb, axis=-1).astype(np.float32) / 127.5 - 1.0)[None]


def dataset_fingerprint(data: str | Path) -> str:
    """sha256 over the manifest's bytes and the sorted relative paths of every pair's sketch and photo."""
    data = Path(data)
    digest = hashlib.sha256((data / MANIFEST).read_bytes())
    pairs = [*data.glob("*/input/*.png"), *data.glob("*/target/*.png")]  # not the references made from them
    for path in sorted(p.relative_to(data).as_posix() for p in pairs):
        digest.update(path.encode() + b"\n")
    return digest.hexdigest()

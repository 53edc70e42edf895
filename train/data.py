"""Dataset folder checks and the ``tf.data`` pipeline of (sketch, photo) pairs.

Pairs come from ``face2face prepare``: ``DIR/{split}/input/NAME.png`` (sketch) and
``DIR/{split}/target/NAME.png`` (photo), both ``size x size`` RGB PNG, and, for a generator that
reads the target's own pixels, ``DIR/{split}/reference/NAME.png`` (``face2face.train.references``).
The pipeline yields ``(input, photo)``: ``float32 [B, size, size, C]`` and ``[B, size, size, 3]``
RGB tensors in [-1, 1], the input the sketch (C = 3) or the sketch then the reference (C = 6).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import tensorflow as tf

from face2face.errors import Face2FaceError
from face2face.train.prepare import read_manifest

log = logging.getLogger(__name__)

JITTER_SCALE = 286 / 256  # the paper's resize-then-crop jitter
# ``warp``: a random similarity transform before the jitter, uniform within these bounds.
WARP_DEGREES = 10.0  # in-plane rotation, either way
WARP_SCALE = 0.1  # zoom in or out by up to 10%
WARP_SHIFT = 0.05  # shift by up to 5% of the side, each axis


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


def read_inputs(split: Split, indices: list[int] | np.ndarray | None = None) -> np.ndarray:
    """The generator's inputs of ``split``'s pairs (all, or those at ``indices``) as numpy:
    ``float32 [N, size, size, C]`` RGB in [-1, 1], the same values as ``make_dataset``'s."""
    picks = range(len(split.names)) if indices is None else indices
    paths = [split.inputs(), *([split.references()] if split.reference else [])]
    images = []
    for i in picks:
        parts = tuple(cv2.imread(kind[i], cv2.IMREAD_COLOR) for kind in paths)
        for kind, image in zip(paths, parts):
            if image is None:
                raise Face2FaceError(f"{kind[i]}: missing or unreadable; prepare the dataset again")
        images.append(as_input(parts))
    return np.concatenate(images)


def as_input(images: tuple[np.ndarray, ...]) -> np.ndarray:
    """(sketch[, reference]) BGR uint8 -> the generator's ``float32 [1, s, s, C]`` RGB in [-1, 1]."""
    rgb = [cv2.cvtColor(image, cv2.COLOR_BGR2RGB) for image in images]
    return (np.concatenate(rgb, axis=-1).astype(np.float32) / 127.5 - 1.0)[None]


def _decode(path: tf.Tensor) -> tf.Tensor:
    image = tf.io.decode_png(tf.io.read_file(path), channels=3)
    return tf.cast(image, tf.float32) / 127.5 - 1.0


def _load(paths: tuple[tf.Tensor, ...], photo_path: tf.Tensor, size: int) -> tuple[tf.Tensor, tf.Tensor]:
    sketch = tf.concat([_decode(p) for p in paths], axis=-1)
    photo = _decode(photo_path)
    sketch.set_shape((size, size, 3 * len(paths)))
    photo.set_shape((size, size, 3))
    return sketch, photo


def jitter(sketch: tf.Tensor, photo: tf.Tensor, seed: tf.Tensor, size: int) -> tuple[tf.Tensor, tf.Tensor]:
    """The paper's jitter, identical on both images: resize to 286/256, random crop, random mirror.

    Mirroring is safe for the sketch: ``face2face.sketch`` draws left and right parts in the same
    colours, so a mirrored sketch is the sketch of the mirrored face.
    """
    big = int(round(size * JITTER_SCALE))
    channels = sketch.shape[-1]
    both = tf.concat([sketch, photo], axis=-1)
    both = tf.image.resize(both, (big, big), method="bilinear")
    seeds = tf.random.experimental.stateless_split(seed, 2)
    both = tf.image.stateless_random_crop(both, (size, size, channels + 3), seed=seeds[0])
    both = tf.image.stateless_random_flip_left_right(both, seed=seeds[1])
    return both[..., :channels], both[..., channels:]


def warp(sketch: tf.Tensor, photo: tf.Tensor, seed: tf.Tensor, size: int) -> tuple[tf.Tensor, tf.Tensor]:
    """A random rotation, scale and shift about the centre, identical on both images: poses and
    framings the target never showed. The sketch is filled with black, the photo (and a reference) reflected."""
    u = tf.random.stateless_uniform((4,), seed, -1.0, 1.0)
    angle = u[0] * WARP_DEGREES * math.pi / 180.0
    scale = 1.0 + u[1] * WARP_SCALE
    shift = u[2:] * WARP_SHIFT * size
    centre = (size - 1) / 2.0
    # The inverse map, output pixel -> input pixel: R(-angle) (p - centre - shift) / scale + centre.
    a0, a1 = tf.cos(angle) / scale, tf.sin(angle) / scale
    b0, b1 = -a1, a0
    x0, y0 = centre + shift[0], centre + shift[1]
    transform = tf.stack([a0, a1, centre - a0 * x0 - a1 * y0, b0, b1, centre - b0 * x0 - b1 * y0, 0.0, 0.0])

    def apply(image: tf.Tensor, fill_mode: str) -> tf.Tensor:
        return tf.raw_ops.ImageProjectiveTransformV3(
            images=image[None], transforms=transform[None], output_shape=(size, size), fill_value=-1.0,
            interpolation="BILINEAR", fill_mode=fill_mode)[0]

    warped = apply(sketch[..., :3], "CONSTANT")
    if sketch.shape[-1] > 3:
        warped = tf.concat([warped, apply(sketch[..., 3:], "REFLECT")], axis=-1)
    return warped, apply(photo, "REFLECT")


def _augment(sketch: tf.Tensor, photo: tf.Tensor, seed: tf.Tensor, size: int,
             warped: bool) -> tuple[tf.Tensor, tf.Tensor]:
    if warped:  # its own seed, so the jitter's draws stay those of an unwarped run
        sketch, photo = warp(sketch, photo, tf.random.experimental.stateless_fold_in(seed, 1), size)
    return jitter(sketch, photo, seed, size)


def make_dataset(split: Split, batch_size: int, training: bool, seed: int = 0,
                 repeat: bool = False, skip_batches: int = 0, warped: bool = False) -> tf.data.Dataset:
    """Batches of ``(sketch, photo)``; training adds jitter (``warped``: after ``warp``) and
    shuffling, all seeded.

    ``skip_batches`` replays the seeded stream up to where a resumed run stopped.
    """
    size = split.size
    inputs = (split.inputs(), *([split.references()] if split.reference else []))
    ds = tf.data.Dataset.from_tensor_slices((inputs, split.targets()))
    ds = ds.map(lambda a, b: _load(a, b, size), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.cache()  # decoded pairs: size^2 * 6 floats each (1.5 MB at 256)
    if training:
        ds = ds.shuffle(len(split.names), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    if training:
        # A per-element seed from a seeded counter: the same run jitters the same way.
        counter = tf.data.Dataset.counter().map(lambda i: tf.stack([tf.cast(seed, tf.int64), i]))
        ds = tf.data.Dataset.zip((ds, counter))
        ds = ds.map(lambda pair, s: _augment(pair[0], pair[1], s, size, warped),
                    num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=training)
    if skip_batches:
        ds = ds.skip(skip_batches)
    return ds.prefetch(tf.data.AUTOTUNE)

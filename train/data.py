"""The ``tf.data`` pipeline of a dataset's (sketch, photo) pairs (``face2face.train.pairs``).

The pipeline yields ``(input, photo)``: ``float32 [B, size, size, C]`` and ``[B, size, size, 3]``
RGB tensors in [-1, 1], the input the sketch (C = 3) or the sketch then the reference (C = 6).
"""

from __future__ import annotations

import logging
import math

import tensorflow as tf

from face2face.train.pairs import Split

log = logging.getLogger(__name__)

JITTER_SCALE = 286 / 256  # the paper's resize-then-crop jitter
# ``warp``: a random similarity transform before the jitter, uniform within these bounds.
WARP_DEGREES = 10.0  # in-plane rotation, either way
WARP_SCALE = 0.1  # zoom in or out by up to 10%
WARP_SHIFT = 0.05  # shift by up to 5% of the side, each axis


def _decode(path: tf.Tensor) -> tf.Tensor:
    return tf.io.decode_png(tf.io.read_file(path), channels=3)


def _to_unit(sketch: tf.Tensor, photo: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """uint8 -> float32 in [-1, 1]."""
    return tf.cast(sketch, tf.float32) / 127.5 - 1.0, tf.cast(photo, tf.float32) / 127.5 - 1.0


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
             warped: bool, swap: float) -> tuple[tf.Tensor, tf.Tensor]:
    if swap:  # the input carries the swapped reference last: it replaces the reference with probability ``swap``
        swapped = tf.random.stateless_uniform((), tf.random.experimental.stateless_fold_in(seed, 2)) < swap
        sketch = tf.concat([sketch[..., :3], tf.where(swapped, sketch[..., 6:], sketch[..., 3:6])], axis=-1)
    if warped:  # its own seed, so the jitter's draws stay those of an unwarped run
        sketch, photo = warp(sketch, photo, tf.random.experimental.stateless_fold_in(seed, 1), size)
    return jitter(sketch, photo, seed, size)


def make_dataset(split: Split, batch_size: int, training: bool, seed: int = 0,
                 repeat: bool = False, skip_batches: int = 0, warped: bool = False,
                 swap: float = 0.0) -> tf.data.Dataset:
    """Batches of ``(sketch, photo)``; training adds jitter (``warped``: after ``warp``) and
    shuffling, all seeded; with ``swap`` (training, a split with references) each pair's reference
    is its swapped one (``Split.swaps``) with that probability.

    ``skip_batches`` replays the seeded stream up to where a resumed run stopped.
    """
    size = split.size
    swap = swap if training and split.reference else 0.0
    inputs = (split.inputs(), *([split.references()] if split.reference else []), *([split.swaps()] if swap else []))
    ds = tf.data.Dataset.from_tensor_slices((inputs, split.targets()))
    ds = ds.map(lambda a, b: _load(a, b, size), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.cache()  # decoded pairs as uint8: size^2 * 9 bytes each (0.6 MB at 256; floats would take 4x; 12 with swaps)
    if training:
        ds = ds.shuffle(len(split.names), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    if training:
        # A per-element seed from a seeded counter: the same run jitters the same way.
        counter = tf.data.Dataset.counter().map(lambda i: tf.stack([tf.cast(seed, tf.int64), i]))
        ds = tf.data.Dataset.zip((ds, counter))
        ds = ds.map(lambda pair, s: _augment(*_to_unit(*pair), s, size, warped, swap),
                    num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    else:
        ds = ds.map(_to_unit, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=training)
    if skip_batches:
        ds = ds.skip(skip_batches)
    return ds.prefetch(tf.data.AUTOTUNE)

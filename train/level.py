"""The face's level: the output layer's bias refitted so that, inside the face's outline, the
generated face is as light as the photos, per colour channel.

A generator trained at batch 1 normalises every image by its own statistics; exported, its batch
norms use fixed ones (``trainer.settle``), and the settling phase trains it to them only as far as
its learning rate allows. What is left shows as the whole face a few grey levels off: after the
30-minute CPU recipe, whose rate has nearly decayed by its settling phase, about 3 levels darker
than the photos on ``lp_d6``, on train and test frames alike, and 8 in a model exported from
before settling (docs/experiments.md). ``FaceLevel.fit`` adds back the L1-optimal shift: per
channel, the weighted median over the faces' pixels of the change of the tanh's input that would
make each pixel exact, weighted by the tanh's slope there. The graph stays the same. A generator
that copies its reference through a mask (``pix2pix.CopyBlend``: ``m r + (1 - m) tanh(x)``) has
only its drawn part shifted: the exact shift is that of ``tanh(x) = (photo - m r) / (1 - m)``,
weighted also by ``1 - m``, the drawn part's share of the pixel. One that corrects its reference
(``pix2pix.AddReference``: ``clip(r + x)``) is shifted by the median of ``photo - r - x``.
"""

from __future__ import annotations

import math
from dataclasses import replace

import keras
import numpy as np

from face2face.train import pix2pix
from face2face.train.holdout import face_pairs
from face2face.train.pairs import Split

OUTPUT_LAYER = "up_out"  # the generator's last convolution, before the tanh (``pix2pix.build_generator``)
PAIRS = 32  # train pairs, evenly spread, the level is fitted on
BATCH = 4  # pairs per forward pass (the activations of all 32 at once take over 1 GB)
ROUNDS = 3  # re-weightings of the median (the tanh's slope at the shifted input)
EDGE = 1.0 - 1e-6  # photo values are clipped to +-EDGE before the tanh's inverse


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """The value at which the weights' cumulative sum reaches half their total (``values`` sorted)."""
    cumulative = np.cumsum(weights)
    return float(values[min(np.searchsorted(cumulative, cumulative[-1] / 2), len(values) - 1)])


class FaceLevel:
    """Fits a generator's face level on train pairs, which are read once."""

    def __init__(self, split: Split, pairs: int = PAIRS) -> None:
        every = max(1, math.ceil(len(split.names) / pairs))
        self._sketches, photos, self._masks = face_pairs(replace(split, names=split.names[::every]))
        self._photos = (2.0 * photos - 1.0).astype(np.float64)  # in the generator's [-1, 1]
        self.pairs = len(self._sketches)

    def fit(self, generator: keras.Model) -> np.ndarray:
        """Add the fitted shift to the bias of ``generator``'s output layer; returns how much it
        lightens the faces of the pairs on average, per channel (RGB), in 8-bit grey levels
        (negative: darkens)."""
        layer = generator.get_layer(OUTPUT_LAYER)
        head = keras.Model(generator.input, layer.output)
        last = np.concatenate([np.asarray(head(self._sketches[i : i + BATCH], training=False), np.float64)
                               for i in range(0, len(self._sketches), BATCH)])
        last = last[self._masks]  # (pixels, 3 or 4)
        inputs, photos = last[:, :3], self._photos[self._masks]
        drawn = np.ones((len(last), 1))  # the drawn part's share of each pixel
        squash, slope = np.tanh, lambda x: 1.0 - np.tanh(x) ** 2
        if pix2pix.adds_reference(generator):  # clip(r + x): the shift of x = photo - r, every pixel alike
            targets = photos - self._sketches[..., 3:6][self._masks]
            squash, slope = (lambda x: x), np.ones_like
        else:
            if last.shape[1] == 4:  # copies its reference through a mask
                drawn = 1.0 - 1.0 / (1.0 + np.exp(-last[:, 3:4]))
                photos = (photos - (1.0 - drawn) * self._sketches[..., 3:6][self._masks]) / np.maximum(drawn, 1e-6)
            targets = np.arctanh(np.clip(photos, -EDGE, EDGE))
        shift = np.zeros(3)
        for channel in range(3):
            needed = targets[:, channel] - inputs[:, channel]  # the shift that makes each pixel exact
            order = np.argsort(needed)
            needed, at, share = needed[order], inputs[order, channel], drawn[order, 0]
            for _ in range(ROUNDS):
                shift[channel] = weighted_median(needed, share * slope(at + shift[channel]))
        layer.bias.assign_add(np.concatenate([shift, np.zeros(last.shape[1] - 3)]).astype(np.float32))
        return 127.5 * np.mean(drawn * (squash(inputs + shift) - squash(inputs)), axis=0)

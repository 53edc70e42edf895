"""pix2pix (Isola et al. 2017): U-Net generator, 70x70 PatchGAN discriminator, losses, train step.

Layout follows the authors' reference code: encoder ``C64-C128-C256-C512-C512-C512-C512-C512``
(4x4, stride 2, LeakyReLU 0.2, batch norm except on the first and the innermost layer), decoder
``CD512-CD512-CD512-C512-C256-C128-C64`` (ReLU, batch norm, dropout 0.5 on the first three) with
skip connections, then a 4x4 transposed convolution to 3 channels and tanh. Depth follows the
image size (256 -> 8 downsamplings, 128 -> 7, 64 -> 6, 512 -> 9). Weights ~ N(0, 0.02).

``ema`` keeps an exponential moving average of the generator's weights beside them
(``WeightAverage``); the weights handed over can be that average instead of the last weights.

``upsample="resize"`` ties each transposed convolution's 4x4 kernel to a 3x3 one
(``ResizeConv``): nearest-neighbour 2x upsampling then a 3x3 convolution (Odena et al. 2016), at
the transposed convolution's cost, and exported as a plain transposed convolution
(``as_transposed``).

Images are ``float32 [B, size, size, 3]``, RGB, values in [-1, 1].
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from face2face.train.options import LAMBDA_L1, UPSAMPLING

BN_MOMENTUM = 0.9  # torch's momentum 0.1
BN_EPSILON = 1e-5


def _init() -> keras.initializers.Initializer:
    return keras.initializers.RandomNormal(mean=0.0, stddev=0.02)


class BatchNorm(layers.BatchNormalization):
    """Batch norm that can be frozen: ``frozen`` = always use the moving statistics.

    Freezing keeps ``gamma``/``beta`` trainable (unlike ``trainable = False``); the settling phase
    trains the generator through exactly the graph that is exported. ``per_image`` normalises each
    image by its own statistics (what the paper's test-time batch norm does at batch 1), without
    touching the moving statistics; it exists to measure that alternative.
    """

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("momentum", BN_MOMENTUM)
        kwargs.setdefault("epsilon", BN_EPSILON)
        kwargs.setdefault("gamma_initializer", keras.initializers.RandomNormal(1.0, 0.02))
        super().__init__(**kwargs)
        self.frozen = False
        self.per_image = False

    def call(self, inputs, training=None, mask=None):
        if self.per_image:
            mean, variance = tf.nn.moments(inputs, axes=[1, 2], keepdims=True)
            return tf.nn.batch_normalization(inputs, mean, variance, self.beta, self.gamma, self.epsilon)
        return super().call(inputs, training=bool(training) and not self.frozen, mask=mask)


class Dropout(layers.Dropout):
    """Dropout that can be switched off even in training mode (``enabled = False``)."""

    def __init__(self, rate: float, **kwargs) -> None:
        super().__init__(rate, **kwargs)
        self.enabled = True

    def call(self, inputs, training=None):
        return super().call(inputs, training=bool(training) and self.enabled)


# Nearest-neighbour 2x upsampling then a 3-tap "same" correlation equals a 4-tap stride-2 "same"
# transposed convolution whose taps are [w2, w1 + w2, w0 + w1, w0]: TIE[a, s] says which 3-tap
# weights s make 4-tap weight a. Both output phases then sum all three taps, so a flat input gives a
# flat output: no checkerboard from unequal phase gains.
TIE = ((0.0, 0.0, 1.0), (0.0, 1.0, 1.0), (1.0, 1.0, 0.0), (1.0, 0.0, 0.0))


def tied_kernel(kernel3):
    """``[3, 3, out, in]`` resize-convolution kernel -> the equal ``[4, 4, out, in]`` transposed one."""
    tie = tf.constant(np.kron(TIE, TIE), dtype=kernel3.dtype)  # [(a, b), (s, t)]
    shape = tf.shape(kernel3)
    kernel4 = tf.matmul(tie, tf.reshape(kernel3, [9, -1]))
    return tf.reshape(kernel4, tf.concat([[4, 4], shape[2:]], 0))


class ResizeConv(layers.Conv2DTranspose):
    """4x4 stride-2 "same" transposed convolution with its kernel tied to a 3x3 one (``tied_kernel``):
    exactly nearest-neighbour 2x upsampling followed by a 3x3 "same" convolution."""

    def __init__(self, filters: int, **kwargs) -> None:
        super().__init__(filters, 4, 2, "same", **kwargs)

    def build(self, input_shape) -> None:
        shape = (3, 3, self.filters, input_shape[-1])
        self.kernel3 = self.add_weight(name="kernel3", shape=shape, initializer=self.kernel_initializer,
                                       dtype=self.dtype)
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer=self.bias_initializer,
                                    dtype=self.dtype) if self.use_bias else None

    def call(self, inputs):
        kernel = tied_kernel(ops.cast(self.kernel3, inputs.dtype))
        outputs = ops.conv_transpose(inputs, kernel, strides=2, padding="same")
        return outputs + ops.cast(self.bias, outputs.dtype) if self.use_bias else outputs


def generator_depth(size: int) -> int:
    """Number of stride-2 downsamplings for a square input of ``size`` px (down to 1x1)."""
    depth = int(round(math.log2(size))) if size > 0 else 0
    if size < 16 or 2**depth != size:
        raise ValueError(f"image size must be a power of two >= 16, got {size}")
    return depth


class CopyBlend(layers.Layer):
    """The face from a 4-channel last layer and the generator's input (sketch, reference):
    ``m * reference + (1 - m) * tanh(drawn)`` with ``m = sigmoid`` of the 4th channel, a soft
    mask of where the reference is copied (as in few-shot vid2vid's blend of a warped image)."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)

    def call(self, last, inputs):
        last = ops.cast(last, "float32")
        reference = ops.cast(inputs[..., 3:6], "float32")
        mask = ops.sigmoid(last[..., 3:4])
        return mask * reference + (1.0 - mask) * ops.tanh(last[..., :3])


class AddReference(layers.Layer):
    """The face as the reference plus what the generator draws, ``clip(reference + last, -1, 1)``: a
    correction of the target's own warped pixels (at the start of training, the reference itself), so
    detail the reference has right reaches the output at full resolution instead of being redrawn.
    With ``smooth`` (a Gaussian's sigma, px), the correction passes that fixed blur first: the finest
    detail then comes from the reference alone, none is invented over it (docs/experiments.md)."""

    def __init__(self, smooth: float = 0.0, **kwargs) -> None:
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.smooth = float(smooth)
        self._taps = gaussian_taps(self.smooth) if self.smooth else None

    def call(self, last, inputs):
        reference = ops.cast(inputs[..., 3:6], "float32")
        correction = ops.cast(last, "float32")
        if self._taps is not None:
            correction = separable_blur(correction, self._taps)
        return ops.clip(reference + correction, -1.0, 1.0)

    def get_config(self) -> dict:
        return {**super().get_config(), "smooth": self.smooth}


def gaussian_taps(sigma: float) -> np.ndarray:
    """``float32 (2r + 1,)``: a Gaussian of ``sigma`` px sampled out to ``r = ceil(3 sigma)``, summing to 1."""
    radius = max(1, math.ceil(3 * sigma))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    taps = np.exp(-0.5 * (x / sigma) ** 2)
    return (taps / taps.sum()).astype(np.float32)


def separable_blur(images, taps: np.ndarray):
    """``images`` (NHWC) blurred by ``taps`` along each axis, edges mirrored (a constant stays itself)."""
    radius, channels = len(taps) // 2, images.shape[-1]
    padded = ops.pad(images, [[0, 0], [radius, radius], [radius, radius], [0, 0]], mode="reflect")
    column = np.tile(taps.reshape(-1, 1, 1, 1), (1, 1, channels, 1))
    x = ops.depthwise_conv(padded, ops.convert_to_tensor(column), strides=1, padding="valid")
    return ops.depthwise_conv(x, ops.convert_to_tensor(column.reshape(1, -1, channels, 1)), strides=1, padding="valid")


def build_generator(size: int = 256, ngf: int = 64, name: str = "generator",
                    upsample: str = "transpose", channels: int = 3, blend: bool = False,
                    residual: bool = False, smooth: float = 0.0) -> keras.Model:
    """U-Net generator: ``[B, size, size, channels]`` input in [-1, 1] (the sketch, then the
    reference where ``channels`` is 6: ``face2face.reference``) -> photo in [-1, 1]; ``upsample``
    is one of ``UPSAMPLING`` (the paper's transposed convolutions, or ``ResizeConv``). ``blend``
    (with a reference): the last layer also draws a mask, and the face copies the reference
    where it is on (``CopyBlend``); ``residual``: the face is the reference plus the last layer
    (``AddReference``), blurred by a Gaussian of ``smooth`` px first where it is above 0."""
    if (blend or residual) and channels != 6:
        raise ValueError("blend and residual need the reference in the input (channels 6)")
    if blend and residual:
        raise ValueError("blend or residual, not both")
    if smooth and not residual:
        raise ValueError("smooth blurs a residual generator's correction: it needs residual")
    if upsample not in UPSAMPLING:
        raise ValueError(f"upsample must be one of {UPSAMPLING}, got {upsample!r}")
    up = layers.Conv2DTranspose if upsample == "transpose" else (lambda width, *_, **kw: ResizeConv(width, **kw))
    depth = generator_depth(size)
    widths = [ngf * min(2**i, 8) for i in range(depth)]
    inputs = keras.Input((size, size, channels), name="sketch")
    x = layers.Conv2D(widths[0], 4, 2, "same", kernel_initializer=_init(), name="down0")(inputs)
    skips = [x]
    for i, width in enumerate(widths[1:], start=1):
        innermost = i == depth - 1
        x = layers.LeakyReLU(0.2)(x)
        x = layers.Conv2D(width, 4, 2, "same", use_bias=innermost, kernel_initializer=_init(),
                          name=f"down{i}")(x)
        if not innermost:  # the 1x1 bottleneck has no norm (as in the reference code)
            x = BatchNorm(name=f"down{i}_bn")(x)
        skips.append(x)
    skips.pop()  # the innermost output is x itself
    for j, skip in enumerate(reversed(skips)):
        width = widths[len(skips) - 1 - j]
        x = layers.ReLU()(x)
        x = up(width, 4, 2, "same", use_bias=False, kernel_initializer=_init(), name=f"up{j}")(x)
        x = BatchNorm(name=f"up{j}_bn")(x)
        if j < 3:
            x = Dropout(0.5, name=f"up{j}_dropout")(x)
        x = layers.Concatenate(name=f"skip{j}")([x, skip])
    x = layers.ReLU()(x)
    # a residual generator starts as the reference itself: its correction starts at zero
    last_init = "zeros" if residual else _init()
    x = up(4 if blend else 3, 4, 2, "same", kernel_initializer=last_init, name="up_out")(x)
    if blend:
        outputs = CopyBlend(name="face")(x, inputs)
    elif residual:
        outputs = AddReference(smooth, name="face")(x, inputs)
    else:
        outputs = layers.Activation("tanh", dtype="float32", name="face")(x)
    return keras.Model(inputs, outputs, name=name)


def blends(generator: keras.Model) -> bool:
    """Whether a generator copies its reference through a mask (``build_generator(blend=True)``)."""
    return generator.get_layer("up_out").filters == 4


def adds_reference(generator: keras.Model) -> bool:
    """Whether a generator corrects its reference (``build_generator(residual=True)``)."""
    return isinstance(generator.get_layer("face"), AddReference)


def correction_smooth(generator: keras.Model) -> float:
    """The sigma (px) of the blur a residual generator's correction passes (0: none)."""
    return generator.get_layer("face").smooth if adds_reference(generator) else 0.0


def as_transposed(generator: keras.Model) -> keras.Model:
    """The same function as a plain transposed-convolution generator (what is exported): each
    ``ResizeConv`` becomes a ``Conv2DTranspose`` with its tied kernel; other layers copied."""
    if not any(isinstance(layer, ResizeConv) for layer in generator.layers):
        return generator
    size, ngf = generator.input_shape[1], generator.get_layer("down0").filters
    plain = build_generator(size, ngf, generator.name, channels=generator.input_shape[-1],
                            blend=blends(generator), residual=adds_reference(generator),
                            smooth=correction_smooth(generator))
    for layer, source in zip(plain.layers, generator.layers, strict=True):  # built in the same order
        if isinstance(source, ResizeConv):
            kernel = tied_kernel(tf.convert_to_tensor(source.kernel3))
            layer.set_weights([kernel.numpy(), *([source.bias.numpy()] if source.use_bias else [])])
        else:
            layer.set_weights(source.get_weights())
    return plain


def build_discriminator(size: int = 256, ndf: int = 64, name: str = "discriminator",
                        channels: int = 3) -> keras.Model:
    """70x70 PatchGAN on ``concat(input, image)`` (the generator's ``channels``-channel input):
    ``[B, size/8 - 2, size/8 - 2, 1]`` logits."""
    sketch = keras.Input((size, size, channels), name="sketch")
    image = keras.Input((size, size, 3), name="image")
    x = layers.Concatenate()([sketch, image])
    for i, (width, stride) in enumerate(((ndf, 2), (ndf * 2, 2), (ndf * 4, 2), (ndf * 8, 1))):
        x = layers.ZeroPadding2D(1)(x)
        x = layers.Conv2D(width, 4, stride, use_bias=i == 0, kernel_initializer=_init(), name=f"d{i}")(x)
        if i > 0:
            x = BatchNorm(name=f"d{i}_bn")(x)
        x = layers.LeakyReLU(0.2, name=f"d{i}_act")(x)
    x = layers.ZeroPadding2D(1)(x)
    logits = layers.Conv2D(1, 4, 1, kernel_initializer=_init(), dtype="float32", name="logits")(x)
    return keras.Model([sketch, image], logits, name=name)


def discriminator_features(discriminator: keras.Model) -> keras.Model:
    """The discriminator with its four hidden activations as outputs before the logits (same layers)."""
    hidden = [discriminator.get_layer(f"d{i}_act").output for i in range(4)]
    return keras.Model(discriminator.inputs, [*hidden, discriminator.output], name="discriminator_features")


def parts_mask(sketch: tf.Tensor) -> tf.Tensor:
    """``[B, size, size, 1]``: 1 around the eyes (green strokes, cyan pupils) and the lips (red and
    magenta strokes) of RGB sketches in [-1, 1], 0 elsewhere; the strokes are widened by about a
    tenth of the side, which covers the eyes' and the open mouth's insides."""
    size = sketch.shape[1]
    r, g, b = tf.unstack((tf.cast(sketch[..., :3], tf.float32) + 1.0) / 2.0, axis=-1)
    eyes = (g > 0.75) & (r < 0.3)  # green, cyan; not yellow, white or the nose's blue (g 0.5)
    lips = (r > 0.5) & (g < 0.3)  # red, magenta
    strokes = tf.cast(eyes | lips, tf.float32)[..., None]
    # Widened on a grid of 4 px cells (a full-resolution max of this width costs 1 s a step on CPU).
    coarse = tf.nn.max_pool2d(strokes, 4, 4, "SAME")
    width = max(3, size // 40) | 1
    coarse = tf.nn.max_pool2d(tf.nn.max_pool2d(coarse, (1, width), 1, "SAME"), (width, 1), 1, "SAME")
    return tf.image.resize(coarse, (size, size), method="nearest")


HIGH_PASS_SIGMA = 1.0  # px: the Gaussian whose residue is ``local_detail``'s high-pass
DETAIL_CELL = 16  # px: the side of the cells whose detail amplitude ``local_detail`` reports


def local_detail(image: tf.Tensor) -> tf.Tensor:
    """``[B, size / DETAIL_CELL, size / DETAIL_CELL, 1]``: the RMS of the grey image's high-pass
    (the image minus its ``HIGH_PASS_SIGMA`` Gaussian blur) over each ``DETAIL_CELL``-px cell: how
    much fine detail a region has, wherever it lies in the cell. ``image``: ``[B, size, size, 3]``."""
    grey = tf.reduce_mean(tf.cast(image, tf.float32), axis=-1, keepdims=True)
    radius = math.ceil(3 * HIGH_PASS_SIGMA)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / HIGH_PASS_SIGMA) ** 2)
    taps = (taps / taps.sum()).astype(np.float32)
    blurred = tf.pad(grey, [[0, 0], [radius, radius], [radius, radius], [0, 0]], mode="REFLECT")
    blurred = tf.nn.conv2d(blurred, taps.reshape(-1, 1, 1, 1), 1, "VALID")
    blurred = tf.nn.conv2d(blurred, taps.reshape(1, -1, 1, 1), 1, "VALID")
    energy = tf.nn.avg_pool2d(tf.square(grey - blurred), DETAIL_CELL, DETAIL_CELL, "VALID")
    return tf.sqrt(energy + 1e-8)


def batch_norms(model: keras.Model) -> list[BatchNorm]:
    """The model's batch-norm layers, in graph order."""
    return [layer for layer in model.layers if isinstance(layer, BatchNorm)]


def set_inference_normalization(model: keras.Model, settled: bool) -> None:
    """``settled``: batch norm uses moving statistics and dropout is off, even when training."""
    for layer in model.layers:
        if isinstance(layer, BatchNorm):
            layer.frozen = settled
        elif isinstance(layer, Dropout):
            layer.enabled = not settled


class WeightAverage(tf.Module):
    """An exponential moving average of ``variables`` (Polyak averaging, as GANs use it: Yazici et
    al. 2019). The decay warms up as ``min(decay, (1 + n) / (10 + n))`` after n updates, so early
    averages follow the weights closely, and until ``decay`` caps it the average spans about the
    last tenth of the steps. Mirrored variables take the first replica's update (every replica holds the same weights)."""

    def __init__(self, variables: list, decay: float) -> None:
        super().__init__(name="weight_average")
        self.decay = decay
        first = tf.VariableAggregation.ONLY_FIRST_REPLICA
        self.count = tf.Variable(0, dtype=tf.int64, trainable=False, aggregation=first, name="count")
        self.weights = [tf.Variable(tf.convert_to_tensor(v), trainable=False, aggregation=first, name="average")
                        for v in variables]

    def update(self, variables: list) -> None:
        """Move the average towards ``variables`` (call after each optimiser step)."""
        self.count.assign_add(1)
        n = tf.cast(self.count, tf.float32)
        decay = tf.minimum(self.decay, (1.0 + n) / (10.0 + n))
        for average, variable in zip(self.weights, variables):
            average.assign(decay * average + (1.0 - decay) * tf.convert_to_tensor(variable))

    @contextmanager
    def swapped_into(self, variables: list) -> Iterator[None]:
        """Within the block ``variables`` hold the average; their own values come back after."""
        own = [v.numpy() for v in variables]
        for variable, average in zip(variables, self.weights):
            variable.assign(average.numpy())
        try:
            yield
        finally:
            for variable, value in zip(variables, own):
                variable.assign(value)


def _bce(labels_like: tf.Tensor, logits: tf.Tensor, value: float) -> tf.Tensor:
    """Per-example mean sigmoid cross-entropy against a constant label."""
    loss = tf.nn.sigmoid_cross_entropy_with_logits(tf.fill(tf.shape(labels_like), value), logits)
    return tf.reduce_mean(loss, axis=[1, 2, 3])


class Pix2Pix(keras.Model):
    """The conditional GAN: ``train_step((sketch, photo))`` updates D and G once each.

    Losses (pix2pix vocabulary): ``G_GAN`` + ``lambda_l1`` x ``G_L1`` for the generator,
    ``D_real + D_fake`` for the discriminator (sigmoid cross-entropy on logits). Options:
    ``lambda_fm`` adds pix2pixHD's feature matching (Wang et al. 2018), ``lambda_fm`` x ``G_FM``:
    the L1 distance between the discriminator's hidden activations on the photo and on the output,
    summed over its four layers; ``parts_weight`` weighs the L1 term ``1 + parts_weight`` times
    around the eyes and lips (``parts_mask``), normalised so the term keeps its scale;
    ``detail_weight`` adds ``detail_weight`` x ``G_detail``, the L1 distance between the output's
    and the photo's ``local_detail``: as much fine detail in each cell as the photo has there,
    without asking for the detail's exact place (which the sketch cannot tell). ``ema`` (a decay,
    e.g. 0.999; 0 = off) keeps ``average``, a ``WeightAverage`` of the generator's weights.
    Per-example losses are averaged over the *global* batch so ``tf.distribute`` replicas sum
    correctly.
    """

    def __init__(self, size: int = 256, ngf: int = 64, ndf: int = 64, lambda_l1: float = LAMBDA_L1,
                 global_batch_size: int = 1, lambda_fm: float = 0.0, parts_weight: float = 0.0,
                 upsample: str = "transpose", detail_weight: float = 0.0, ema: float = 0.0,
                 channels: int = 3, blend: bool = False, residual: bool = False, smooth: float = 0.0,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.generator = build_generator(size, ngf, upsample=upsample, channels=channels, blend=blend,
                                         residual=residual, smooth=smooth)
        # a generator that corrects its reference is judged on the sketch alone: a discriminator that
        # also saw the reference would tell a fake by its exact copy of it and push the face off it
        self.judged = 3 if residual else channels
        self.discriminator = build_discriminator(size, ndf, channels=self.judged)
        self.features = discriminator_features(self.discriminator)
        self.lambda_l1 = lambda_l1
        self.lambda_fm = lambda_fm
        self.parts_weight = parts_weight
        self.detail_weight = detail_weight
        self.global_batch_size = global_batch_size
        self.average = WeightAverage(self.generator.trainable_variables, ema) if ema else None
        self.names = ("G_GAN", "G_L1", *(("G_FM",) if lambda_fm else ()), *(("G_detail",) if detail_weight else ()),
                      "D_real", "D_fake")
        self.loss_metrics = {n: keras.metrics.Mean(name=n) for n in self.names}

    def compile(self, g_optimizer: keras.optimizers.Optimizer, d_optimizer: keras.optimizers.Optimizer) -> None:
        """Attach the two optimizers and create their slots (so checkpoints restore them)."""
        super().compile()
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        g_optimizer.build(self.generator.trainable_variables)
        d_optimizer.build(self.discriminator.trainable_variables)

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return list(self.loss_metrics.values())

    def call(self, sketch, training=False):
        return self.generator(sketch, training=training)

    def _mean(self, per_example: tf.Tensor) -> tf.Tensor:
        return tf.reduce_sum(per_example) / self.global_batch_size

    def _l1(self, sketch: tf.Tensor, photo: tf.Tensor, fake: tf.Tensor) -> tf.Tensor:
        """Per-example mean absolute error, weighted around the eyes and lips by ``parts_weight``."""
        error = tf.abs(photo - tf.cast(fake, photo.dtype))
        if not self.parts_weight:
            return tf.reduce_mean(error, axis=[1, 2, 3])
        weight = 1.0 + self.parts_weight * parts_mask(sketch)
        return tf.reduce_sum(error * weight, axis=[1, 2, 3]) / (3.0 * tf.reduce_sum(weight, axis=[1, 2, 3]))

    def train_step(self, data) -> dict[str, tf.Tensor]:
        sketch, photo = data
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = self.generator(sketch, training=True)
            condition = sketch[..., : self.judged]
            *real_hidden, real_logits = self.features([condition, photo], training=True)
            *fake_hidden, fake_logits = self.features([condition, fake], training=True)
            g_gan = self._mean(_bce(fake_logits, fake_logits, 1.0))
            g_l1 = self._mean(self._l1(sketch, photo, fake))
            d_real = self._mean(_bce(real_logits, real_logits, 1.0))
            d_fake = self._mean(_bce(fake_logits, fake_logits, 0.0))
            g_loss = g_gan + self.lambda_l1 * g_l1
            values = {"G_GAN": g_gan, "G_L1": g_l1, "D_real": d_real, "D_fake": d_fake}
            if self.lambda_fm:
                values["G_FM"] = self._mean(tf.add_n([
                    tf.reduce_mean(tf.abs(tf.cast(tf.stop_gradient(r) - f, tf.float32)), axis=[1, 2, 3])
                    for r, f in zip(real_hidden, fake_hidden)]))
                g_loss += self.lambda_fm * values["G_FM"]
            if self.detail_weight:
                gap = tf.abs(local_detail(photo) - local_detail(fake))
                values["G_detail"] = self._mean(tf.reduce_mean(gap, axis=[1, 2, 3]))
                g_loss += self.detail_weight * values["G_detail"]
            d_loss = d_real + d_fake
            # Loss scaling under mixed precision; apply_gradients unscales (identity otherwise).
            g_scaled = self.g_optimizer.scale_loss(g_loss)
            d_scaled = self.d_optimizer.scale_loss(d_loss)
        g_vars = self.generator.trainable_variables
        d_vars = self.discriminator.trainable_variables
        g_grads = g_tape.gradient(g_scaled, g_vars)
        d_grads = d_tape.gradient(d_scaled, d_vars)
        self.g_optimizer.apply_gradients(zip(g_grads, g_vars))
        self.d_optimizer.apply_gradients(zip(d_grads, d_vars))
        if self.average is not None:
            self.average.update(g_vars)
        for name, value in values.items():
            self.loss_metrics[name].update_state(value)
        return values


class LinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """The paper's schedule: ``rate`` for the first steps, then linearly to 0 over the last
    ``fraction`` of ``total`` steps (Isola et al. 2017: 100 epochs constant, 100 decaying)."""

    def __init__(self, rate: float, total: int, fraction: float) -> None:
        self.rate, self.total, self.fraction = rate, total, fraction

    def __call__(self, step):
        start = self.total * (1.0 - self.fraction)
        left = (tf.cast(step, tf.float32) - start) / max(self.total - start, 1.0)
        return self.rate * (1.0 - tf.clip_by_value(left, 0.0, 1.0))

    def get_config(self) -> dict:
        return {"rate": self.rate, "total": self.total, "fraction": self.fraction}


class FusedAdam(keras.optimizers.Adam):
    """Keras's Adam with each weight's update in one kernel (``ResourceApplyAdam``): the same
    math (the same bias-corrected rate, epsilon outside the root) and the same slots, so
    checkpoints of either restore into the other. Keras's update takes six element-wise passes
    over every weight and both slots, which on a CPU cost about a tenth of a training step at
    ngf 32 (docs/training.md)."""

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        index = self._get_variable_index(variable)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=self._momentums[index].handle,
            v=self._velocities[index].handle,
            beta1_power=tf.pow(tf.cast(self.beta_1, dtype), step), beta2_power=tf.pow(tf.cast(self.beta_2, dtype), step),
            lr=tf.cast(learning_rate, dtype), beta1=tf.cast(self.beta_1, dtype), beta2=tf.cast(self.beta_2, dtype),
            epsilon=tf.cast(self.epsilon, dtype), grad=tf.cast(gradient, dtype))


ADAM = {"fused": FusedAdam, "keras": keras.optimizers.Adam}  # scripts/train_speed.py --adam compares them


def make_optimizer(learning_rate: float | LinearDecay = 2e-4, beta_1: float = 0.5, loss_scale: bool = False,
                   name: str | None = None, adam: str = "fused") -> keras.optimizers.Optimizer:
    """Adam as in the paper (``ADAM[adam]``); wrapped for dynamic loss scaling under mixed precision."""
    optimizer = ADAM[adam](learning_rate, beta_1=beta_1, beta_2=0.999, name=name)
    if loss_scale:
        optimizer = keras.mixed_precision.LossScaleOptimizer(optimizer, name=name)
    return optimizer

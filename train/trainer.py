"""The training loop: strategy, checkpoints, resume, signals, TensorBoard, samples, settling.

A run folder holds ``config.json`` (resolved options and what differs from the defaults),
``checkpoints/`` (``tf.train.CheckpointManager``), ``logs/`` (TensorBoard) and ``samples/``.

Normalisation: training follows the paper (batch statistics). The last ``settle_fraction`` of
the steps *settles* the generator: batch-norm statistics are re-estimated over the training set
(population mean and variance, dropout off), then frozen, and training continues through exactly
the graph that is exported (moving statistics, no dropout). Inference is then deterministic and
batch norm folds into the convolutions.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Callable, Iterator

import cv2
import keras
import numpy as np
import tensorflow as tf

from face2face.errors import Face2FaceError
from face2face.files import write_atomic
from face2face.memory import peak_gb
from face2face.runtime.openvino_engine import NO_BF16, native_bf16
from face2face.train import pix2pix
from face2face.train.distribute import PEER_ERRORS, is_chief, lost_peer_message, make_strategy, share_from_chief
from face2face.train.references import ensure_references, ensure_swaps
from face2face.train.data import make_dataset
from face2face.train.pairs import Split, check_split, read_inputs
from face2face.train.holdout import HoldoutScorer, Scores, read_scores, split_holdout
from face2face.train.level import OUTPUT_LAYER, FaceLevel
from face2face.train.options import (BEST, CHECKPOINTS, CONFIG, LAMBDA_L1, TrainConfig, check_train_config,
                                     read_run_config, resolve_residual)

log = logging.getLogger(__name__)

POLICIES = {"fp32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}  # Keras dtype policies


@dataclass
class TrainResult:
    """What a call to ``train`` did."""

    step: int  # steps done in total
    total_steps: int
    interrupted: bool  # stopped by SIGINT/SIGTERM (checkpoint saved)
    signal: int | None
    steps_per_second: float  # after the first (tracing) step
    checkpoint: str | None  # latest checkpoint path
    peak_memory_gb: float | None = None  # this process's peak resident memory (also in config.json)


def resolve_steps(config: TrainConfig, train_pairs: int) -> int:
    """Total training steps from ``steps`` or ``epochs``."""
    if config.steps is not None:
        return config.steps
    per_epoch = max(1, train_pairs // config.batch_size)
    return max(1, math.ceil((config.epochs if config.epochs is not None else 200) * per_epoch))


def build(config: TrainConfig, size: int, global_batch: int, total_steps: int) -> pix2pix.Pix2Pix:
    """The GAN with both optimisers, built and compiled (call inside the strategy's scope)."""
    config = resolve_residual(config)
    model = pix2pix.Pix2Pix(size, config.ngf, config.ndf, config.lambda_l1, global_batch,
                            config.feature_matching, config.parts_weight, config.upsample,
                            config.detail_weight, config.ema, channels=input_channels(config), blend=config.blend,
                            residual=config.residual, smooth=config.smooth_correction)
    rate = config.learning_rate
    if config.lr_decay:
        rate = pix2pix.LinearDecay(config.learning_rate, total_steps, config.lr_decay)
    model.compile(
        pix2pix.make_optimizer(rate, config.beta_1, config.precision == "fp16", "g_adam", config.adam),
        pix2pix.make_optimizer(rate, config.beta_1, config.precision == "fp16", "d_adam", config.adam),
    )
    return model


def input_channels(config: TrainConfig) -> int:
    """Channels of the generator's input: the sketch, then the reference where the run uses one."""
    return 6 if config.reference == "bank" else 3


def make_checkpoint(model: pix2pix.Pix2Pix) -> tuple[tf.train.Checkpoint, tf.Variable, tf.Variable]:
    """Checkpoint of both networks, both optimisers, the generator's weight average (if kept), the
    step and whether BN was settled."""
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    settled = tf.Variable(False, trainable=False, name="settled")
    average = {"average": model.average} if model.average is not None else {}
    ckpt = tf.train.Checkpoint(generator=model.generator, discriminator=model.discriminator,
                               g_optimizer=model.g_optimizer, d_optimizer=model.d_optimizer,
                               step=step, settled=settled, **average)
    return ckpt, step, settled


def restore(ckpt: tf.train.Checkpoint, folder: str | Path, partial: bool = False) -> str:
    """Restore the newest readable checkpoint in ``folder`` (``partial``: some of its objects); an
    unreadable newer one gets one warning line, none readable a one-line error naming the newest."""
    state = tf.train.get_checkpoint_state(str(folder))
    bad: list[tuple[str, str]] = []
    for path in reversed(list(state.all_model_checkpoint_paths) if state else []):
        try:
            status = ckpt.restore(path)
            (status.expect_partial() if partial else status).assert_existing_objects_matched()
        except (AssertionError, ValueError, IndexError, tf.errors.OpError) as exc:  # IndexError: a short file
            bad.append((path, _first_line(exc)))
            continue
        if bad:
            log.warning("%s is unreadable (%s); using %s instead", bad[0][0], bad[0][1], path)
        return path
    if not bad:
        raise Face2FaceError(f"{folder}: no checkpoint")
    raise Face2FaceError(f"{bad[0][0]}: unreadable checkpoint ({bad[0][1]}), and no older one is readable")


def train(data_dir: str | Path, run_dir: str | Path, config: TrainConfig = TrainConfig(),
          progress: Callable[[int, int, dict[str, float]], None] | None = None,
          defaults: TrainConfig = TrainConfig(),
          on_checkpoint: Callable[[int, int | None], None] | None = None) -> TrainResult:
    """Train pix2pix on a dataset folder into a run folder; ``progress(step, total, losses)``;
    ``on_checkpoint(step, best step)`` on the chief after each checkpoint (best step: of the
    weights ``export`` takes now; None without held-back pairs).

    ``config.json`` records, and the log names, the options that differ from ``defaults`` (a
    caller with defaults of its own, like quickstart, passes them). A multi-worker run's other
    workers write nothing to their run folder (see ``face2face.train.distribute``).
    """
    check_train_config(config)
    run = Path(run_dir)
    config, defaults = resolve_residual(config, run), resolve_residual(defaults, run)
    reference = config.reference == "bank"
    if reference:
        ensure_references(data_dir)
    if config.swap_parts:
        ensure_swaps(data_dir)
    train_split, held = split_holdout(check_split(data_dir, "train", reference=reference), config.holdout)
    try:
        test_split = check_split(data_dir, "test", reference=reference)
    except Face2FaceError:
        log.warning("%s: no usable test split; samples come from the train split", data_dir)
        test_split = train_split
    chief = is_chief(config.strategy)
    manager_dir = run / CHECKPOINTS
    if chief and not config.resume and tf.train.latest_checkpoint(str(manager_dir)):
        raise Face2FaceError(f"{run}: already holds a run; pass --resume to continue it or choose another folder")
    if chief and config.resume:
        _check_resumable(run, train_split.size, config)

    _check_precision(config.precision)
    keras.utils.set_random_seed(config.seed)
    with _default_signals():  # a cluster forms holding Python's lock: let SIGINT end the process there
        strategy = make_strategy(config.strategy)
    # After the strategy: TensorFlow's preemption notifier took SIGTERM while the cluster formed.
    keras.mixed_precision.set_global_policy(POLICIES[config.precision])
    try:
        with _SignalFlag() as stop:
            return _train(run, data_dir, train_split, held, test_split, config, defaults, strategy, chief, stop,
                          progress, on_checkpoint)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def _train(run: Path, data_dir: str | Path, train_split: Split, held: Split | None, test_split: Split,
           config: TrainConfig, defaults: TrainConfig, strategy: tf.distribute.Strategy, chief: bool,
           stop: "_SignalFlag", progress: Callable[[int, int, dict[str, float]], None] | None,
           on_checkpoint: Callable[[int, int | None], None] | None) -> TrainResult:
    use_gpu = bool(tf.config.list_physical_devices("GPU"))
    xla = use_gpu if config.xla is None else config.xla
    total = resolve_steps(config, len(train_split.names))
    settle_steps = int(round(total * config.settle_fraction))
    with strategy.scope():
        model = build(config, train_split.size, config.batch_size, total)
        ckpt, step_var, settled = make_checkpoint(model)
    # The chief alone saves: the checkpoint holds no sync-on-read variables, so saving needs no collective.
    manager = tf.train.CheckpointManager(ckpt, str(run / CHECKPOINTS), max_to_keep=config.keep_checkpoints)
    resumed = restore(ckpt, manager.directory) if chief and config.resume else None
    keeper = _BestKeeper(run, model.generator, model.average, train_split, held, step_var, settled) \
        if chief and held else None
    multiworker = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
    step = 0
    try:
        if multiworker:
            share_from_chief(strategy, _state(model, step_var, settled), chief)
        start = step = int(step_var.numpy())
        if resumed or step:
            log.info("resumed %s at step %d", resumed or "the chief's checkpoint", step)
        if chief:
            _write_config(run, data_dir, config, defaults, total_steps=total, settle_steps=settle_steps,
                          size=train_split.size, strategy=strategy, xla=xla, train_pairs=len(train_split.names),
                          held_out_pairs=len(held.names) if held else 0,
                          threads=[tf.config.threading.get_intra_op_parallelism_threads(),
                                   tf.config.threading.get_inter_op_parallelism_threads()])  # 0: TensorFlow's
        ds = make_dataset(train_split, config.batch_size, True, config.seed, repeat=True, skip_batches=start,
                          warped=config.warp, swap=config.swap_parts)
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        batches = iter(strategy.experimental_distribute_dataset(ds.with_options(options)))
        step_fn = _step_function(model, strategy, xla)
        if bool(settled.numpy()):
            pix2pix.set_inference_normalization(model.generator, True)
        writer = tf.summary.create_file_writer(str(run / "logs")) if chief else tf.summary.create_noop_writer()
        samples = _sample_batch(test_split, config.samples)
        rate, started, lost = 0.0, None, False
        try:
            while step < total and stop.signum is None:
                if settle_steps and step >= total - settle_steps and not bool(settled.numpy()):
                    settle(model.generator, train_split, config.batch_size)
                    settled.assign(True)
                    step_fn = _step_function(model, strategy, xla)  # retrace: BN frozen, dropout off
                losses = {k: float(v) for k, v in step_fn(next(batches)).items()}
                step += 1
                step_var.assign(step)
                if started is None:
                    started = (time.perf_counter(), step)  # the first step includes tracing
                elif step > started[1]:
                    rate = (step - started[1]) / (time.perf_counter() - started[0])
                if progress:
                    progress(step, total, losses)
                if step % config.log_every == 0 or step == total:
                    _log_scalars(writer, model, step)
                if step % config.sample_every == 0 or step == total:
                    _write_samples(writer, run, model.generator, samples, step, chief)
                if step % config.checkpoint_every == 0 and step < total:
                    _save(manager, writer, step, chief)
                    if keeper:
                        keeper.score(step)
                    if on_checkpoint and chief:
                        on_checkpoint(step, keeper.scores.best if keeper else None)
        except PEER_ERRORS:
            lost = multiworker
            raise
        finally:
            # Leave the latest weights behind (end of training, a signal, an error), but not after a
            # lost peer: a step cut short by it may have updated some variables and not others.
            if not lost and (step > start or not manager.latest_checkpoint):
                _save(manager, writer, step, chief)
            if keeper and not lost and step == total:
                keeper.score(step)
    except PEER_ERRORS as exc:
        if not multiworker:
            raise
        if stop.signum is not None:  # the stop asked for while waiting on the peer comes first
            stop.abandon(stop.signum)
        raise Face2FaceError(lost_peer_message(exc, step, manager.latest_checkpoint, chief)) from None
    if stop.signum is not None:
        log.info("stopped by signal %d at step %d; checkpoint saved", stop.signum, step)
    peak = peak_gb()
    if chief and peak is not None:
        doc = json.loads((run / CONFIG).read_text())
        write_atomic(run / CONFIG, json.dumps({**doc, "peak_memory_gb": peak}, indent=2).encode())
    return TrainResult(step, total, stop.signum is not None, stop.signum, rate, manager.latest_checkpoint, peak)


def settle(generator, split: Split, batch_size: int = 1) -> None:
    """Re-estimate every batch norm's statistics over ``split`` (no jitter, dropout off), then freeze.

    Each layer's population statistics combine the per-batch ones: mean = E[m_b] and
    variance = E[v_b] + Var[m_b] (law of total variance), as the frozen layer will see them.
    """
    Settler(generator)(split, batch_size)


class Settler:
    """``settle`` for one generator, its statistics' graph traced once: a caller that settles the
    same generator again and again (``_BestKeeper``, at every checkpoint) does not retrace it."""

    def __init__(self, generator) -> None:
        self.generator = generator
        self.norms = pix2pix.batch_norms(generator)
        probe = keras.Model(generator.inputs, [bn.input for bn in self.norms])

        @tf.function
        def moments(x):
            feats = probe(x, training=True)
            return [tf.nn.moments(tf.cast(f, tf.float32), axes=[0, 1, 2]) for f in feats]

        self.moments = moments

    def __call__(self, split: Split, batch_size: int = 1) -> None:
        pix2pix.set_inference_normalization(self.generator, False)
        for layer in self.generator.layers:
            if isinstance(layer, pix2pix.Dropout):
                layer.enabled = False
        means = [[] for _ in self.norms]
        variances = [[] for _ in self.norms]
        for sketch, _ in make_dataset(split, batch_size, training=False):
            for i, (m, v) in enumerate(self.moments(sketch)):
                means[i].append(m.numpy())
                variances[i].append(v.numpy())
        for bn, m, v in zip(self.norms, means, variances):
            m, v = np.stack(m), np.stack(v)
            bn.moving_mean.assign(m.mean(axis=0))
            bn.moving_variance.assign(v.mean(axis=0) + m.var(axis=0))
        pix2pix.set_inference_normalization(self.generator, True)
        log.debug("settled %d batch-norm layers over %d %s pairs", len(self.norms), len(split.names), split.name)


class _BestKeeper:
    """On the chief: scores the generator as it would be exported on the held-back pairs
    (``face2face.train.holdout``) and keeps the best weights in ``RUN/best``.

    Before the settling phase, the weights are scored with batch-norm statistics re-estimated
    over a sample of the train split (as settling does), and those statistics are saved with
    them; the training state is restored afterwards. Always, as ``export`` does, the face's level
    is fitted first (``face2face.train.level``), and kept with the weights saved. With a weight average (``--ema``) the
    average is what is scored and kept, always with statistics re-estimated for it.
    """

    SAMPLE = 200  # train pairs the statistics are re-estimated over for a score before settling

    def __init__(self, run: Path, generator, average: pix2pix.WeightAverage | None, train_split: Split,
                 held: Split, step: tf.Variable, settled: tf.Variable) -> None:
        self.run, self.generator, self.average, self.settled = run, generator, average, settled
        every = math.ceil(len(train_split.names) / self.SAMPLE)
        self.sample = replace(train_split, names=train_split.names[::every])
        self.settle = Settler(generator)
        self.level = FaceLevel(train_split)  # the pairs export fits on too
        self.scorer = HoldoutScorer(held)
        previous = read_scores(run)
        self.scores = previous if previous and previous.held_out == self.scorer.names else Scores(self.scorer.names, {})
        self.manager = tf.train.CheckpointManager(tf.train.Checkpoint(generator=generator, step=step),
                                                  str(run / BEST), max_to_keep=1)

    def score(self, step: int) -> None:
        """Score the weights at ``step`` (once) and keep them if they are now the ones handed over
        (``Scores.best``: scores only ever come in step order, so the kept ones stay the choice)."""
        if step in self.scores.scores:
            return
        with self._as_exported():
            value = self.scorer.score(self.generator)
            self.scores.scores[step] = value
            if self.scores.best == step or not self.manager.latest_checkpoint:
                self.manager.save(checkpoint_number=step)
        self.scores.write(self.run)
        log.debug("step %d: face L1 %.4f on %d held-back pairs (handed over: %.4f at step %d)", step, value,
                  len(self.scorer.names), self.scores.scores[self.scores.best], self.scores.best)

    @contextmanager
    def _as_exported(self) -> Iterator[None]:
        settled = bool(self.settled.numpy())
        norms = pix2pix.batch_norms(self.generator)
        saved = [(bn.moving_mean.numpy(), bn.moving_variance.numpy()) for bn in norms]
        bias = self.generator.get_layer(OUTPUT_LAYER).bias
        trained_bias = bias.numpy()
        weights = self.average.swapped_into(self.generator.trainable_variables) if self.average else nullcontext()
        try:
            with weights:
                if not settled or self.average is not None:
                    self.settle(self.sample)
                self.level.fit(self.generator)
                yield
        finally:
            bias.assign(trained_bias)
            for bn, (mean, variance) in zip(norms, saved):
                bn.moving_mean.assign(mean)
                bn.moving_variance.assign(variance)
            pix2pix.set_inference_normalization(self.generator, settled)


def _step_function(model, strategy, xla: bool):
    inner = tf.function(model.train_step, jit_compile=xla)
    reduce = tf.distribute.ReduceOp.SUM  # per-replica losses are already divided by the global batch

    @tf.function
    def step(batch):
        values = strategy.run(inner, args=(batch,))
        return {k: strategy.reduce(reduce, v, axis=None) for k, v in values.items()}

    return step


def _state(model: pix2pix.Pix2Pix, step: tf.Variable, settled: tf.Variable) -> list:
    """Every checkpointed variable, in a fixed order."""
    average = [model.average.count, *model.average.weights] if model.average is not None else []
    return [*model.generator.variables, *model.discriminator.variables, *model.g_optimizer.variables,
            *model.d_optimizer.variables, *average, step, settled]


def _save(manager: tf.train.CheckpointManager, writer, step: int, chief: bool) -> None:
    """On the chief: a checkpoint at ``step``, and the logs up to it flushed (a crash keeps both)."""
    if chief:
        manager.save(checkpoint_number=step)
        writer.flush()


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


@contextmanager
def _default_signals() -> Iterator[None]:
    """Within ``with``: SIGINT and SIGTERM end the process at once (where setting handlers is allowed)."""
    previous = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, signal.SIG_DFL)
    except ValueError:  # not the main thread
        pass
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class _SignalFlag:
    """Within ``with``: SIGINT/SIGTERM set ``signum`` and the loop stops after its step and saves.

    Python runs a handler only once TensorFlow hands control back. A process blocked in
    TensorFlow (e.g. a collective waiting for a worker that hangs) would never stop, so a thread
    woken by the signal ends it (status 128 + signal, no checkpoint: the last one stands) when the
    handler has not run within ``grace`` seconds; as does a lost peer reported after the signal.
    """

    def __init__(self, grace: float = 5.0) -> None:
        self.signum: int | None = None
        self.grace = grace
        self._handled = threading.Event()
        self._previous: dict[int, object] = {}
        self._wakeup: tuple[int, int] | None = None
        self._previous_fd = -1
        self._thread: threading.Thread | None = None

    def _handle(self, signum, frame) -> None:
        self.signum = signum
        self._handled.set()

    def _watch(self, read: int) -> None:
        while data := os.read(read, 1):
            if data[0] in (signal.SIGINT, signal.SIGTERM) and not self._handled.wait(self.grace):
                self.abandon(data[0])
        os.close(read)

    def abandon(self, signum: int) -> None:
        """End the process now (status 128 + signal), without a checkpoint: a stop asked for while
        TensorFlow was waiting, which may have cut a step short."""
        log.error("stopped by signal %d while TensorFlow was waiting (for another worker?); "
                  "no checkpoint saved, the last one stands", signum)
        os._exit(128 + signum)

    def __enter__(self) -> "_SignalFlag":
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                return self
        read, write = os.pipe()
        os.set_blocking(write, False)
        self._previous_fd = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
        self._wakeup = (read, write)
        self._thread = threading.Thread(target=self._watch, args=(read,), name="signal-watch", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        if self._wakeup is not None:
            signal.set_wakeup_fd(self._previous_fd)
            self._handled.set()  # a pending watch returns at once
            os.close(self._wakeup[1])  # the watching thread reads the end and closes its side
            self._thread.join()
            self._wakeup = self._thread = None


def _check_precision(precision: str) -> None:
    """A one-line error for fp16 without a GPU; a warning for bf16 where neither the GPU nor the CPU
    computes it natively (it still trains, emulated, slower than fp32)."""
    gpu = bool(tf.config.list_physical_devices("GPU"))
    if precision == "fp16" and not gpu:
        raise Face2FaceError("--precision fp16 needs a GPU (float16 is slower than float32 on CPU); use fp32 or bf16")
    if precision == "bf16" and not gpu and not native_bf16():
        log.warning("--precision bf16: %s, so it runs emulated and slower than fp32", NO_BF16)


def _check_resumable(run: Path, size: int, config: TrainConfig) -> None:
    if not tf.train.latest_checkpoint(str(run / CHECKPOINTS)):
        raise Face2FaceError(f"{run}: nothing to resume (no checkpoint in {run / CHECKPOINTS})")
    saved = read_run_config(run)
    for key, now, absent in (("size", size, None), ("ngf", config.ngf, None), ("ndf", config.ndf, None),
                             ("upsample", config.upsample, "transpose"), ("ema", config.ema, 0.0),
                             ("reference", config.reference, "none"), ("blend", config.blend, False),
                             ("residual", config.residual, False),
                             ("smooth_correction", config.smooth_correction, 0.0)):
        # absent: the value in runs made before the option
        before = saved["resolved"]["size"] if key == "size" else saved["options"].get(key, absent)
        if before != now:
            raise Face2FaceError(f"{run}: cannot resume with {key} {now}; the run was trained with {before}")
    for key, absent in (("lambda_l1", LAMBDA_L1), ("feature_matching", 0.0), ("parts_weight", 0.0),
                        ("detail_weight", 0.0), ("warp", False), ("holdout", 0.0)):
        before = saved["options"].get(key, absent)  # runs made before the option: without it
        if before != getattr(config, key):
            log.warning("%s: resuming with %s %s; the run so far was trained with %s",
                        run, key, getattr(config, key), before)


def _write_config(run: Path, data_dir, config: TrainConfig, defaults: TrainConfig, **resolved) -> None:
    strategy = resolved.pop("strategy")
    changed = {f.name: getattr(config, f.name) for f in fields(config)
               if getattr(config, f.name) != getattr(defaults, f.name)}
    if changed:
        log.info("options differing from the defaults: %s", ", ".join(f"{k}={v}" for k, v in changed.items()))
    doc = {
        "data": str(Path(data_dir).resolve()),
        "options": asdict(config),
        "changed": changed,
        "resolved": {**resolved, "strategy": type(strategy).__name__,
                     "replicas": strategy.num_replicas_in_sync,
                     "devices": [d.name for d in tf.config.list_logical_devices() if d.device_type in ("GPU", "CPU")]},
    }
    run.mkdir(parents=True, exist_ok=True)
    write_atomic(run / CONFIG, json.dumps(doc, indent=2).encode())


def _log_scalars(writer, model, step: int) -> None:
    with writer.as_default(step=step):
        for name, metric in model.loss_metrics.items():
            tf.summary.scalar(f"loss/{name}", metric.result())
            metric.reset_state()


def _sample_batch(split: Split, count: int) -> tuple[np.ndarray, np.ndarray]:
    picks = np.linspace(0, len(split.names) - 1, min(count, len(split.names))).round().astype(int)
    photos = [cv2.cvtColor(cv2.imread(split.targets()[i]), cv2.COLOR_BGR2RGB).astype(np.float32) / 127.5 - 1.0
              for i in picks]
    return read_inputs(split, picks), np.stack(photos)


def _write_samples(writer, run: Path, generator, samples, step: int, chief: bool) -> None:
    """(sketch | reference | output | photo) rows (no reference column for a sketch-only
    generator), output from the exported graph (``training=False``)."""
    inputs, photos = samples
    outputs = np.asarray(generator(inputs, training=False), dtype=np.float32)
    shown = [inputs[..., i:i + 3] for i in range(0, inputs.shape[-1], 3)]
    rows = np.concatenate([*shown, outputs, photos], axis=2)  # [n, size, k*size, 3]
    rows = np.clip((rows + 1.0) * 127.5, 0, 255).round().astype(np.uint8)
    name = "sketch|reference|output|photo" if len(shown) > 1 else "sketch|output|photo"
    with writer.as_default(step=step):
        tf.summary.image(f"samples/{name}", rows, max_outputs=len(rows))
    if chief:
        (run / "samples").mkdir(parents=True, exist_ok=True)
        grid = cv2.cvtColor(np.concatenate(list(rows), axis=0), cv2.COLOR_RGB2BGR)
        cv2.imwrite(str(run / "samples" / f"step_{step:07d}.png"), grid)

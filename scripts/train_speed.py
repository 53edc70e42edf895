"""Training step cost: work per step of each network, steps/s, and how far a step is from this
machine's own matrix-multiply throughput on the same threads.

    python scripts/train_speed.py DATA [--ngf 32] [--ndf 64 32] [--precision fp32 bf16] [--xla off on]
                                       [--adam fused keras]
                                       [--upsample transpose resize] [--feature-matching 10] [--detail-weight 0 300]
                                       [--warmup 5] [--steps 30] [--json out.json] [--parts]

Work per step, counted from the layers' shapes (multiply-accumulates, GMAC): the generator runs
forward, then backward for its inputs and its weights (3 forwards' work); the discriminator runs
forward on the real and the fake pair (2), backward on both for its own update (4), and backward
on the fake pair again into the generator for the adversarial and feature-matching terms (1):
7 forwards' work. Achieved GFLOP/s counts 2 FLOP per MAC; the reference is a square matmul of
the same dtype measured in the same run. ``--parts`` also times the parts of a step alone: the
input pipeline, the generator's forward, its training alone (L1 only), the discriminator's
training alone (on two pairs) and the whole step.
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import time

import keras
import tensorflow as tf

from face2face.train import pix2pix
from face2face.train.data import make_dataset
from face2face.train.pairs import check_split
from face2face.train.trainer import POLICIES, TrainConfig, build, train
from face2face.train.options import REFERENCES
from face2face.train.references import ensure_references

G_PASSES, D_PASSES = 3, 7  # forwards' worth of work per step (see the docstring)


def forward_gmac(model: keras.Model) -> float:
    """Multiply-accumulates of one forward pass at batch 1, in billions (convolutions only)."""
    macs = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2DTranspose):  # every input pixel meets the whole kernel
            _, h, w, _ = layer.input.shape
            macs += h * w * layer.kernel.shape[0] * layer.kernel.shape[1] * layer.kernel.shape[3] * layer.filters
        elif isinstance(layer, keras.layers.Conv2D):
            _, h, w, _ = layer.output.shape
            macs += h * w * layer.kernel.shape[0] * layer.kernel.shape[1] * layer.kernel.shape[2] * layer.filters
    return macs / 1e9


def matmul_gflops(dtype: tf.DType, n: int = 2048, repeats: int = 10) -> float:
    """This machine's square-matmul throughput (GFLOP/s) in ``dtype`` on TensorFlow's threads."""
    a = tf.random.normal((n, n), dtype=tf.float32)
    a = tf.cast(a, dtype)
    run = tf.function(lambda x: tf.matmul(x, x))
    run(a).numpy()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run(a).numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def steps_per_second(data: str, config: TrainConfig, warmup: int, steps: int) -> float:
    """Steps/s of ``config`` after ``warmup`` steps (tracing), over ``steps`` steps."""
    stamps: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as run:
        train(data, run, config, progress=lambda s, t, l: stamps.__setitem__(s, time.perf_counter()))
    return steps / (stamps[warmup + steps] - stamps[warmup])


def part_seconds(data: str, config: TrainConfig, repeats: int = 40) -> dict[str, float]:
    """Seconds per step of each part of a training step, timed alone (batch 1)."""
    keras.mixed_precision.set_global_policy(POLICIES[config.precision])
    try:
        if config.reference == "bank":
            ensure_references(data)
        split = check_split(data, "train", check_sizes=False, reference=config.reference == "bank")
        batches = iter(make_dataset(split, 1, True, config.seed, repeat=True))
        for _ in split.names:  # the first pass decodes and caches every pair
            next(batches)
        start = time.perf_counter()
        pairs = [next(batches) for _ in range(repeats)]
        pipeline = (time.perf_counter() - start) / repeats
        model = build(config, split.size, 1, config.steps or 1)
        generator, features = model.generator, model.features

        def generator_alone(pair):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.abs(pair[1] - generator(pair[0], training=True)))
            weights = generator.trainable_variables
            model.g_optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights))
            return loss

        def discriminator_alone(pair):
            with tf.GradientTape() as tape:
                real = features([pair[0], pair[1]], training=True)[-1]
                fake = features([pair[0], 0.5 * pair[1]], training=True)[-1]
                loss = tf.reduce_mean(real) - tf.reduce_mean(fake)
            weights = model.discriminator.trainable_variables
            model.d_optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights))
            return loss

        parts = {"generator forward": lambda pair: generator(pair[0], training=True),
                 "generator training alone": generator_alone, "discriminator training alone": discriminator_alone,
                 "whole step": model.train_step}
        seconds = {"input pipeline": pipeline}
        for name, part in parts.items():
            run = tf.function(part)
            for pair in pairs[:3]:
                run(pair)
            start = time.perf_counter()
            for pair in pairs:
                out = run(pair)
            tf.nest.map_structure(lambda t: t.numpy(), out)
            seconds[name] = (time.perf_counter() - start) / repeats
        return seconds
    finally:
        keras.mixed_precision.set_global_policy("float32")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data")
    parser.add_argument("--ngf", type=int, nargs="+", default=[32])
    parser.add_argument("--ndf", type=int, nargs="+", default=[64])
    parser.add_argument("--precision", nargs="+", default=["fp32"], choices=("fp32", "bf16"))
    parser.add_argument("--xla", nargs="+", default=["off"], choices=("off", "on"))
    parser.add_argument("--upsample", nargs="+", default=["transpose"], choices=pix2pix.UPSAMPLING)
    parser.add_argument("--adam", nargs="+", default=["fused"], choices=tuple(pix2pix.ADAM),
                        help="Adam's update: one kernel per weight (fused), or Keras's element-wise ops")
    parser.add_argument("--feature-matching", type=float, nargs="+", default=[TrainConfig.feature_matching])
    parser.add_argument("--detail-weight", type=float, nargs="+", default=[TrainConfig.detail_weight])
    parser.add_argument("--reference", nargs="+", default=["bank"], choices=REFERENCES,
                        help="the generator reads the target's own pixels (bank) or the sketch alone (none)")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=1, help="repeat the whole grid, alternating (noisy machines)")
    parser.add_argument("--parts", action="store_true", help="also time the parts of a step alone")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()

    size = check_split(args.data, "train", check_sizes=False).size
    peak = {p: matmul_gflops(tf.float32 if p == "fp32" else tf.bfloat16) for p in args.precision}
    for p, value in peak.items():
        print(f"matmul {p}: {value:.0f} GFLOP/s on {tf.config.threading.get_intra_op_parallelism_threads() or 'all'} "
              f"threads")
    rows = []
    grid = list(itertools.product(args.ngf, args.ndf, args.precision, args.xla, args.upsample, args.feature_matching,
                                  args.detail_weight, args.adam, args.reference))
    for _, (ngf, ndf, precision, xla, upsample, fm, detail, adam, reference) in itertools.product(range(args.rounds), grid):
        channels = 6 if reference == "bank" else 3
        g = forward_gmac(pix2pix.build_generator(size, ngf, channels=channels))
        d = forward_gmac(pix2pix.build_discriminator(size, ndf, channels=channels))
        step_gmac = (G_PASSES * g + D_PASSES * d) * args.batch_size
        config = TrainConfig(steps=args.warmup + args.steps, ngf=ngf, ndf=ndf, upsample=upsample, feature_matching=fm,
                             detail_weight=detail, precision=precision, xla=xla == "on", adam=adam, reference=reference,
                             batch_size=args.batch_size, settle_fraction=0.0, checkpoint_every=10**9,
                             sample_every=10**9, log_every=10**9)
        rate = steps_per_second(args.data, config, args.warmup, args.steps)
        row = {"ngf": ngf, "ndf": ndf, "precision": precision, "xla": xla, "upsample": upsample, "feature_matching": fm,
               "detail_weight": detail, "adam": adam, "reference": reference, "batch_size": args.batch_size, "size": size,
               "generator_gmac": round(g, 3),
               "discriminator_gmac": round(d, 3), "step_gmac": round(step_gmac, 2),
               "discriminator_share": round(D_PASSES * d / (G_PASSES * g + D_PASSES * d), 3),
               "steps_per_s": round(rate, 3), "gflops": round(2 * step_gmac * rate, 1),
               "matmul_gflops": round(peak[precision], 1)}
        row["of_matmul"] = round(row["gflops"] / row["matmul_gflops"], 3)
        print(f"ngf {ngf} ndf {ndf} {precision} xla {xla} {upsample} fm {fm:g} detail {detail:g} "
              f"batch {args.batch_size} adam {adam} reference {reference}: "
              f"G {g:.2f} + D {d:.2f} GMAC/forward -> {step_gmac:.1f} GMAC/step "
              f"(D {100 * row['discriminator_share']:.0f}%), {rate:.2f} steps/s, {row['gflops']:.0f} GFLOP/s "
              f"= {100 * row['of_matmul']:.0f}% of matmul {precision}", flush=True)
        if args.parts:
            row["parts_ms"] = {k: round(1000 * v, 1) for k, v in part_seconds(args.data, config).items()}
            print("  parts, ms: " + ", ".join(f"{k} {v}" for k, v in row["parts_ms"].items()), flush=True)
        rows.append(row)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()

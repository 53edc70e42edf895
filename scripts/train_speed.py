"""Training speed (steps/s) of pix2pix at the dataset's size, batch 1: warm-up, then timed steps.

    python scripts/train_speed.py DATA [--ngf 64 32] [--ndf 64] [--feature-matching 10 0] [--warmup 5] [--steps 30]
"""

from __future__ import annotations

import argparse
import tempfile
import time

from face2face.train.trainer import TrainConfig, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data")
    parser.add_argument("--ngf", type=int, nargs="+", default=[64, 32])
    parser.add_argument("--ndf", type=int, default=64)
    parser.add_argument("--feature-matching", type=float, nargs="+", default=[TrainConfig.feature_matching])
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    for ngf, fm in ((n, f) for n in args.ngf for f in args.feature_matching):
        stamps: dict[int, float] = {}
        with tempfile.TemporaryDirectory() as run:
            config = TrainConfig(steps=args.warmup + args.steps, ngf=ngf, ndf=args.ndf, feature_matching=fm,
                                 settle_fraction=0.0, checkpoint_every=10**9, sample_every=10**9, log_every=10**9)
            train(args.data, run, config, progress=lambda s, t, l: stamps.__setitem__(s, time.perf_counter()))
        timed = stamps[args.warmup + args.steps] - stamps[args.warmup]
        print(f"ngf {ngf}, ndf {args.ndf}, feature matching {fm:g}: {args.steps / timed:.2f} steps/s "
              f"({1000 * timed / args.steps:.0f} ms/step), batch 1, {args.steps} steps after {args.warmup} warm-up")


if __name__ == "__main__":
    main()

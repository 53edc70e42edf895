"""Command-line entries of the offline side (no TensorFlow import until a command runs)."""

from __future__ import annotations

import argparse

from tqdm import tqdm


def add_commands(commands) -> None:
    """Register ``prepare`` (and the other offline commands) on the main parser."""
    from face2face.cli import add_detector_option

    p = commands.add_parser("prepare", help="turn target video(s) into a paired training dataset")
    p.add_argument("videos", nargs="+", metavar="VIDEO")
    p.add_argument("-o", "--output", required=True, metavar="DIR")
    p.add_argument("--every", type=int, default=1, help="keep every N-th frame (default 1)")
    p.add_argument("--size", type=int, default=256, help="crop size in px (default 256)")
    p.add_argument("--max-pairs", type=int, default=None, help="stop after this many pairs")
    p.add_argument("--test-fraction", type=float, default=0.2, help="last share of each video held out (default 0.2)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset in DIR")
    add_detector_option(p)
    p.set_defaults(handler=_prepare)


def _prepare(args: argparse.Namespace) -> int:
    from face2face.train.prepare import PrepareConfig, prepare

    config = PrepareConfig(
        every=args.every, size=args.size, max_pairs=args.max_pairs,
        test_fraction=args.test_fraction, detector=args.detector, overwrite=args.overwrite,
    )
    with tqdm(desc="prepare", unit="frame") as bar:
        def progress(done: int, total: int | None) -> None:
            bar.total = total
            bar.update(done - bar.n)

        manifest = prepare(args.videos, args.output, config, progress=progress)
    dropped = ", ".join(f"{k} {v}" for k, v in manifest["dropped"].items())
    print(
        f"{args.output}: {manifest['pairs']['train']} train + {manifest['pairs']['test']} test pairs "
        f"from {manifest['frames_read']} frames ({manifest['frames_per_second']} frames/s); dropped: {dropped}"
    )
    return 0

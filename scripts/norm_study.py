"""Inference normalisation study: per-image statistics vs moving averages, with and without settling.

Trains ``--steps`` x (1 - fraction) steps once, then continues that run two ways for the rest:
plain (moving averages never re-estimated) and settled (statistics re-estimated, then frozen).
Reports the test-split L1 (pixels in [0, 1]) and the ONNX CPU latency (median of 50 runs after
warm-up) of each graph.

    python scripts/norm_study.py DATA WORK [--steps 1200] [--ngf 32] [--fraction 0.1]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnxruntime as ort
import tensorflow as tf

from face2face.train import pix2pix
from face2face.train.data import make_dataset
from face2face.train.pairs import check_split
from face2face.train.export import load_generator, to_onnx
from face2face.train.trainer import TrainConfig, train


def test_l1(generator, data: str, mode: str) -> float:
    for bn in pix2pix.batch_norms(generator):
        bn.per_image = mode == "per-image"
    errors = []
    for sketch, photo in make_dataset(check_split(data, "test"), 1, training=False):
        out = generator(sketch, training=False)  # dropout off in every mode
        errors.append(float(tf.reduce_mean(tf.abs(out - photo))) / 2.0)  # [-1, 1] -> [0, 1] scale
    return float(np.mean(errors))


def latency_ms(generator, size: int, path: Path, runs: int = 50) -> float:
    path.write_bytes(to_onnx(generator, size).SerializeToString())
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).uniform(-1, 1, (1, size, size, 3)).astype(np.float32)
    for _ in range(5):
        session.run(None, {"sketch": x})
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        session.run(None, {"sketch": x})
        times.append(1000 * (time.perf_counter() - t))
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data")
    parser.add_argument("work")
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--ngf", type=int, default=32)
    parser.add_argument("--fraction", type=float, default=0.1)
    args = parser.parse_args()
    work = Path(args.work)
    base = TrainConfig(ngf=args.ngf, settle_fraction=0.0, checkpoint_every=10**9, sample_every=10**9)
    first = int(round(args.steps * (1 - args.fraction)))
    t = time.perf_counter()
    train(args.data, work / "common", replace(base, steps=first))
    print(f"common part: {first} steps in {time.perf_counter() - t:.0f} s", flush=True)
    for name, fraction in (("plain", 0.0), ("settled", args.fraction)):
        shutil.copytree(work / "common", work / name, dirs_exist_ok=True)
        train(args.data, work / name, replace(base, steps=args.steps, settle_fraction=fraction, resume=True))
    rows = []
    plain, _, _, _ = load_generator(work / "plain")
    settled, _, _, _ = load_generator(work / "settled")
    size = plain.input_shape[1]
    for label, gen, mode in (("per-image statistics (paper, batch 1)", plain, "per-image"),
                             ("moving averages, no settling", plain, "moving"),
                             ("moving averages, settled", settled, "moving")):
        l1 = test_l1(gen, args.data, mode)
        ms = latency_ms(gen, size, work / f"{mode}.onnx")
        rows.append({"variant": label, "steps": args.steps, "test_l1": round(l1, 4), "onnx_cpu_ms": round(ms, 1)})
        print(json.dumps(rows[-1]), flush=True)
    (work / "norm_study.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()

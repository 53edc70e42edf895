"""The held-out face where a model's int8 copy is furthest from fp32, as the frame layout shows it:
fp32 | int8 | the difference x10 | the frame layout's paste weights, one row, written to a PNG.

    python scripts/int8_worst.py work/model.onnx work/data worst.png

The figures printed are those ``face2face quantize`` records (face region and whole crop).
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

from face2face.runtime.generator import Generator
from face2face.train.pairs import check_split, read_images, spread
from face2face.train.prepare import read_landmarks
from face2face.train.quantize import HELD_OUT, face_weights, weighted_psnr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("data")
    parser.add_argument("out", help="PNG to write")
    args = parser.parse_args()
    fp32 = Generator(args.model, provider="cpu", announce=False)
    int8 = Generator(args.model, precision="int8", announce=False)
    test = check_split(args.data, "test", check_sizes=False, reference=fp32.info.input_channels == 6)
    picks = spread(HELD_OUT, len(test.names))
    points = dict(zip(*read_landmarks(test.root / "test")[:2]))
    rows = []
    for i, images in zip(picks, read_images(test, picks)):
        weights = face_weights(points[test.names[i]], fp32.info.size)
        a, b = fp32(*images).copy(), int8(*images).copy()
        rows.append((weighted_psnr(b, a, weights), weighted_psnr(b, a), test.names[i], a, b, weights))
    face, crop, name, a, b, weights = min(rows, key=lambda r: r[0])
    difference = np.clip(10 * np.abs(a.astype(int) - b.astype(int)), 0, 255).astype(np.uint8)
    mask = cv2.cvtColor((255 * weights).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    cv2.imwrite(args.out, np.concatenate([a, b, difference, mask], axis=1))
    print(f"{name}: face region {face:.1f} dB, whole crop {crop:.1f} dB (worst of {len(rows)} by the face region); "
          f"{args.out}: fp32 | int8 | difference x10 | paste weights")


if __name__ == "__main__":
    main()

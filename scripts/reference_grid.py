"""Where the face changes from its reference: (sketch | reference | output | photo) rows of the test
pairs whose mouth or eyes differ most between the reference and the photo (an open mouth over a
closed one, a blink, a glance), to see whether the generator follows the sketch there or copies.

    python scripts/reference_grid.py work/model.onnx work/data -o grid.png [--rows 6] [--json out.json]
"""

from __future__ import annotations

import argparse
import json

import cv2
import numpy as np

from face2face.runtime.generator import Generator
from face2face.train.prepare import read_landmarks

PARTS = {"mouth": slice(48, 68), "eyes": slice(36, 48)}


def part_error(a: np.ndarray, b: np.ndarray, points: np.ndarray, part: slice) -> float:
    """Mean absolute difference (grey levels) of two crops inside a part's hull, widened by 4 px."""
    mask = np.zeros(a.shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(points[part]).astype(np.int32)), 1)
    mask = cv2.dilate(mask, np.ones((9, 9), np.uint8))
    return float(np.mean(cv2.mean(cv2.absdiff(a, b), mask)[:3]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("data")
    parser.add_argument("-o", "--output", required=True)
    parser.add_argument("--rows", type=int, default=6, help="rows per part (mouth, eyes)")
    parser.add_argument("--json", help="per-row figures")
    args = parser.parse_args()
    generator = Generator(args.model, provider="cpu", announce=False)
    if generator.bank is None:
        raise SystemExit(f"{args.model}: reads the sketch alone (no reference bank)")
    folder = f"{args.data}/test"
    names, points, _ = read_landmarks(folder)
    found = []
    for i, name in enumerate(names):
        sketch = cv2.imread(f"{folder}/input/{name}.png")
        photo = cv2.imread(f"{folder}/target/{name}.png")
        reference = generator.reference(points[i]).copy()
        output = generator(sketch, reference).copy()
        row = {"name": name}
        for part, where in PARTS.items():
            row[f"{part}_reference_vs_photo"] = part_error(reference, photo, points[i], where)
            row[f"{part}_output_vs_photo"] = part_error(output, photo, points[i], where)
        found.append((row, np.concatenate([sketch, reference, output, photo], axis=1)))
    rows, picked = [], []
    for part in PARTS:
        ranked = sorted(found, key=lambda f: -f[0][f"{part}_reference_vs_photo"])
        for row, image in ranked[: args.rows]:
            if row["name"] not in picked:
                picked.append(row["name"])
                rows.append((row, image))
    cv2.imwrite(args.output, np.concatenate([image for _, image in rows], axis=0))
    figures = [row for row, _ in rows]
    for row in figures:
        print(f"{row['name']}: mouth {row['mouth_reference_vs_photo']:.1f} -> {row['mouth_output_vs_photo']:.1f}, "
              f"eyes {row['eyes_reference_vs_photo']:.1f} -> {row['eyes_output_vs_photo']:.1f} grey levels "
              "(reference -> output, against the photo)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)


if __name__ == "__main__":
    main()

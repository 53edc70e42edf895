"""What a real face a moment later scores: each photo of a dataset split against the real photo
``--gap`` frames later, aligned to it by their landmarks (a similarity transform), scored inside
the face's outline with ``evaluate``'s own figures (face L1 and SSIM, sharpness, detail match).

A generator sees only the sketch; detail the sketch does not fix (a glance, a blink, the lids'
exact edge) differs from frame to frame, so the real face of a neighbouring frame is a yardstick
for how much of the photo's detail can be reproduced in place at all, and for what sharp but
not exactly placed detail does to the pixel figures.

    python scripts/detail_ceiling.py DATA [--split test] [--gap 1 3] [--every 3] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from face2face.runtime.background import face_outline
from face2face.train.evaluate import detail_match, detail_responses, face_figures, outline_mask, sharpness, ssim_map
from face2face.train.prepare import read_landmarks


def neighbour_scores(data: Path, split: str, gap: int, every: int) -> dict[str, float]:
    """Mean face L1, face SSIM, sharpness and detail match of each ``every``-th photo's neighbour
    ``gap`` frames later, aligned to it, scored against it as ``evaluate`` scores an output."""
    folder = data / split
    names, points, _ = read_landmarks(folder)
    rows = []
    for i in range(0, len(names) - gap, every):
        photo = cv2.imread(str(folder / "target" / f"{names[i]}.png"))
        later = cv2.imread(str(folder / "target" / f"{names[i + gap]}.png"))
        if photo is None or later is None:
            raise SystemExit(f"{folder}: pair {names[i]} or {names[i + gap]} is missing its photo")
        matrix, _ = cv2.estimateAffinePartial2D(points[i + gap], points[i])
        h, w = photo.shape[:2]
        aligned = cv2.warpAffine(later, matrix, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        outline = face_outline(points[i])
        a, b = aligned.astype(np.float64) / 255.0, photo.astype(np.float64) / 255.0
        detail, real = detail_responses(aligned, outline), detail_responses(photo, outline)
        rows.append((*face_figures(np.abs(a - b), ssim_map(a, b), outline_mask(outline, (h, w))),
                     sharpness(detail.amplitude, real.amplitude), detail_match(detail, real)))
    means = np.mean(np.asarray(rows, np.float64), axis=0)
    return {"pairs": len(rows), "face_l1": means[0], "face_ssim": means[1], "sharpness": means[2], "detail_match": means[3]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="dataset folder made by `face2face prepare` (every frame: --every 1)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--gap", type=int, nargs="+", default=[1, 3], help="frames between the photo and its neighbour")
    parser.add_argument("--every", type=int, default=3, help="score every N-th photo")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args()
    report = {}
    for gap in args.gap:
        scores = report[f"gap {gap}"] = neighbour_scores(args.data, args.split, gap, args.every)
        print(f"{args.data} {args.split}, the real photo {gap} frame(s) later, aligned ({scores['pairs']} pairs): "
              f"face L1 {scores['face_l1']:.4f}, face SSIM {scores['face_ssim']:.3f}, "
              f"sharpness {scores['sharpness']:.3f}, detail match {scores['detail_match']:.3f}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

"""The drivers' range of each coverage feature (``face2face.coverage.DRIVERS``): every frame of the
shared driver clips with a face, its 68 landmarks and pupils, each clip from its own neutral
(``from_neutral``), pooled; prints the 5th and 95th percentiles per feature.

    python scripts/driver_ranges.py ../shared/data/videos
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from face2face.coverage import FEATURES, features, from_neutral
from face2face.faces import FaceAnalyzer
from face2face.pupils import find_pupils
from face2face.video import VideoSource

DRIVERS = ("lp_d3", "lp_d12", "lp_d18", "tpsmm_driving", "vr_4")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("videos", help="the shared videos folder")
    args = parser.parse_args()
    analyzer = FaceAnalyzer()
    clips = []
    for name in DRIVERS:
        rows = []
        with VideoSource(str(Path(args.videos) / f"{name}.mp4")) as video:
            for frame in video:
                faces = analyzer.analyze(frame)
                if faces:
                    points = faces[0].landmarks
                    rows.append(features(points, find_pupils(frame, points)))
        clips.append(from_neutral(np.array(rows)))  # each driver from their own neutral
    values = np.concatenate(clips)
    print(f"{len(values)} frames of {', '.join(DRIVERS)}")
    for i, feature in enumerate(FEATURES):
        column = values[:, i][np.isfinite(values[:, i])]
        print(f"{feature:8s} p5 {np.percentile(column, 5):7.3f}  p95 {np.percentile(column, 95):7.3f}  "
              f"(p1 {np.percentile(column, 1):.3f}, p99 {np.percentile(column, 99):.3f}; {len(column)} frames)")


if __name__ == "__main__":
    main()

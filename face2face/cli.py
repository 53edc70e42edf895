"""`face2face <command>`: parses arguments, builds configs, calls the library; nothing more."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

import cv2

from face2face import __version__
from face2face.errors import Face2FaceError

log = logging.getLogger("face2face")


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 user error, 130 interrupted)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s" if args.verbose else "%(message)s",
    )
    if not args.verbose:
        for noisy in ("tf2onnx", "tensorflow", "absl"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return int(args.handler(args) or 0)
    except Face2FaceError as exc:
        print(f"face2face: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("face2face: interrupted", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    """The full command-line parser, every side's commands included."""
    from face2face.runtime import cli as runtime_cli
    from face2face.train import cli as train_cli

    parser = argparse.ArgumentParser(
        prog="face2face", description="Learn a target face from a video, then drive it live from a webcam."
    )
    parser.add_argument("--version", action="version", version=f"face2face {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("detect", help="find faces and their 68 landmarks in a photo")
    p.add_argument("image")
    add_detector_option(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--draw", metavar="OUT.png", help="write the photo with boxes and landmarks")
    p.set_defaults(handler=_detect)

    p = commands.add_parser("models", help="list or download weight files")
    sub = p.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="where each weight file is found").set_defaults(handler=_models_list)
    f = sub.add_parser("fetch", help="download weight files into the user cache (sha256-checked)")
    f.add_argument("names", nargs="*", metavar="NAME", help="default: every downloadable one")
    f.add_argument("--dest", help="folder to write into (default: the user cache)")
    f.set_defaults(handler=_models_fetch)

    train_cli.add_commands(commands)
    runtime_cli.add_commands(commands)
    return parser


def add_detector_option(parser: argparse.ArgumentParser) -> None:
    """The shared ``--detector`` option."""
    from face2face.detectors import detector_names

    parser.add_argument("--detector", default="ssd", choices=detector_names(), help="face detector (default: ssd)")


def read_image(path: str):
    """An ``HxWx3 uint8 BGR`` image from a file, or a one-line error."""
    if not Path(path).is_file():
        raise Face2FaceError(f"{path}: no such file")
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise Face2FaceError(f"{path}: not an image OpenCV can read")
    return image


def _detect(args) -> int:
    from face2face.faces import FaceAnalyzer

    image = read_image(args.image)
    faces = FaceAnalyzer(args.detector).analyze(image)
    result = {
        "image": args.image,
        "width": image.shape[1],
        "height": image.shape[0],
        "faces": [
            {
                "box": [round(float(v), 1) for v in f.box],
                "score": round(f.score, 4),
                "landmarks": [[round(float(x), 1), round(float(y), 1)] for x, y in f.landmarks],
            }
            for f in faces
        ],
    }
    if args.draw:
        _draw_faces(image, faces, args.draw)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.image}: {len(faces)} face(s)")
        for f in result["faces"]:
            print(f"  box {f['box']} score {f['score']}")
    return 0


def _draw_faces(image, faces, out: str) -> None:
    for f in faces:
        x, y, w, h = (int(round(v)) for v in f.box)
        cv2.rectangle(image, (x, y), (x + w, y + h), (0, 255, 0), 2)
        cv2.putText(image, f"{f.score:.2f}", (x, max(y - 6, 12)), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 255, 0), 2)
        for px, py in f.landmarks:
            cv2.circle(image, (int(round(px)), int(round(py))), 2, (0, 0, 255), -1)
    if not cv2.imwrite(out, image):
        raise Face2FaceError(f"{out}: cannot write the image")


def _models_list(args) -> int:
    from face2face import assets

    for name, asset in assets.ASSETS.items():
        places = assets.candidates(name)
        found = next(((src, p) for src, p in places if p.is_file()), None)
        where = f"{found[1]} ({found[0]})" if found else "MISSING" + (
            f" - run `face2face models fetch {name}`" if asset.url else "")
        print(f"{name:12s} {asset.description}\n{'':12s} {where}")
    return 0


def _models_fetch(args) -> int:
    from tqdm import tqdm

    from face2face import assets

    names = args.names or [n for n, a in assets.ASSETS.items() if a.url]
    for name in names:
        asset = assets.get_asset(name)
        with tqdm(desc=name, unit="B", unit_scale=True, unit_divisor=1024) as bar:
            def progress(done: int, total: int | None) -> None:
                bar.total = total
                bar.update(done - bar.n)

            path = assets.fetch(name, Path(args.dest) if args.dest else None, progress=progress)
        print(f"{asset.name}: {path} (sha256 verified)" if asset.sha256 else f"{asset.name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

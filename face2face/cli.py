"""`face2face <command>`: parses arguments, builds configs, calls the library; nothing more."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Callable

from face2face import __version__
from face2face.console import console
from face2face.errors import Face2FaceError
from face2face.files import writable_file, write_atomic
from face2face.memory import report_peak
from face2face.progress import report as report_progress


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 user error, 130 interrupted)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    # --verbose and --quiet are read before any library loads: the libraries' log settings depend on them.
    flags, _ = _output_parser().parse_known_args(argv)
    with console(flags.verbose, flags.quiet):
        args = build_parser().parse_args(argv)
        status = 1  # where the command raises something else
        try:
            status = int(args.handler(args) or 0)
        except Face2FaceError as exc:
            print(f"face2face: error: {exc}", file=sys.stderr)
        except KeyboardInterrupt:
            print("face2face: interrupted", file=sys.stderr)
            status = 130
        finally:
            report_peak()  # to a parent that ran this command apart (face2face.memory)
            report_progress("exit", status=status)  # to a program watching it (face2face.progress)
        return status


class HelpFormatter(argparse.HelpFormatter):
    """Shows the default of an option that takes a value after its help, unless the help speaks of it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        no_value = not action.option_strings or action.nargs == 0 or action.default in (None, argparse.SUPPRESS)
        if no_value or "default" in text:
            return text
        return f"{text} (default %(default)s)"


def _output_parser() -> argparse.ArgumentParser:
    """The options every command takes (read on their own before the full parser is built)."""
    parser = argparse.ArgumentParser(prog="face2face", add_help=False, allow_abbrev=False)
    add_output_options(parser)
    return parser


def add_output_options(parser: argparse.ArgumentParser, default=False) -> None:
    """``--verbose`` and ``--quiet`` (``default=argparse.SUPPRESS`` on commands: the top level's value stands)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-v", "--verbose", action="store_true", default=default,
                       help="also debug lines and the libraries' own log output")
    group.add_argument("-q", "--quiet", action="store_true", default=default,
                       help="only warnings, errors and results: no progress")


def add_command(commands, name: str, summary: str, description: str | None = None) -> argparse.ArgumentParser:
    """A command: its one-line summary, a description (the summary unless given), defaults shown
    in its help, and ``--verbose`` / ``--quiet``."""
    parser = commands.add_parser(name, help=summary, description=description or f"{summary[0].upper()}{summary[1:]}.",
                                 formatter_class=HelpFormatter)
    add_output_options(parser, default=argparse.SUPPRESS)
    return parser


def _number(kind: type, text: str, ok: Callable[[float], bool], what: str):
    """``text`` as ``kind`` if finite and ``ok``; else argparse's usage error saying what was expected."""
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or not ok(value):
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    return _number(int, text, lambda v: v >= 1, "an integer of at least 1")


def non_negative_int(text: str) -> int:
    """An argparse type: an integer of at least 0."""
    return _number(int, text, lambda v: v >= 0, "an integer of at least 0")


def positive_float(text: str) -> float:
    """An argparse type: a number above 0."""
    return _number(float, text, lambda v: v > 0, "a number above 0")


def non_negative_float(text: str) -> float:
    """An argparse type: a number of at least 0."""
    return _number(float, text, lambda v: v >= 0, "a number of at least 0")


def fraction(text: str) -> float:
    """An argparse type: a share in [0, 1)."""
    return _number(float, text, lambda v: 0 <= v < 1, "a number in [0, 1)")


def image_size(text: str) -> int:
    """An argparse type: a crop / generator side in px, a power of two from 16 to 1024 (the U-Net
    halves it down to 1 px)."""
    return _number(int, text, lambda v: 16 <= v <= 1024 and v & (v - 1) == 0, "a power of two from 16 to 1024")


def frame_side(text: str) -> int:
    """An argparse type: an output frame side in px, 16 to 7680."""
    return _number(int, text, lambda v: 16 <= v <= 7680, "an integer from 16 to 7680")


def opset(text: str) -> int:
    """An argparse type: an ONNX opset that tf2onnx writes and the runtime reads, 13 to 18."""
    return _number(int, text, lambda v: 13 <= v <= 18, "an integer from 13 to 18")


def build_parser() -> argparse.ArgumentParser:
    """The full command-line parser, every side's commands included."""
    from face2face.runtime import cli as runtime_cli
    from face2face.studio import cli as studio_cli
    from face2face.train import cli as train_cli

    parser = argparse.ArgumentParser(
        prog="face2face", formatter_class=HelpFormatter,
        description="Learn a target face from a video, then drive it live from a webcam. "
                    "`face2face COMMAND --help` describes each command.",
    )
    parser.add_argument("--version", action="version", version=f"face2face {__version__}")
    add_output_options(parser)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = add_command(commands, "doctor", "what this machine can run: libraries, engines, cameras, virtual camera, "
                    "display; each missing piece with its fix")
    p.set_defaults(handler=_doctor)

    p = add_command(commands, "detect", "find faces and their 68 landmarks in a photo")
    p.add_argument("image", metavar="IMAGE", help="photo to analyse (any format OpenCV reads)")
    add_detector_option(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--draw", metavar="OUT.png", help="write the photo with boxes and landmarks")
    p.set_defaults(handler=_detect)

    p = add_command(commands, "models", "list or download weight files")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    add_command(sub, "list", "where each weight file is found").set_defaults(handler=_models_list)
    f = add_command(sub, "fetch", "download weight files into the user cache (sha256-checked)")
    f.add_argument("names", nargs="*", metavar="NAME", help="weight files to fetch (default: every downloadable one)")
    f.add_argument("--dest", metavar="DIR", help="folder to write into (default: the user cache)")
    f.set_defaults(handler=_models_fetch)

    train_cli.add_commands(commands)
    runtime_cli.add_commands(commands)
    studio_cli.add_commands(commands)
    return parser


def add_detector_option(parser: argparse.ArgumentParser) -> None:
    """The shared ``--detector`` option."""
    from face2face.detectors import detector_names

    parser.add_argument("--detector", default="ssd", choices=detector_names(),
                        help="face detector: ssd (OpenCV's SSD), yunet (`face2face models fetch yunet`), hog (dlib's)")


def add_shape_limit_option(parser: argparse.ArgumentParser) -> None:
    """The shared ``--shape-limit`` option (``relative`` retargeting)."""
    from face2face.shapes import DEFAULT_LIMIT

    parser.add_argument("--shape-limit", type=non_negative_float, default=DEFAULT_LIMIT, metavar="SIGMAS",
                        help="relative mode: hold the sketch within this many standard deviations of the target's "
                             "own face shapes, so a head turn or grimace the target never made does not come out "
                             "doubled and smeared (higher = more of the driver's expression, 0 = off)")


def _doctor(args) -> int:
    from face2face.doctor import report

    print(report())
    return 0


def read_image(path: str):
    """An ``HxWx3 uint8 BGR`` image from a file, or a one-line error."""
    import cv2

    if Path(path).is_dir():
        raise Face2FaceError(f"{path}: is a folder; give one photo (png, jpg, ...)")
    if not Path(path).is_file():
        raise Face2FaceError(f"{path}: no such file")
    image = cv2.imread(path, cv2.IMREAD_COLOR)  # grey, alpha and 16-bit photos come as 8-bit BGR
    if image is None:
        raise Face2FaceError(f"{path}: not an image OpenCV can read (empty, truncated or another kind of file)")
    return image


def _detect(args) -> int:
    from face2face.faces import FaceAnalyzer

    image = read_image(args.image)
    if args.draw:
        writable_image(args.draw)
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
    import cv2

    for f in faces:
        x, y, w, h = (int(round(v)) for v in f.box)
        cv2.rectangle(image, (x, y), (x + w, y + h), (0, 255, 0), 2)
        cv2.putText(image, f"{f.score:.2f}", (x, max(y - 6, 12)), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 255, 0), 2)
        for px, py in f.landmarks:
            cv2.circle(image, (int(round(px)), int(round(py))), 2, (0, 0, 255), -1)
    write_atomic(out, cv2.imencode(Path(out).suffix, image)[1].tobytes())


def writable_image(path: str) -> Path:
    """``path`` if an image can be written there in the format its extension names, else a one-line error."""
    import cv2

    target = writable_file(path)
    if not cv2.haveImageWriter(path):
        raise Face2FaceError(f"{path}: no image format for {target.suffix or 'a name without extension'}; "
                             "use .png or .jpg")
    return target


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
    from face2face import assets
    from face2face.console import Counter

    names = args.names or [n for n, a in assets.ASSETS.items() if a.url]
    for name in names:
        asset = assets.get_asset(name)
        with Counter(name, "B", unit_scale=True, unit_divisor=1024) as progress:
            path = assets.fetch(name, Path(args.dest) if args.dest else None, progress=progress)
        print(f"{asset.name}: {path} (sha256 verified)" if asset.sha256 else f"{asset.name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Bad input, table-driven: every command, real files made here, the real CLI.

The convention checked (face2face/cli.py ``main``):

- exit 2: a usage error found by argparse (an option out of its range, a missing argument). argparse
  prints its usage lines, then ONE error line ``face2face CMD: error: argument --OPT: ...`` naming
  the option and what it must be; that last line is "the one line".
- exit 1: any other bad input. stderr is exactly one line, ``face2face: error: PATH-or-OPTION: what
  is wrong; what to do`` (after the progress bar of work that had begun, such as the frames a
  faceless video was searched through).
- never a traceback, and never a partial output: the output path a failed command was given does
  not exist afterwards.

Some inputs look odd but are fine, and the table says so (exit 0): a grey, RGBA, 16-bit, 4K or
tiny photo is read as 8-bit BGR; a photo with no face, several faces or a face cut by the edge is
reported as what it is; a phone video with rotation metadata is read upright.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from face2face import cli
from face2face.cli import build_parser, main
from face2face.console import QUIET_LIBRARIES
from face2face.modelfile import sidecar_path
from face2face.video import VideoSource

from conftest import IMAGES, VIDEOS

PROGRESS = re.compile(r"^\w+: +\d+%\|")  # a progress bar's redraws (work had begun: the frames were read)
UNWRITABLE = "/proc"  # a folder where no one, root included, can create a file


@dataclass(frozen=True)
class Case:
    """One bad (or odd but fine) input: ``argv`` with ``{name}`` fields filled from the ``files``
    fixture and ``{out}`` a fresh path that must not exist after a failure."""

    argv: str
    status: int  # 0 fine, 1 bad input, 2 usage error
    says: str  # in the error line (stdout for status 0)
    why: str = ""  # for status 0: why the input is fine


CASES: dict[str, Case] = {
    # detect: photos
    "detect missing file": Case("detect {tmp}/gone.png", 1, "gone.png: no such file"),
    "detect folder": Case("detect {folder}", 1, "is a folder; give one photo"),
    "detect empty file": Case("detect {empty_png}", 1, "empty.png: not an image OpenCV can read"),
    "detect truncated png": Case("detect {cut_png}", 1, "cut.png: not an image OpenCV can read"),
    "detect text file": Case("detect {text_png}", 1, "notes.png: not an image"),
    "detect grey photo": Case("detect {grey_png}", 0, "1 face(s)", "read as BGR"),
    "detect RGBA photo": Case("detect {rgba_png}", 0, "1 face(s)", "alpha dropped"),
    "detect 16-bit photo": Case("detect {deep_png}", 0, "1 face(s)", "scaled to 8 bits"),
    "detect 4K photo": Case("detect {big_jpg}", 0, "1 face(s)", "the detector scales it down"),
    "detect tiny photo": Case("detect {tiny_png}", 0, "0 face(s)", "too small to hold a face: none found"),
    "detect no face": Case("detect {coffee}", 0, "0 face(s)", "a count of 0 is the answer"),
    "detect several faces": Case("detect {two}", 0, "2 face(s)", "every face is reported"),
    "detect face at the edge": Case("detect {edge_png}", 0, "face(s)", "clipped box, or dropped if mostly outside"),
    "detect --draw unknown format": Case("detect {face} --draw {out}.xyz", 1, "no image format for .xyz"),
    "detect --draw into a missing folder": Case("detect {face} --draw {tmp}/none/{out}.png", 1, "does not exist"),
    "detect --draw onto a folder": Case("detect {face} --draw {folder}", 1, "is a folder; give a file name"),
    "detect --draw where nothing can be written": Case(f"detect {{face}} --draw {UNWRITABLE}/x.png", 1,
                                                       "cannot write in /proc"),
    # prepare: videos
    "prepare missing video": Case("prepare {tmp}/gone.mp4 -o {out}", 1, "gone.mp4: no such video file"),
    "prepare empty video": Case("prepare {empty_mp4} -o {out}", 1, "empty.mp4: not a readable video"),
    "prepare truncated video": Case("prepare {cut_mp4} -o {out}", 1, "cut.mp4: not a readable video"),
    "prepare text file": Case("prepare {text_mp4} -o {out}", 1, "notes.mp4: not a readable video"),
    "prepare folder as video": Case("prepare {folder} -o {out}", 1, "not a video file"),
    "prepare tiny video": Case("prepare {tiny_mp4} -o {out}", 1, "tiny.mp4: no usable face"),
    "prepare video without a face": Case("prepare {cup_mp4} -o {out}", 1, "no_face 4"),
    "prepare video with two faces": Case("prepare {two_mp4} -o {out}", 1, "several_faces 4"),
    "prepare grey video": Case("prepare {grey_mp4} -o {out} --size 64", 0, "3 train + 1 test pairs", "decoded as BGR"),
    "prepare rotated phone video": Case("prepare {phone_mp4} -o {out} --size 64", 0, "3 train + 1 test pairs", "read upright"),
    "prepare 4K video": Case("prepare {big_mp4} -o {out} --size 64", 0, "3 train + 1 test pairs", "the detector scales it down"),
    "prepare output is a file": Case("prepare {face_mp4} -o {text_mp4}", 1, "exists and is not a folder"),
    "prepare output under a file": Case("prepare {face_mp4} -o {text_mp4}/d", 1, "is not a folder"),
    "prepare output unwritable": Case(f"prepare {{face_mp4}} -o {UNWRITABLE}/data", 1, "cannot write in /proc"),
    "prepare --size -5": Case("prepare {face_mp4} -o {out} --size -5", 2, "--size: must be a power of two"),
    "prepare --size 100": Case("prepare {face_mp4} -o {out} --size 100", 2, "--size: must be a power of two"),
    "prepare --every 0": Case("prepare {face_mp4} -o {out} --every 0", 2, "--every: must be an integer of at least 1"),
    "prepare --test-fraction 1": Case("prepare {face_mp4} -o {out} --test-fraction 1", 2, "--test-fraction"),
    "prepare --max-pairs abc": Case("prepare {face_mp4} -o {out} --max-pairs abc", 2, "--max-pairs"),
    # quickstart
    "quickstart missing video": Case("quickstart {tmp}/gone.mp4 -o {out}", 1, "gone.mp4: no such video file"),
    "quickstart four-frame video": Case("quickstart {face_mp4} -o {out}", 1, "4 frames to learn from (--every 1); "
                                        "quickstart needs at least 24"),
    "quickstart photo named .mp4": Case("quickstart {photo_mp4} -o {out}", 1, "1 frame to learn from"),
    "quickstart output is a file": Case("quickstart {face_mp4} -o {text_mp4}", 1, "exists and is not a folder"),
    "quickstart --steps 0": Case("quickstart {face_mp4} -o {out} --steps 0", 2, "--steps: must be an integer"),
    # train: dataset folders
    "train missing dataset": Case("train {tmp}/gone -o {out}", 1, "no such dataset folder"),
    "train empty folder": Case("train {folder} -o {out}", 1, "not a complete dataset"),
    "train file as dataset": Case("train {text_mp4} -o {out}", 1, "no such dataset folder"),
    "train run folder as dataset": Case("train {run} -o {out}", 1, "not a complete dataset"),
    "train broken manifest": Case("train {bad_data} -o {out}", 1, "manifest.json: unreadable"),
    "train output is a file": Case("train {data} -o {text_mp4}", 1, "exists and is not a folder"),
    "train --batch-size 0": Case("train {data} -o {out} --batch-size 0", 2, "--batch-size"),
    "train --epochs nan": Case("train {data} -o {out} --epochs nan", 2, "--epochs: must be a number above 0"),
    "train --settle-fraction 1.5": Case("train {data} -o {out} --settle-fraction 1.5", 2, "--settle-fraction"),
    "train --ema 1": Case("train {data} -o {out} --ema 1", 2, "--ema: must be a number in [0, 1)"),
    "train --ema without held-back pairs": Case("train {data} -o {out} --ema 0.999 --holdout 0", 1,
                                                "--ema needs held-back pairs (--holdout above 0)"),
    # export: run folders
    "train --residual without the bank": Case("train {data} -o {out} --reference none --residual", 1,
                                              "--residual corrects the reference: it needs --reference bank"),
    "train --residual with --blend": Case("train {data} -o {out} --blend --residual", 1, "give --blend or --residual, not both"),
    "train --smooth-correction without the correction": Case("train {data} -o {out} --no-residual --smooth-correction 1.5", 1,
                                                             "--smooth-correction blurs the reference's correction: it needs --residual"),
    "train --smooth-correction below 0": Case("train {data} -o {out} --smooth-correction -1", 1,
                                              "--smooth-correction must be 0 or more, got -1.0"),
    "train --swap-parts without the bank": Case("train {data} -o {out} --reference none --swap-parts 0.3", 1,
                                                "--swap-parts swaps parts of the reference: it needs --reference bank"),
    "train --swap-parts 1": Case("train {data} -o {out} --swap-parts 1", 2, "--swap-parts: must be a number in [0, 1)"),
    "export missing run": Case("export {tmp}/gone -o {out}.onnx", 1, "not a training run folder"),
    "export dataset as run": Case("export {data} -o {out}.onnx", 1, "no config.json; not a training run folder"),
    "export into a missing folder": Case("export {run} -o {tmp}/none/{out}.onnx", 1, "does not exist"),
    "export onto a folder": Case("export {run} -o {folder}", 1, "is a folder; give a file name"),
    "export --opset 5": Case("export {run} -o {out}.onnx --opset 5", 2, "--opset: must be an integer from 13"),
    # quantize, evaluate
    "quantize missing model": Case("quantize {tmp}/gone.onnx {data}", 1, "gone.onnx: no such model file"),
    "quantize folder as dataset": Case("quantize {model} {folder}", 1, "not a complete dataset"),
    "quantize --sketches 0": Case("quantize {model} {data} --sketches 0", 2, "--sketches"),
    "evaluate run as dataset": Case("evaluate {model} {run}", 1, "not a complete dataset"),
    "evaluate without test landmarks": Case("evaluate {model} {no_landmarks}", 1, "unreadable landmarks"),
    "evaluate --json into a missing folder": Case("evaluate {model} {data} --json {tmp}/none/{out}.json", 1,
                                                  "does not exist"),
    "evaluate --grid unknown format": Case("evaluate {model} {data} --grid {out}.xyz", 1, "no image format"),
    "evaluate --frames 0": Case("evaluate {model} {data} --driver {face_mp4} --frames 0", 2, "--frames"),
    # reenact: models and sidecars
    "reenact missing model": Case("reenact --model {tmp}/gone.onnx --source {face_mp4} -o {out}.mp4", 1,
                                  "gone.onnx: no such model file"),
    "reenact model without sidecar": Case("reenact --model {bare} --source {face_mp4} -o {out}.mp4", 1,
                                          "no sidecar bare.json beside it"),
    "reenact sidecar of another size": Case("reenact --model {other_size} --source {face_mp4} -o {out}.mp4", 1,
                                            "!= [1, 128, 128, 6] from its sidecar"),
    "reenact sidecar with a string size": Case("reenact --model {string_size} --source {face_mp4} -o {out}.mp4", 1,
                                               "size must be int, got '64'"),
    "reenact sidecar with 67 points": Case("reenact --model {short_template} --source {face_mp4} -o {out}.mp4", 1,
                                           "template must be 68x2 finite numbers"),
    "reenact sidecar with NaN": Case("reenact --model {nan_pupils} --source {face_mp4} -o {out}.mp4", 1,
                                     "template_pupils must be 2x2 finite numbers"),
    "reenact sidecar with a broken shape space": Case("reenact --model {broken_shapes} --source {face_mp4} -o {out}.mp4",
                                                      1, "shape_space needs mean 68x2"),
    "reenact sidecar that is a list": Case("reenact --model {list_sidecar} --source {face_mp4} -o {out}.mp4", 1,
                                           "not a face2face generator sidecar"),
    "reenact sidecar escaping its folder": Case("reenact --model {escape} --source {face_mp4} -o {out}.mp4", 1,
                                                "background must be a name beside the model"),
    "reenact model copied without its reference bank": Case(
        "reenact --model {no_bank} --source {face_mp4} -o {out}.mp4", 1,
        "tiny.reference/bank.json: unreadable reference bank"),
    "reenact ONNX that is not a generator": Case("reenact --model {not_generator} --source {face_mp4} -o {out}.mp4",
                                                 1, "model input shape [1, 3, 8, 8] != [1, 64, 64, 6]"),
    "reenact sidecar of another model": Case("reenact --model {other_onnx} --source {face_mp4} -o {out}.mp4", 1,
                                             "other.json: describes another model than other.onnx"),
    "reenact file that is not ONNX": Case("reenact --model {junk_onnx} --source {face_mp4} -o {out}.mp4", 1,
                                          "junk.onnx: not a loadable"),
    "reenact source is a folder": Case("reenact --model {model} --source {folder} -o {out}.mp4", 1,
                                       "not a video file"),
    "reenact output onto a folder": Case("reenact --model {model} --source {face_mp4} -o {folder}", 1,
                                         "is a folder; give a file name"),
    "reenact --width 0": Case("reenact --model {model} --source {face_mp4} -o {out}.mp4 --width 0", 2, "--width"),
    # record
    "record text file as source": Case("record {out}.mp4 --source {text_mp4}", 1, "notes.mp4: not a readable video"),
    "record source is a folder": Case("record {out}.mp4 --source {folder}", 1, "not a video file"),
    "record into a missing folder": Case("record {tmp}/none/o.mp4 --source {face_mp4}", 1, "does not exist"),
    "record --seconds 0": Case("record {out}.mp4 --source {face_mp4} --seconds 0", 2, "--seconds"),
    # studio
    "studio folder is a file": Case("studio {text_mp4}", 1, "exists and is not a folder"),
    "studio --port 0": Case("studio {out} --port 0", 2, "--port"),
    # live, bench
    "live --fps 0": Case("live --model {model} --source {face_mp4} --record {out}.mp4 --fps 0", 2, "--fps"),
    "live --camera -1": Case("live --model {model} --camera -1 --record {out}.mp4", 2, "--camera"),
    "live --smooth-beta -1": Case("live --model {model} --record {out}.mp4 --smooth-beta -1", 2, "--smooth-beta"),
    "live record into a missing folder": Case("live --model {model} --source {face_mp4} --record {tmp}/none/o.mp4",
                                              1, "does not exist"),
    "bench --frames 0": Case("bench --model {model} --source {face_mp4} --frames 0", 2, "--frames"),
    "bench --camera-fps inf": Case("bench --model {model} --source {face_mp4} --camera-fps inf", 2, "--camera-fps"),
    "bench truncated video": Case("bench --model {model} --source {cut_mp4}", 1, "cut.mp4: not a readable video"),
    "bench --json unwritable": Case(f"bench --model {{model}} --source {{face_mp4}} --json {UNWRITABLE}/b.json", 1,
                                    "cannot write in /proc"),
    # models
    "models fetch unknown": Case("models fetch nosuch", 1, "unknown model 'nosuch'"),
}


def _video(path: Path, frames: list[np.ndarray], fps: float = 10) -> Path:
    """Write ``HxWx3`` (or ``HxW`` grey) uint8 frames as an mp4."""
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h), isColor=frames[0].ndim == 3)
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def _rotation_tag(path: Path) -> None:
    """Mark an mp4 as a phone does when held sideways: frames stored turned 90 degrees
    anticlockwise, the track's display matrix (tkhd) turning them back."""
    data = bytearray(path.read_bytes())
    box = data.index(b"tkhd")
    matrix = box + (44 if data[box + 4] == 0 else 56)  # after the times, which are 64-bit in version 1
    data[matrix:matrix + 36] = struct.pack(">9i", 0, 1 << 16, 0, -(1 << 16), 0, 0, 0, 0, 1 << 30)
    path.write_bytes(bytes(data))


def _model_copy(folder: Path, name: str, model: Path, **changes) -> Path:
    """A copy of ``model`` with its sidecar changed (None: no sidecar; a non-dict: the whole sidecar)."""
    copy = folder / f"{name}.onnx"
    shutil.copyfile(model, copy)
    sidecar = json.loads(sidecar_path(model).read_text())
    if "whole" in changes:
        sidecar = changes.pop("whole")
    if sidecar is not None:
        sidecar_path(copy).write_text(json.dumps({**sidecar, **changes} if isinstance(sidecar, dict) else sidecar))
    return copy


@pytest.fixture(scope="module")
def files(tmp_path_factory, tiny_model, tiny_dataset, tiny_run) -> dict[str, str]:
    """Every file the table names, made once."""
    d = tmp_path_factory.mktemp("bad")
    with VideoSource(str(VIDEOS / "lp_d19.mp4")) as source:
        frames = [source.read() for _ in range(4)]
    photo = cv2.imread(str(IMAGES / "lp_d8.jpg"))
    (d / "folder").mkdir()
    (d / "empty.png").touch()
    (d / "empty.mp4").touch()
    (d / "notes.png").write_text("not a photo")
    (d / "notes.mp4").write_text("not a video")
    cv2.imwrite(str(d / "full.png"), photo)
    (d / "cut.png").write_bytes((d / "full.png").read_bytes()[:2000])
    face_mp4 = _video(d / "face.mp4", frames)
    (d / "cut.mp4").write_bytes(face_mp4.read_bytes()[: face_mp4.stat().st_size // 2])
    cv2.imwrite(str(d / "grey.png"), cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(d / "rgba.png"), cv2.cvtColor(photo, cv2.COLOR_BGR2BGRA))
    cv2.imwrite(str(d / "deep.png"), photo.astype(np.uint16) * 257)
    big = np.full((2160, 3840, 3), 128, np.uint8)
    big[500:500 + 2 * photo.shape[0], 1500:1500 + 2 * photo.shape[1]] = cv2.resize(photo, None, fx=2, fy=2)
    cv2.imwrite(str(d / "big.jpg"), big)
    shutil.copy(IMAGES / "lp_d8.jpg", d / "photo.mp4")  # no frame count: counted by decoding
    cv2.imwrite(str(d / "tiny.png"), cv2.resize(photo, (12, 12), interpolation=cv2.INTER_AREA))
    h, w = photo.shape[:2]
    cv2.imwrite(str(d / "edge.png"), np.hstack([photo[:, w // 3:], np.zeros((h, w // 3, 3), np.uint8)]))
    _video(d / "tiny.mp4", [cv2.resize(f, (24, 24), interpolation=cv2.INTER_AREA) for f in frames])
    _video(d / "cup.mp4", [cv2.resize(cv2.imread(str(IMAGES / "coffee.png")), (320, 240))] * 4)
    _video(d / "two.mp4", [cv2.imread(str(IMAGES / "2008_001009.jpg"))[:320, :480]] * 4)
    _video(d / "grey.mp4", [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in frames])
    _video(d / "phone.mp4", [cv2.rotate(f[60:420], cv2.ROTATE_90_COUNTERCLOCKWISE) for f in frames])
    _rotation_tag(d / "phone.mp4")
    big_frame = np.full((2160, 3840, 3), 128, np.uint8)
    big_frames = []
    for f in frames:
        big_frame[800:1760, 1400:2360] = cv2.resize(f, (960, 960))
        big_frames.append(big_frame.copy())
    _video(d / "big.mp4", big_frames)
    bad_data = d / "bad_data"
    bad_data.mkdir()
    (bad_data / "manifest.json").write_text("{not json")
    no_landmarks = shutil.copytree(tiny_dataset, d / "no_landmarks")
    (no_landmarks / "test" / "landmarks.json").unlink()
    models = d / "models"
    models.mkdir()
    not_generator = helper.make_model(helper.make_graph(
        [helper.make_node("Identity", ["sketch"], ["face"])], "identity",
        [helper.make_tensor_value_info("sketch", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("face", TensorProto.FLOAT, [1, 3, 8, 8])]))
    onnx.save(not_generator, models / "not_generator.onnx")
    unnamed = json.dumps({**json.loads(sidecar_path(tiny_model).read_text()), "model_sha256": ""})  # as before sha256s
    sidecar_path(models / "not_generator.onnx").write_text(unnamed)
    (models / "junk.onnx").write_bytes(b"\x00" * 100)
    sidecar_path(models / "junk.onnx").write_text(unnamed)
    (models / "other.onnx").write_bytes(tiny_model.read_bytes() + b"\x00")  # other bytes than its sidecar names
    sidecar_path(models / "other.onnx").write_text(sidecar_path(tiny_model).read_text())
    paths = {
        "tmp": d, "folder": d / "folder", "empty_png": d / "empty.png", "empty_mp4": d / "empty.mp4",
        "text_png": d / "notes.png", "text_mp4": d / "notes.mp4", "cut_png": d / "cut.png", "cut_mp4": d / "cut.mp4",
        "face": d / "full.png", "face_mp4": face_mp4, "photo_mp4": d / "photo.mp4", "coffee": IMAGES / "coffee.png", "two": IMAGES / "2008_001009.jpg",
        "data": tiny_dataset, "run": tiny_run, "model": tiny_model, "bad_data": bad_data, "no_landmarks": no_landmarks,
        "not_generator": models / "not_generator.onnx", "junk_onnx": models / "junk.onnx",
        "other_onnx": models / "other.onnx",
        "bare": _model_copy(models, "bare", tiny_model, whole=None),
        "other_size": _model_copy(models, "other_size", tiny_model, size=128),
        "string_size": _model_copy(models, "string_size", tiny_model, size="64"),
        "short_template": _model_copy(models, "short_template", tiny_model,
                                      template=json.loads(sidecar_path(tiny_model).read_text())["template"][:67]),
        "nan_pupils": _model_copy(models, "nan_pupils", tiny_model, template_pupils=[[float("nan"), 1.0], [2.0, 3.0]]),
        "broken_shapes": _model_copy(models, "broken_shapes", tiny_model, shape_space={"mean": [[0.0, 0.0]]}),
        "list_sidecar": _model_copy(models, "list_sidecar", tiny_model, whole=[1, 2, 3]),
        "escape": _model_copy(models, "escape", tiny_model, background="../../etc"),
        "no_bank": _model_copy(models, "no_bank", tiny_model),
    }
    for name in ("grey_png", "rgba_png", "deep_png", "big_jpg", "tiny_png", "edge_png",
                 "tiny_mp4", "cup_mp4", "two_mp4", "grey_mp4", "phone_mp4", "big_mp4"):
        stem, ext = name.rsplit("_", 1)
        paths[name] = d / f"{stem}.{ext}"
    return {k: str(v) for k, v in paths.items()}


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    """``face2face ARGV`` in this process: (exit status, stdout, stderr)."""
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        status = exc.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize("name", CASES)
def test_bad_input(name, files, tmp_path, capsys):
    case = CASES[name]
    out = tmp_path / "out"
    argv = case.argv.format(**files, out=out).split()
    status, stdout, stderr = _run(argv, capsys)
    assert "Traceback" not in stderr
    assert status == case.status, stderr
    if case.status == 0:
        assert case.says in stdout
        return
    lines = [line for line in stderr.strip().splitlines() if not PROGRESS.match(line)]
    if case.status == 1:
        assert len(lines) == 1 and lines[0].startswith("face2face: error: "), stderr
    else:
        assert lines[-1].startswith(f"face2face {argv[0]}: error: argument "), stderr
    assert case.says in lines[-1]
    assert not [p for p in tmp_path.iterdir()], "a failed command left output behind"
    assert not Path(files["tmp"], "none").exists()


def test_the_table_covers_every_command():
    commands = {case.argv.split()[0] for case in CASES.values()}
    assert commands >= set(build_parser()._subparsers._group_actions[0].choices) - {"doctor"}
    assert len(CASES) >= 30


BAD_VALUES = {cli.positive_int: "0", cli.non_negative_int: "-1", cli.positive_float: "0",
              cli.non_negative_float: "-0.5", cli.fraction: "1", cli.image_size: "-5", cli.frame_side: "8",
              cli.opset: "99"}


def _numeric_options():
    """(command, option, bad value, argv with every required argument) for every numeric option."""
    commands = build_parser()._subparsers._group_actions[0].choices
    for command, parser in commands.items():
        required = []
        for action in parser._actions:
            if action.nargs == argparse.PARSER:  # a group of sub-commands (models), not an argument
                continue
            if not action.option_strings:
                required.append("X")
            elif action.required:
                required += [action.option_strings[-1], "X"]
        for action in parser._actions:
            if action.type in BAD_VALUES:
                yield command, action.option_strings[-1], BAD_VALUES[action.type], [command, *required]


@pytest.mark.parametrize("command,option,value,argv", list(_numeric_options()),
                         ids=lambda v: v if isinstance(v, str) else None)
def test_every_numeric_option_out_of_range_is_a_usage_error(command, option, value, argv, capsys):
    status, _, stderr = _run([*argv, option, value], capsys)
    assert status == 2 and "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1].startswith(f"face2face {command}: error: argument {option}")
    assert f"got '{value}'" in stderr


def test_rotated_phone_video_is_read_upright(files):
    with VideoSource(files["phone_mp4"]) as phone, VideoSource(str(VIDEOS / "lp_d19.mp4")) as original:
        upright, stored = phone.read(), original.read()[60:420]
    assert upright.shape == stored.shape  # 480 wide, 360 high, as filmed
    assert np.abs(upright.astype(int) - stored).mean() < 5  # not upside down or sideways


@pytest.mark.parametrize("argv", [
    "prepare {face_mp4} -o {tmp}/never --size -5",
    "detect {folder}",
    "reenact --model {not_generator} --source {face_mp4} -o {tmp}/never.mp4",
])
def test_the_real_entry_point_prints_no_traceback(argv, files):
    result = subprocess.run([sys.executable, "-m", "face2face", *argv.format(**files).split()],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode in (1, 2) and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("face2face")
    assert not Path(files["tmp"], "never").exists() and not Path(files["tmp"], "never.mp4").exists()


def _entry_point(*argv: str) -> subprocess.CompletedProcess:
    """``python -m face2face ARGV`` with the environment of a user's shell (none of the log settings
    face2face makes for itself, which earlier tests in this process left behind)."""
    env = {k: v for k, v in os.environ.items() if k not in QUIET_LIBRARIES}
    return subprocess.run([sys.executable, "-m", "face2face", *argv], capture_output=True, text=True, env=env,
                          timeout=120)


@pytest.mark.parametrize("video", ["text_mp4", "empty_mp4", "cut_mp4"])
@pytest.mark.parametrize("argv", [
    "prepare {video} -o {tmp}/never",
    "quickstart {video} -o {tmp}/never",
    "reenact --model {model} --source {video} -o {tmp}/never.mp4",
    "live --model {model} --source {video} --record {tmp}/never.mp4",
    "evaluate {model} {data} --driver {video} --json {tmp}/never",
], ids=lambda argv: argv.split()[0])
def test_a_bad_video_is_one_line_from_the_real_entry_point(argv, video, files):
    result = _entry_point(*argv.format(**{**files, "video": files[video]}).split())
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"face2face: error: {files[video]}: not a readable video "
                                          "(no frame could be decoded)"]
    assert not Path(files["tmp"], "never").exists() and not Path(files["tmp"], "never.mp4").exists()


def test_ffmpeg_s_own_log_lines_show_with_verbose(files):
    result = _entry_point("prepare", files["cut_mp4"], "-o", f"{files['tmp']}/never", "--verbose")
    assert result.returncode == 1
    assert "moov atom not found" in result.stderr  # FFmpeg's `[mov,mp4,... @ 0x...]` line, as a library log
    assert result.stderr.splitlines()[-1].startswith(f"face2face: error: {files['cut_mp4']}: not a readable video")

"""One command from a target video to a live-ready model, resumable, ending with a runnable command."""

import shlex

from face2face.cli import main
from face2face.modelfile import read_sidecar
from face2face.video import VideoSource

from conftest import VIDEOS


def test_quickstart_then_its_live_command_runs(tmp_path, capsys):
    work = tmp_path / "work"
    argv = ["quickstart", str(VIDEOS / "lp_d18.mp4"), "-o", str(work), "--steps", "40", "--ngf", "8",
            "--size", "64", "--every", "3"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "expected about" in out.splitlines()[0]
    assert read_sidecar(work / "model.onnx").steps == 40
    assert (work / "evaluation.json").exists() and (work / "evaluation.png").exists()
    assert "int8 copy" in out and (work / "model.int8.xml").exists()  # OpenVINO's fast path, checked
    live = next(line.split("next: ", 1)[1] for line in out.splitlines() if line.startswith("next: "))
    args = shlex.split(live)
    assert args[:2] == ["face2face", "live"]
    recording = tmp_path / "live.mp4"
    # the printed command, with a video file in place of the webcam and a recording in place of the
    # virtual camera and window this machine does not have
    args = [a for a in args[1:] if a not in ("--virtual-cam", "--preview")]
    assert main(args + ["--source", str(VIDEOS / "lp_d19.mp4"), "--record", str(recording), "--frames", "15"]) == 0
    with VideoSource(str(recording)) as video:
        assert sum(1 for _ in video) == 15

    assert main(argv) == 0  # again: every stage is found complete and kept
    again = capsys.readouterr().out
    assert "1/4 dataset" in again and "is complete, kept" in again
    assert "3/4 export" in again and "up to date, kept" in again and "int8 copy" not in again

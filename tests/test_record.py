"""`face2face record` with video files standing in for the webcam (the same ``VideoSource``)."""

import cv2
import numpy as np
import pytest

from face2face import coverage as coverage_module
from face2face.cli import main
from face2face.runtime.record import next_prompt
from face2face.train.quickstart import QuickstartConfig, make_plan
from face2face.video import VideoSource, VideoWriter

from conftest import VIDEOS


def _frames(path) -> int:
    with VideoSource(str(path)) as video:
        return sum(1 for _ in video)


def test_a_calm_target_is_recorded_whole_and_told_what_it_misses(tmp_path, capsys):
    out = tmp_path / "me.mp4"
    assert main(["record", str(out), "--source", str(VIDEOS / "lp_d19.mp4")]) == 0
    said = capsys.readouterr().out.splitlines()
    assert said[0] == f"{out}: 250 frames, 8.3 s, the face in 250; stopped: end"
    assert "  missing: no frame with the mouth wide open: record 10 s of talking and laughing" in said
    assert not any(line.startswith("warnings") for line in said)  # well lit, sharp, one face, large
    assert said[-1] == f"next: face2face quickstart {out}"
    assert _frames(out) == 250 and sorted(p.name for p in tmp_path.iterdir()) == ["me.mp4"]  # no partial file
    assert make_plan(str(out), QuickstartConfig(), gpu=False).frames == 250  # quickstart takes it as it is


def test_recording_stops_once_the_video_covers_what_drivers_do(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(coverage_module, "SHORT", 1.0)  # no end counts as missed: covered as soon as allowed
    out = tmp_path / "me.mp4"
    assert main(["record", str(out), "--source", str(VIDEOS / "lp_d3.mp4"), "--goal", "0.5"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"{out}: 300 frames, 10.0 s, the face in 300; stopped: coverage"
    assert _frames(out) == 300  # never before 10 s of video (MIN_SECONDS at 30 fps)
    assert main(["record", str(out), "--source", str(VIDEOS / "lp_d3.mp4"), "--seconds", "2"]) == 0
    assert capsys.readouterr().out.splitlines()[0].endswith("60 frames, 2.0 s, the face in 60; stopped: seconds")


def test_a_dark_recording_is_warned_of(tmp_path, capsys):
    dark = tmp_path / "dark.mp4"
    with VideoSource(str(VIDEOS / "lp_d19.mp4")) as video, VideoWriter(dark, video.width, video.height, video.fps) as writer:
        for _, frame in zip(range(45), video):
            writer.write(cv2.convertScaleAbs(frame, alpha=0.25))  # a room with the lights off
    assert main(["record", str(tmp_path / "me.mp4"), "--source", str(dark)]) == 0
    said = capsys.readouterr().out.splitlines()
    faces = int(said[0].split("the face in ")[1].split(";")[0])
    warned = next(line for line in said if line.startswith("warnings"))
    assert faces >= 30 and f"dark {faces}" in warned  # every frame the face was found in


def test_the_next_prompt_follows_what_is_missing():
    report = {"features": {"yaw": {"missing": ["low"]}, "mouth": {"missing": ["high"]}, "eyes": {"missing": []}}}
    assert next_prompt(report) == "open the mouth wide"  # the mouth first: what a driver does most
    report["features"]["mouth"]["missing"] = []
    assert next_prompt(report) == "turn the head to your right"
    report["features"]["yaw"]["missing"] = []
    assert next_prompt(report) == ""


@pytest.mark.parametrize("argv, message", [
    (["--source", "nope.mp4"], "nope.mp4: no such video file"),
])
def test_bad_input_is_one_line(tmp_path, capsys, argv, message):
    assert main(["record", str(tmp_path / "me.mp4"), *argv]) == 1
    assert capsys.readouterr().err.strip() == f"face2face: error: {message}"
    assert not np.any([p.suffix == ".mp4" for p in tmp_path.iterdir()])


def test_the_record_preview_opens_on_a_display(x_display, tmp_path, capsys, monkeypatch):
    out = tmp_path / "me.mp4"
    assert main(["record", str(out), "--source", str(VIDEOS / "lp_d19.mp4"), "--preview", "--seconds", "1"]) == 0
    assert capsys.readouterr().out.splitlines()[0].endswith("30 frames, 1.0 s, the face in 30; stopped: seconds")
    monkeypatch.delenv("DISPLAY")
    assert main(["record", str(tmp_path / "no.mp4"), "--source", str(VIDEOS / "lp_d19.mp4"), "--preview"]) == 1
    assert "--preview: no display" in capsys.readouterr().err

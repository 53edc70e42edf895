"""One command from a target video to a live-ready model, resumable, ending with a runnable command."""

import json
import re
import shlex

import cv2
import pytest

from face2face.cli import main
from face2face.console import plural
from face2face.modelfile import read_sidecar
from face2face.runtime.openvino_engine import native_bf16
from face2face.train.holdout import read_scores
from face2face.train.quickstart import MIN_PAIRS, PREPARE_FPS, Done, QuickstartConfig, make_plan
from face2face.video import VideoSource

from conftest import IMAGES, VIDEOS


def test_quickstart_then_its_live_command_runs(tmp_path, capsys):
    work = tmp_path / "work"
    argv = ["quickstart", str(VIDEOS / "lp_d18.mp4"), "-o", str(work), "--steps", "40", "--ngf", "8",
            "--size", "64", "--every", "6", "--first-model", "0"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    precision = "bf16" if native_bf16() else "fp32"  # the CPU's own default
    assert err.startswith(f"plan: 36 frames -> dataset, 40 training steps at ngf 8, ndf 32, {precision} on CPU, "
                          "export (+ int8 copy), evaluate; expected ")
    assert "prepare: " in err  # its progress shows inside quickstart too
    # a first model to drive while training went on, announced once with its live line
    assert err.count("drive it while training goes on: face2face live --model") == 1
    # the model handed over holds the weights that scored best on the held-back train pairs
    scores = read_scores(work / "run")
    assert sorted(scores.scores) == list(range(4, 41, 4)) and read_sidecar(work / "model.onnx").steps == scores.best
    assert (work / "evaluation.json").exists() and (work / "evaluation.png").exists()
    assert "int8 copy" in err and (work / "model.int8.xml").exists()  # OpenVINO's fast path, checked
    peaks = json.loads((work / "quickstart.json").read_text())["peak_memory_gb"]
    assert list(peaks) == ["prepare", "train", "export", "int8", "evaluate"]
    assert f"peak memory per stage: prepare {peaks['prepare']:.1f}, train {peaks['train']:.1f}, " in err
    # the stages run apart report their own memory, not that of the training process they were started from
    assert 0.2 < peaks["int8"] < peaks["train"] and peaks["evaluate"] < peaks["train"]
    assert f"evaluation: {work / 'evaluation.json'}" in out
    live = next(line.split("next: ", 1)[1] for line in out.splitlines() if line.startswith("next: "))
    args = shlex.split(live)
    assert args[:2] == ["face2face", "live"]
    recording = tmp_path / "live.mp4"
    # the printed command, with a video file in place of the webcam and a recording in place of the
    # virtual camera and window this machine does not have
    args = [a for a in args[1:] if a not in ("--virtual-cam", "--preview")]
    assert main(args + ["--source", str(VIDEOS / "lp_d19.mp4"), "--record", str(recording), "--frames", "15"]) == 0
    with VideoSource(str(recording)) as video:
        assert sum(1 for _ in video) > 0
    capsys.readouterr()

    assert main(argv) == 0  # again: every stage is found complete and kept
    again = capsys.readouterr().err
    assert again.startswith("plan: every stage is already done") and "expected" not in again.splitlines()[0]
    assert "1/4 dataset" in again and "is complete, kept" in again
    assert "3/4 export" in again and "up to date, kept" in again and "int8 copy" not in again
    # resuming is quickstart's own doing, like its other defaults: not an option that differs
    config = json.loads((work / "run" / "config.json").read_text())
    assert config["changed"] == {"steps": 40, "ngf": 8}
    assert config["options"]["learning_rate"] == (2e-4 if native_bf16() else 4e-4)  # the plan's rate was trained
    assert "drive it while training goes on" not in again


def test_plan_counts_only_what_is_left():
    plan = make_plan(str(VIDEOS / "lp_d18.mp4"), QuickstartConfig(), gpu=False)
    assert (plan.ngf, plan.ndf, plan.precision, plan.steps, plan.frames) == (32, 32, "fp32", 3600, 216)
    assert (plan.lr_decay, plan.upsample, plan.learning_rate) == (0.5, "resize", 4e-4)
    assert (plan.reference, plan.residual, plan.swap_parts) == ("bank", True, 0.6)
    fresh = plan.describe()
    assert fresh.startswith("plan: 216 frames -> dataset, 3600 training steps at ngf 32, ndf 32, fp32 on CPU")
    assert re.search(r"; expected about \d+ min$", fresh)
    halfway = Done(dataset=True, steps=1500)
    assert plan.seconds(halfway) == pytest.approx(plan.seconds() - 216 / PREPARE_FPS - 1500 * plan.seconds_per_step)
    assert plan.describe(halfway).startswith("plan: 3600 training steps at ngf 32, ndf 32, fp32 on CPU "
                                             "(resuming at step 1500), ")
    assert plan.describe(Done(True, 3600, True, True)) == "plan: every stage is already done; its results follow"
    assert plan.seconds(Done(True, 3600, True, True)) == 0


def test_plan_follows_the_hardware_and_keeps_what_a_run_was_trained_with():
    video = str(VIDEOS / "lp_d18.mp4")
    bf16 = make_plan(video, QuickstartConfig(), gpu=False, bf16=True)
    assert (bf16.precision, bf16.ndf, bf16.steps, bf16.upsample, bf16.learning_rate) == ("bf16", 32, 10800, "resize", 2e-4)
    cpu = make_plan(video, QuickstartConfig(), gpu=False, bf16=False)
    assert 0.7 < bf16.seconds(Done(dataset=True)) / cpu.seconds(Done(dataset=True)) < 1.1  # about the same wait
    wider = make_plan(video, QuickstartConfig(ngf=64), gpu=False, bf16=True)
    assert wider.seconds_per_step > 2 * bf16.seconds_per_step  # four times the generator's work
    # a run begun with other choices (earlier defaults, before --lr-decay and --upsample) resumes with them
    kept = make_plan(video, QuickstartConfig(), gpu=False, bf16=False,
                     trained={"ngf": 32, "ndf": 64, "precision": "fp32", "lr_decay": 0.0})
    fresh = make_plan(video, QuickstartConfig(), gpu=False, bf16=False)
    assert (kept.ndf, kept.precision, kept.lr_decay, kept.upsample, kept.learning_rate) == (64, "fp32", 0.0, "transpose", 2e-4)
    assert (kept.reference, kept.residual, kept.swap_parts) == ("none", False, 0.0)  # runs before references
    assert kept.seconds_per_step > fresh.seconds_per_step
    # and its length, on which the rate's decay was planned: a bf16 run begun at 3,600 steps ends there
    begun = {"ngf": 32, "ndf": 32, "precision": "bf16", "lr_decay": 0.5, "upsample": "resize", "steps": 3600}
    assert make_plan(video, QuickstartConfig(), gpu=False, bf16=True, trained=begun).steps == 3600
    assert make_plan(video, QuickstartConfig(steps=500), gpu=False, bf16=True, trained=begun).steps == 500


def test_counts_are_worded_for_one_and_many():
    assert [plural(n, "frame") for n in (0, 1, 2)] == ["0 frames", "1 frame", "2 frames"]
    assert plural(1, "sketch", "sketches") == "1 sketch" and plural(3, "sketch", "sketches") == "3 sketches"


def test_a_target_with_too_few_usable_faces_is_refused_after_preparing_and_leaves_nothing(tmp_path, capsys):
    with VideoSource(str(VIDEOS / "lp_d19.mp4")) as source:
        faces = [source.read() for _ in range(4)]
    cup = cv2.resize(cv2.imread(str(IMAGES / "coffee.png")), faces[0].shape[1::-1])
    video = tmp_path / "mostly_cup.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, faces[0].shape[1::-1])
    for frame in faces + [cup] * 26:  # 30 frames: enough to start, 4 with a face
        writer.write(frame)
    writer.release()
    assert main(["quickstart", str(video), "-o", str(tmp_path / "work"), "--size", "64"]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == (f"face2face: error: {video}: only 4 frames with a usable face; quickstart needs at least "
                    f"{MIN_PAIRS}: record 10 s or more with the face in view")
    assert not (tmp_path / "work").exists()

"""A process killed with SIGKILL at its worst moment leaves nothing that looks finished, and running
the command again picks up where it stopped (training's own kill test is in test_train.py)."""

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

from face2face.cli import main
from face2face.errors import Face2FaceError
from face2face.modelfile import read_sidecar, sidecar_path
from face2face.train.holdout import read_scores
from face2face.train.prepare import read_manifest

from conftest import VIDEOS


def kill_when(args: list[str], ready: Callable[[], bool], timeout: float = 180.0) -> None:
    """Run ``face2face ARGS`` and SIGKILL it the moment ``ready()`` holds; fails if it ends first."""
    process = subprocess.Popen([sys.executable, "-m", "face2face", "-q", *args],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    try:
        while process.poll() is None and time.monotonic() < deadline:
            if ready():
                process.kill()
                process.wait()
                return
            time.sleep(0.002)
    finally:
        process.kill()
        stderr = process.communicate()[1].decode(errors="replace")
    pytest.fail(f"face2face {' '.join(args)} ended (or timed out) before the moment to kill it: {stderr[-500:]}")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_killed_export_never_leaves_a_model_that_looks_finished(tiny_run, tmp_path, capsys):
    model = tmp_path / "m.onnx"
    kill_when(["export", str(tiny_run), "-o", str(model)], lambda: (tmp_path / ".m.onnx.part").exists())
    assert not model.exists() and not sidecar_path(model).exists()  # half-written: under a hidden name only

    assert main(["export", str(tiny_run), "-o", str(model)]) == 0
    before = sha256(model), sidecar_path(model).read_text()
    kill_when(["export", str(tiny_run), "-o", str(model)], lambda: (tmp_path / ".m.onnx.part").exists())
    assert (sha256(model), sidecar_path(model).read_text()) == before  # the finished one is untouched

    # killed while the background clip was written, before the new model takes the old one's place
    kill_when(["export", str(tiny_run), "-o", str(model)], lambda: (tmp_path / ".m.background.part").exists())
    assert (sha256(model), sidecar_path(model).read_text()) == before

    # a model file without its sidecar (an export cut short between the two) is not run as finished
    sidecar_path(model).unlink()
    with pytest.raises(Face2FaceError, match="no sidecar"):
        read_sidecar(model)
    capsys.readouterr()
    assert main(["live", "--model", str(model), "--source", str(VIDEOS / "lp_d19.mp4"), "--frames", "3",
                 "--record", str(tmp_path / "r.mp4")]) == 1
    assert "no sidecar" in capsys.readouterr().err and not (tmp_path / "r.mp4").exists()


@pytest.mark.parametrize("command", ["reenact", "live"])
def test_a_killed_recording_never_appears_under_its_name(command, tiny_model, tmp_path):
    out = tmp_path / "out.mp4"
    target = ["-o", str(out)] if command == "reenact" else ["--record", str(out), "--frames", "400"]
    kill_when([command, "--model", str(tiny_model), "--source", str(VIDEOS / "lp_d18.mp4"), *target],
              lambda: any(p.stat().st_size > 20000 for p in tmp_path.glob(".out.*.part.mp4")))
    assert not out.exists()  # frames were written, to a hidden partial file only


def test_a_killed_quickstart_resumes_the_stage_it_was_in(tmp_path, capsys):
    work = tmp_path / "work"
    argv = ["quickstart", str(VIDEOS / "lp_d18.mp4"), "-o", str(work), "--steps", "30", "--ngf", "8",
            "--size", "64", "--every", "6"]
    staged = work / "data" / ".staging" / "target"
    kill_when(argv, lambda: staged.is_dir() and len(list(staged.iterdir())) >= 5)  # while preparing
    with pytest.raises(Face2FaceError, match="not a complete dataset"):
        read_manifest(work / "data")

    checkpoints = work / "run" / "checkpoints"
    kill_when(argv, lambda: (checkpoints / "checkpoint").exists())  # while training (a checkpoint every 3 steps)
    assert read_manifest(work / "data")["pairs"]["train"] > 0
    assert not (work / "model.onnx").exists()
    threads = json.loads((work / "run" / "config.json").read_text())["resolved"]["threads"]
    assert threads == ([1, 2] if len(os.sched_getaffinity(0)) == 2 else [0, 0])  # train/threads.py

    capsys.readouterr()
    assert main(argv) == 0
    err = capsys.readouterr().err
    step = int(err.split("(resuming at step ", 1)[1].split(")", 1)[0])
    assert 0 < step < 30 and step % 3 == 0, err
    assert "1/4 dataset" in err and "is complete, kept" in err and "2/4 training: resuming" in err
    assert read_sidecar(work / "model.onnx").steps == read_scores(work / "run").best
    assert (work / "evaluation.json").exists()


def test_a_quickstart_killed_while_it_exports_a_first_model_keeps_the_last_good_one(tmp_path):
    work = tmp_path / "work"
    model = work / "model.onnx"
    argv = ["quickstart", str(VIDEOS / "lp_d18.mp4"), "-o", str(work), "--steps", "200", "--ngf", "8",
            "--size", "64", "--every", "6", "--first-model", "0"]
    good: list[tuple[str, str]] = []

    def exporting_again() -> bool:
        if sidecar_path(model).exists() and not good:
            good.append((sha256(model), sidecar_path(model).read_text()))
        return bool(good) and (work / ".model.onnx.part").exists()

    kill_when(argv, exporting_again)
    assert (sha256(model), sidecar_path(model).read_text()) == good[0]  # the first model, whole
    assert read_sidecar(model).steps < 200

"""What a user reads: one-line errors before TensorFlow loads, quiet libraries (their logs only
with --verbose), log lines apart from progress bars, every problem of `live` at once, help for
every option, and `doctor`."""

import argparse
import logging
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from face2face.cli import build_parser, main
from face2face.console import QUIET_LIBRARIES, Counter, NativeLogFilter, console
from face2face.errors import Face2FaceError
from face2face.memory import run_apart
from face2face.train.quickstart import StageMemory

# Lines of the libraries' own logs: absl / TensorFlow C++, OpenCV; and tracebacks.
NOISE = re.compile(r"^(?:[IWEF]\d{4} |\[ ?(?:WARN|ERROR|INFO)|WARNING: All log messages|Traceback)", re.M)


def run_cli(*args: str, drop: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """`face2face ARGS` in a fresh interpreter, as a user runs it; its last stdout line says
    whether TensorFlow was imported. ``drop``: environment variables to leave out."""
    code = ("import sys; from face2face.cli import main; rc = main(sys.argv[1:]); "
            "print('tensorflow' in sys.modules); sys.exit(rc)")
    env = {k: v for k, v in os.environ.items() if k not in QUIET_LIBRARIES and k not in drop}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize("argv,message", [
    (["train", "DATA", "-o", "RUN"], "DATA: no such dataset folder"),
    (["export", "RUN", "-o", "m.onnx"], "RUN: no config.json"),
    (["quickstart", "GONE", "-o", "WORK"], "GONE: no such video file"),
])
def test_bad_usage_is_one_line_before_tensorflow_loads(argv, message, tmp_path):
    result = run_cli(*[str(tmp_path / a) if a.isupper() else a for a in argv])
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("face2face: error: ")
    assert message in result.stderr and not NOISE.search(result.stderr)
    assert result.stdout.splitlines()[-1] == "False"  # TensorFlow was not imported


def test_live_reports_every_missing_piece_at_once_without_library_noise(tmp_path):
    argv = ["live", "--model", str(tmp_path / "none.onnx"), "--camera", "42", "--virtual-cam", "--device",
            "/dev/video-none", "--preview", "--record", str(tmp_path / "gone" / "out.mp4")]
    result = run_cli(*argv, drop=("DISPLAY", "WAYLAND_DISPLAY"))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0] == "face2face: error: 5 problems, nothing started:"
    for line, problem in zip(lines[1:], ("none.onnx: no such model file", "camera 42: cannot open",
                                         "/dev/video-none: cannot open", "--preview: no display",
                                         "gone does not exist")):
        assert problem in line
    assert len(lines) == 6 and not NOISE.search(result.stderr)
    assert "[ WARN" in run_cli(*argv, "--verbose", drop=("DISPLAY", "WAYLAND_DISPLAY")).stderr  # OpenCV's, kept


def test_evaluate_on_a_quickstart_folder_points_at_its_dataset(tiny_dataset, tmp_path, capsys):
    work = tmp_path / "work"
    work.mkdir()
    (work / "data").symlink_to(tiny_dataset)
    assert main(["evaluate", str(tmp_path / "model.onnx"), str(work)]) == 1
    assert f"a quickstart folder, not a dataset; its dataset is {work / 'data'}" in capsys.readouterr().err


def test_quickstart_s_stages_run_apart_and_their_error_is_one_line(tmp_path, capsys):
    # apart: after training on a GPU, quickstart's process holds TensorFlow's CUDA and cuDNN
    memory = StageMemory(tmp_path)
    with pytest.raises(Face2FaceError) as error:
        memory.stage("evaluate", "evaluate", str(tmp_path / "model.onnx"), str(tmp_path / "data"))
    assert str(error.value) == f"{tmp_path / 'data'}: no such dataset folder (make one with `face2face prepare`)"
    assert capsys.readouterr().err == ""  # the error is raised once, not printed by the evaluation as well
    assert memory.peaks == {}  # a stage that failed leaves no figure


def test_a_command_run_apart_reports_its_own_peak_memory():
    held = np.ones(200_000_000, np.uint8)  # this process: 0.2 GB more, which the child's figure must not count
    touch = ("import numpy as np; from face2face.memory import report_peak; "
             "b = np.ones(100_000_000, np.uint8); print('done'); report_peak()")  # 0.1 GB, all resident
    status, out, err, peak = run_apart([sys.executable, "-c", touch])
    assert (status, out, err) == (0, "done\n", "")
    assert 0.1 <= peak < 0.1 + 0.1  # the allocation and the interpreter
    status, _, err, none = run_apart([sys.executable, "-c", "import sys; sys.exit('no')"])
    assert (status, err, none) == (1, "no\n", None)  # a program that reports nothing has no figure
    assert held[-1] == 1


def test_log_lines_never_collide_with_progress_bars(capsys):
    log = logging.getLogger("face2face.test")
    with console():
        with Counter("work", "item") as progress:
            progress(1, 3)
            log.info("halfway")
            progress(2, 3)
        log.info("after")
        log.warning("careful")
    err = capsys.readouterr().err
    pieces = re.split(r"[\r\n]+", err)
    assert "halfway" in pieces  # on a line of its own: the bar is cleared first, then redrawn
    assert "work" not in err.split("after")[1]  # a finished bar is not drawn again
    assert "face2face: warning: careful" in pieces
    with console(quiet=True):
        with Counter("work", "item") as progress:
            progress(1, 3)
        log.info("chatter")
        log.warning("careful")
    assert capsys.readouterr().err == "face2face: warning: careful\n"


def test_native_library_log_lines_are_dropped_and_other_output_passes(capfd):
    with NativeLogFilter():
        os.write(2, b"E0000 00:00:1795803524.544897    8764 meta_optimizer.cc:967] remapper failed\n")
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
        os.write(2, b"something a library says that is not a log line\n")
    assert capfd.readouterr().err == "something a library says that is not a log line\n"
    with NativeLogFilter(active=False):
        os.write(2, b"E0000 00:00:1795803524.544897    8764 meta_optimizer.cc:967] remapper failed\n")
    assert "remapper failed" in capfd.readouterr().err


def _commands(parser: argparse.ArgumentParser, path: str = "face2face"):
    """Every (command path, parser) below ``parser``."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield f"{path} {name}", sub
                yield from _commands(sub, f"{path} {name}")


def test_every_command_has_a_description_and_every_option_a_help_with_its_default():
    commands = list(_commands(build_parser()))
    assert {"face2face doctor", "face2face live", "face2face quickstart", "face2face models fetch"} <= \
        {name for name, _ in commands}
    for name, parser in commands:
        assert parser.description, name
        formatter = parser._get_formatter()
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            assert action.help, f"{name} {action.dest}"
            if action.option_strings and action.nargs != 0 and action.default is not None:
                assert "default" in formatter._expand_help(action), f"{name} {action.option_strings[-1]}"
    assert "(default: 1280 with --layout frame" in " ".join(dict(commands)["face2face live"].format_help().split())


def test_doctor_suggests_the_training_gpu_extra_where_tensorflow_misses_an_nvidia_gpu(monkeypatch, tmp_path):
    pytest.importorskip("tensorflow")
    from face2face import doctor

    # No GPU can exist here: the driver's folder stands in for a loaded NVIDIA driver, as Linux shows it.
    monkeypatch.setattr("face2face.runtime.generator.NVIDIA_DRIVER", tmp_path)
    finding = doctor.check_tensorflow()
    assert finding.fix == 'pip install "face2face[train-cuda]"' and "TensorFlow does not see it" in finding.status
    monkeypatch.setattr("face2face.runtime.generator.NVIDIA_DRIVER", tmp_path / "absent")
    assert doctor.check_tensorflow().fix == ""


def test_doctor_says_what_this_machine_can_run():
    result = run_cli("doctor")
    assert result.returncode == 0 and not NOISE.search(result.stderr)
    lines = result.stdout.splitlines()
    sections = [line.split("  ")[0] for line in lines[1:-1] if not line.startswith(" ")]
    assert sections == ["python", "opencv", "dlib", "onnxruntime", "openvino", "tensorflow", "cameras",
                        "virtual camera", "display"]
    assert "CUDA" in result.stdout and ("bf16" in result.stdout or "not installed" in result.stdout)

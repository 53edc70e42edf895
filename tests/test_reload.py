"""Driving a model while it trains: a new version of the model file, written as ``export`` writes
it, is swapped in between two frames; a replacement that cannot run never does (real tiny models,
a real driving video)."""

import gc
import json
import logging
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import onnx
import openvino as ov
import pytest
from onnx import numpy_helper

from face2face.cli import main
from face2face.files import file_sha256, write_atomic
from face2face.modelfile import read_sidecar, sidecar_path
from face2face.runtime.background import SQUARES
from face2face.runtime.capture import LatestFrameCapture
from face2face.runtime.generator import Generator
from face2face.runtime.openvino_engine import GUARD_KEYS, SOURCE_KEY, int8_path, read_phase_model
from face2face.runtime.pipeline import STAGES, Puppeteer, PuppetConfig, StageTimes, load_target, run_live
from face2face.runtime.reload import POLL_SECONDS, ModelReloader, ModelVersion
from face2face.runtime.sinks import Sink
from face2face.video import VideoSource

from conftest import VIDEOS, copy_reference

FACE_ONLY = PuppetConfig(layout="face", width=64, height=64)  # the output frame is the generated face
NEW_STEPS = 999  # the replacement's sidecar says so


@pytest.fixture(scope="module")
def replacement(tiny_model, tmp_path_factory) -> Path:
    """Another model of the same target: ``tiny_model`` with its last layer negated and its bias
    raised by a quarter of the range, so it draws a face of the other sign, lighter (a correction
    of the reference still near zero after a few steps would tell the two apart by its sign alone
    by less than a level): every sketch tells the two apart."""
    proto = onnx.load(str(tiny_model))
    last = [node for node in proto.graph.node if node.op_type == "ConvTranspose"][-1]
    weights, bias = last.input[1], last.input[2]
    for tensor in proto.graph.initializer:
        if tensor.name in (weights, bias):
            value = -numpy_helper.to_array(tensor) + (0.5 if tensor.name == bias else 0.0)
            tensor.CopyFrom(numpy_helper.from_array(value.astype(np.float32), tensor.name))
    model = tmp_path_factory.mktemp("replacement") / "new.onnx"
    onnx.save(proto, str(model))
    copy_reference(tiny_model, model.parent)
    info = json.loads(sidecar_path(tiny_model).read_text())
    sidecar_path(model).write_text(json.dumps({**info, "steps": NEW_STEPS, "background": "",
                                               "model_sha256": file_sha256(model)}))
    return model


@pytest.fixture(scope="module")
def references(tiny_model, replacement) -> dict[str, Generator]:
    """Each model on onnxruntime: what its faces look like."""
    return {"old": Generator(tiny_model, provider="cpu"), "new": Generator(replacement, provider="cpu")}


def install(model: Path, folder: Path) -> Path:
    """A copy of ``model`` and its sidecar (no clip: the face layout) to run and replace."""
    folder.mkdir(exist_ok=True)
    target = folder / "model.onnx"
    shutil.copy(model, target)
    copy_reference(model, folder)
    info = json.loads(sidecar_path(model).read_text())
    sidecar_path(target).write_text(json.dumps({**info, "background": ""}))
    return target


def export_like(model: Path, onnx_bytes: bytes, sidecar: bytes | None, sidecar_after: float = 0.0) -> None:
    """Replace ``model`` in ``export``'s order: the ONNX written under a hidden name, the old sidecar
    removed, the ONNX renamed into place, the sidecar written last, ``sidecar_after`` s later
    (None: never, an export killed before the end)."""
    part = model.with_name(f".{model.name}.part")
    part.write_bytes(onnx_bytes)
    sidecar_path(model).unlink(missing_ok=True)
    os.replace(part, model)
    time.sleep(sidecar_after)
    if sidecar is not None:
        write_atomic(sidecar_path(model), sidecar)


def made_by(face: np.ndarray, sketch: np.ndarray, reference: np.ndarray | None, references: dict[str, Generator]) -> str:
    """Which model drew ``face`` from ``sketch`` over ``reference`` ("?" if neither)."""
    errors = {name: float(np.abs(face.astype(int) - generator(sketch, reference)).mean())
              for name, generator in references.items()}
    name = min(errors, key=errors.get)
    return name if errors[name] < 3.0 else "?"


def driver_frames(count: int) -> list[np.ndarray]:
    with VideoSource(str(VIDEOS / "lp_d19.mp4")) as video:
        return [video.read() for _ in range(count)]


def faces_come_from(puppeteer: Puppeteer, frames: list[np.ndarray], references: dict[str, Generator]) -> set[str]:
    """Which models drew the output frames of ``frames``."""
    row = np.zeros(len(STAGES))
    return {made_by(puppeteer.process(frame, time.perf_counter(), row), puppeteer.sketch, puppeteer.reference,
                    references) for frame in frames}


@pytest.fixture()
def quiet_collector():
    """No full garbage collection over the suite's own objects in the middle of a timed loop: the
    training fixtures' TensorFlow makes each take about 0.2 s, and a live process holds none of them."""
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


class FrameLog(Sink):
    """A sink that keeps each frame with the sketch it was drawn from and when it was sent; it lets
    ``replace`` go after ``before`` frames and quits ``after`` frames into a new model."""

    def __init__(self, puppeteer: Puppeteer, before: int = 10, after: int = 10) -> None:
        self.puppeteer, self.before, self.after = puppeteer, before, after
        self.first = puppeteer.generator
        self.frames: list[tuple[float, np.ndarray, np.ndarray, np.ndarray]] = []
        self.replace = threading.Event()
        self.since_swap = 0

    def send(self, frame: np.ndarray) -> None:
        self.frames.append((time.perf_counter(), frame.copy(), self.puppeteer.sketch.copy(),
                            self.puppeteer.reference.copy()))
        self.since_swap += self.puppeteer.generator is not self.first
        if len(self.frames) == self.before:
            self.replace.set()

    def poll(self) -> str | None:
        return "quit" if self.since_swap >= self.after else None


def test_a_model_exported_again_while_live_runs_takes_over_between_two_frames(tiny_model, replacement, references,
                                                                              analyzer, tmp_path, caplog,
                                                                              quiet_collector):
    model = install(tiny_model, tmp_path / "run")
    version = ModelVersion.of(model)
    puppeteer = Puppeteer(Generator(model), analyzer, FACE_ONLY)  # auto: the engine live would choose
    sink = FrameLog(puppeteer)

    def export_again() -> None:  # the trainer, exporting while live runs; its sidecar comes two looks later
        sink.replace.wait(30)
        export_like(model, replacement.read_bytes(), sidecar_path(replacement).read_bytes(), 2 * POLL_SECONDS)

    trainer = threading.Thread(target=export_again)
    with caplog.at_level(logging.INFO, logger="face2face"), VideoSource(str(VIDEOS / "lp_d19.mp4")) as video, \
            LatestFrameCapture(video, pace_fps=30.0, loop=True, hold=2) as capture, \
            ModelReloader(puppeteer, version) as reloader:
        trainer.start()  # the loop as live runs it on two cores: the next frame prepared while the generator runs
        result = run_live(capture, puppeteer, [sink], StageTimes(), max_frames=900, reloader=reloader, overlap=True)
    trainer.join()
    assert result.stopped_by == "quit"  # 10 frames into the new model, long before 900
    drawn_by = "".join(made_by(face, sketch, reference, references)[0] for _, face, sketch, reference in sink.frames)  # o: old, n: new
    switch = drawn_by.find("n")
    assert switch >= sink.before and drawn_by == "o" * switch + "n" * (len(drawn_by) - switch), drawn_by
    [reload] = reloader.reloads
    assert reload.steps == NEW_STEPS and reload.gap_ms <= 2 * reload.interval_ms, reload  # the loop's own timestamps
    sent = np.diff([t for t, *_ in sink.frames])
    assert sent[switch - 1] <= 2 * np.median(sent), sent[switch - 1]  # and the sink's, at the switch
    ours = [r for r in caplog.records if r.name.startswith("face2face")]
    assert sum(r.getMessage().startswith(f"model reloaded: step {NEW_STEPS} ") for r in ours) == 1
    assert not [r for r in ours if r.levelno >= logging.WARNING]  # a sidecar-less moment is an export at work


def test_a_replacement_that_cannot_run_never_does(tiny_model, replacement, references, analyzer, tmp_path, caplog,
                                                  capsys):
    model = install(tiny_model, tmp_path / "run")
    new_onnx, new_sidecar = replacement.read_bytes(), sidecar_path(replacement).read_bytes()
    old_sidecar = sidecar_path(model).read_bytes()
    puppeteer = Puppeteer(Generator(model), analyzer, FACE_ONLY)
    running = puppeteer.generator
    reloader = ModelReloader(puppeteer, ModelVersion.of(model), sidecar_wait=0.0)  # not started: the test looks

    def copy_in(onnx_bytes: bytes, sidecar: bytes) -> None:  # by hand: the sidecar first, then the model
        sidecar_path(model).write_bytes(sidecar)
        os.utime(sidecar_path(model), (time.time() - 60, time.time() - 60))
        part = model.with_name(".copy")
        part.write_bytes(onnx_bytes)
        os.replace(part, model)

    frames = driver_frames(3)
    cases = [
        (lambda: export_like(model, new_onnx[: len(new_onnx) // 2], new_sidecar), "changed, but does not load"),
        (lambda: export_like(model, os.urandom(len(new_onnx)), new_sidecar), "changed, but does not load"),
        (lambda: copy_in(new_onnx, json.dumps({**json.loads(old_sidecar), "model_sha256": ""}).encode()),
         "changed, but its sidecar model.json is older: it describes an earlier model"),  # sidecars before sha256s
        (lambda: copy_in(new_onnx, old_sidecar), "does not load: " + f"{sidecar_path(model)}: describes another model"),
        (model.unlink, "model.onnx was removed"),
        (lambda: export_like(model, new_onnx, None), "model.onnx has had no sidecar model.json for 0 s"),
    ]
    for damage, problem in cases:
        caplog.clear()
        damage()
        for _ in range(4):  # a version is judged once it stands still for a look; then never again
            reloader.check()
        if problem.endswith("removed"):
            sidecar_path(model).unlink()  # the rest of the model going too is the same removal
            for _ in range(4):
                reloader.check()
        reloader.swap()
        [warning] = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert problem in warning and warning.endswith(f"; still running the model of step {running.info.steps}")
        assert puppeteer.generator is running and faces_come_from(puppeteer, frames, references) == {"old"}
    assert "Traceback" not in capsys.readouterr().err

    copy_in(new_onnx, new_sidecar)  # a good one, after all that, runs: its sidecar names it, older or not
    reloader.check()
    reloader.check()
    reloader.swap()
    assert puppeteer.generator.info.steps == NEW_STEPS and faces_come_from(puppeteer, frames, references) == {"new"}


def test_a_new_version_keeps_the_background_clip_unless_the_clip_changed(tiny_model, analyzer, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(tiny_model.parent, folder)
    model = folder / tiny_model.name
    config = PuppetConfig(layout="frame", width=320, height=180)
    puppeteer = Puppeteer(Generator(model, provider="cpu"), analyzer, config)
    running = puppeteer.target
    same = load_target(puppeteer.generator.reopen(), config, running)  # exported again from the same frames
    assert same.background is running.background
    squares = model.with_name(read_sidecar(model).background) / SQUARES
    clip = json.loads(squares.read_text())
    clip["squares"][0][0] += 10  # the target's face elsewhere in the first frame
    squares.write_text(json.dumps(clip))
    moved = load_target(puppeteer.generator.reopen(), config, running)
    assert moved.background is not running.background
    assert moved.background.squares[0].cx > running.background.squares[0].cx
    assert puppeteer.adopt(moved) is running and puppeteer.composer.background is moved.background


def record_int8_copy(model: Path) -> None:
    """An int8 copy of ``model`` as ``quantize`` records it: made from its present bytes, over the
    quality guard (the weights stay float: the record is what is tested here)."""
    ir = read_phase_model(model)
    ir.set_rt_info(file_sha256(model), SOURCE_KEY)
    ir.set_rt_info("50.00", GUARD_KEYS["crop"])  # as a copy made before the face figure: the crop's alone
    ov.save_model(ir, str(int8_path(model)), compress_to_fp16=False)


@pytest.mark.parametrize("precision", ["auto", "int8"])
def test_the_int8_copy_of_the_old_model_never_runs_the_new_one(tiny_model, replacement, references, analyzer, tmp_path,
                                                               caplog, precision):
    model = install(tiny_model, tmp_path / "run")
    record_int8_copy(model)
    puppeteer = Puppeteer(Generator(model, precision=precision), analyzer, FACE_ONLY)
    assert puppeteer.generator.precision == "int8"
    if precision == "auto":  # the frame layout reads the whole crop's figure where the copy has no other
        framed = Generator(model, layout="frame").choice.message()
        assert "its copy is 50.0 dB from fp32 at worst on the whole crop" in framed
    reloader = ModelReloader(puppeteer, ModelVersion.of(model))
    export_like(model, replacement.read_bytes(), sidecar_path(replacement).read_bytes())
    for _ in range(3):
        reloader.check()
    reloader.swap()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    if precision == "auto":  # as at start: the copy is passed over, the new model runs in float
        assert not warnings and puppeteer.generator.info.steps == NEW_STEPS
        assert puppeteer.generator.precision in ("fp32", "bf16")
        assert faces_come_from(puppeteer, driver_frames(3), references) == {"new"}
    else:  # asked for int8: the new model has no copy of its own, the old one keeps running
        [warning] = warnings
        assert "calibrated for another version of model.onnx" in warning
        assert (puppeteer.generator.info.steps, puppeteer.generator.precision) == (read_sidecar(tiny_model).steps, "int8")


@pytest.mark.parametrize("command", ["live", "bench"])
def test_live_and_bench_say_when_they_reloaded_and_how_long_the_gap_was(tiny_model, replacement, tmp_path, capsys,
                                                                        command):
    model = install(tiny_model, tmp_path / "run")
    loaded = threading.Event()

    class Loaded(logging.Handler):  # the trainer exports again once the command has loaded the model
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith("generator runs on "):
                loaded.set()

    def export_again() -> None:
        if loaded.wait(60):
            export_like(model, replacement.read_bytes(), sidecar_path(replacement).read_bytes())

    handler, report = Loaded(), tmp_path / "bench.json"
    args = {"live": ["--loop", "--frames", "180", "--record", str(tmp_path / "out.mp4"), "--layout", "face"],
            "bench": ["--frames", "120", "--camera-fps", "30", "--warmup", "5", "--json", str(report),
                      "--layout", "face"]}[command]
    logging.getLogger("face2face").addHandler(handler)
    trainer = threading.Thread(target=export_again)
    trainer.start()
    try:
        assert main([command, "--model", str(model), "--source", str(VIDEOS / "lp_d19.mp4"), *args]) == 0
    finally:
        loaded.set()
        trainer.join()
        logging.getLogger("face2face").removeHandler(handler)
    captured = capsys.readouterr()
    assert captured.err.count(f"model reloaded: step {NEW_STEPS} (") == 1 and "face2face: warning" not in captured.err
    gap, interval = captured.out.split("model reloaded 1 time, longest gap at a swap ")[1].split(" ms (frame interval ")
    assert float(gap) >= 0 and float(interval.split(" ms)")[0]) > 0  # its bound: the test above, on the loop itself
    if command == "bench":
        figures = json.loads(report.read_text())
        [reload] = figures["reloads"]
        assert reload["steps"] == NEW_STEPS and figures["reload_gap_ms"] == reload["gap_ms"]
        assert abs(reload["gap_ms"] - float(gap)) <= 0.5  # the table says what the JSON says
        assert reload["gap_ms"] <= reload["building_ms"] and reload["load_s"] > 0

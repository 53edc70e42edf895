"""The runtime on a real (tiny) exported generator and real driving videos."""

import json
import os
import re
import stat
import time

import cv2
import numpy as np
import onnxruntime as ort
import pyvirtualcam
from pyvirtualcam.util import encode_fourcc
import pytest

from face2face.cli import main
from face2face.errors import Face2FaceError
from face2face.faces import FaceTracker, TrackerConfig
from face2face.modelfile import sidecar_path
from face2face.pupils import EYES
from face2face.runtime.capture import LatestFrameCapture
from face2face.runtime.generator import CPU, EngineChoice, Generator, OrtEngine
from face2face.runtime.retarget import RetargetConfig
from face2face.runtime.pipeline import STAGES, Puppeteer, PuppetConfig, StageTimes, LoopPlan, loop_plan, run_live
from face2face.runtime.sinks import NullSink, SinkConfig, create_sink, sink_names
from face2face.sketch import PUPIL_COLOUR
from face2face.video import VideoSource

from conftest import IMAGES, VIDEOS, copy_reference


@pytest.fixture(scope="module")
def generator(tiny_model) -> Generator:
    return Generator(tiny_model, provider="cpu")


def test_generator_maps_bgr_sketch_to_bgr_face_like_the_raw_session(generator, tiny_model, tiny_dataset):
    path = sorted((tiny_dataset / "test" / "input").glob("*.png"))[0]
    sketch, reference = cv2.imread(str(path)), cv2.imread(str(path.parent.parent / "reference" / path.name))
    face = generator(sketch, reference).copy()
    assert face.shape == sketch.shape and face.dtype == np.uint8
    session = ort.InferenceSession(str(tiny_model), providers=[CPU])
    rgb = np.concatenate([sketch[:, :, ::-1], reference[:, :, ::-1]], axis=2).astype(np.float32)[None] / 127.5 - 1.0
    expected = session.run(None, {"sketch": rgb})[0][0]
    expected_bgr = np.clip((expected + 1.0) * 127.5, 0, 255)[:, :, ::-1]
    assert np.abs(face.astype(np.float32) - expected_bgr).max() <= 1.0


def test_bad_model_files_get_one_line_errors(tmp_path, tiny_model, capsys):
    info = json.loads(sidecar_path(tiny_model).read_text())
    not_onnx = tmp_path / "junk.onnx"
    not_onnx.write_text("hello")
    sidecar_path(not_onnx).write_text(json.dumps({**info, "model_sha256": ""}))  # naming no file: as before sha256s
    no_sidecar = tmp_path / "bare.onnx"
    no_sidecar.write_bytes(tiny_model.read_bytes())
    wrong_size = tmp_path / "wrong.onnx"
    wrong_size.write_bytes(tiny_model.read_bytes())
    sidecar_path(wrong_size).write_text(json.dumps({**info, "size": 128}))
    cases = [(tmp_path / "missing.onnx", "missing.onnx: no such model file"), (not_onnx, "not a loadable ONNX"),
             (no_sidecar, "not a face2face generator"), (wrong_size, "!= [1, 128, 128, 6]")]
    for model, message in cases:
        assert main(["bench", "--model", str(model), "--source", str(VIDEOS / "lp_d18.mp4")]) == 1
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and "Traceback" not in err



def test_a_source_that_is_not_a_video_file_is_called_so(tmp_path, capsys):
    for source, message in (("/dev/null", "/dev/null: not a video file"), (str(tmp_path), "not a video file"),
                            (str(tmp_path / "gone.mp4"), "gone.mp4: no such video file")):
        assert main(["bench", "--model", str(tmp_path / "m.onnx"), "--source", source]) == 1
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1


def test_reenact_writes_every_frame_at_the_requested_size(tiny_model, tmp_path):
    out = tmp_path / "out.mp4"
    assert main(["reenact", "--model", str(tiny_model), "--source", str(VIDEOS / "lp_d18.mp4"), "-o", str(out),
                 "--layout", "side-by-side", "--width", "300", "--height", "100"]) == 0
    with VideoSource(str(out)) as video, VideoSource(str(VIDEOS / "lp_d18.mp4")) as driver:
        assert (video.width, video.height) == (300, 100)
        assert sum(1 for _ in video) == sum(1 for _ in driver) == 216


def test_bench_json_has_every_field(tiny_model, tmp_path):
    out = tmp_path / "bench.json"
    assert main(["bench", "--model", str(tiny_model), "--source", str(VIDEOS / "lp_s18.mp4"),
                 "--frames", "40", "--warmup", "5", "--json", str(out), "--baseline"]) == 0
    report = json.loads(out.read_text())
    for key in ("provider", "precision", "model", "source", "frames", "fps", "latency_ms", "stages_ms", "dropped",
                "detector_runs", "machine", "memory_mb", "reloads", "reload_gap_ms"):
        assert key in report
    assert report["reloads"] == [] and report["reload_gap_ms"] is None  # the model stayed as it was
    assert 0 < report["memory_mb"]["after_warmup"] <= report["memory_mb"]["peak"]
    assert report["provider"] == "OpenVINO CPU"  # auto, on a machine without CUDA
    assert report["frames"] == 40 and report["fps"] > 0
    assert set(report["stages_ms"]) == {"capture", "track", "gaze", "sketch", "reference", "generate", "wait",
                                        "compose", "sink"}
    plan = loop_plan("auto")
    assert report["overlap"] == plan.overlap and report["baseline"]["overlap"] is False
    assert report["generator_threads"] == (plan.threads or os.cpu_count())
    assert report["stages_ms"]["gaze"]["p50"] > 0  # the tiny model draws pupils: they are found every frame
    assert 0 < report["latency_ms"]["p50"] <= report["latency_ms"]["p95"] <= report["latency_ms"]["p99"]
    assert report["detector_runs"] <= 4  # the tracker, not the detector, follows the face (detected in warm-up)
    decode = report["decode_ms"]  # the capture thread's share of the cores, beside the loop
    assert 0 < decode["p50"] <= decode["p95"] and decode["frames"] == report["captured"] and 0 < decode["core_share"] < 1
    loop = report["loop_ms"]
    assert 0 <= loop["between"]["p50"] < 1.0  # the stages cover the frame's time: no hidden wait between them
    assert 0 < loop["thread_cpu"]["p50"] <= loop["frame"]["p95"]
    baseline = report["baseline"]  # the seed's method: a detector run on every frame
    assert baseline["method"] == "seed baseline" and baseline["detector_runs"] == baseline["frames"] == 40
    assert (baseline["provider"], baseline["precision"]) == ("onnxruntime CPU", "fp32")  # the seed's engine
    speedup = report["speedup"]  # the two loops took turns in three stretches of the 40 frames
    assert speedup["fps"] == pytest.approx(report["fps"] / baseline["fps"], rel=0.01) and len(speedup["rounds"]) == 3
    assert min(speedup["rounds"]) <= speedup["fps"] <= max(speedup["rounds"])


class SlowGenerator:
    """The real generator plus a fixed delay: a model too slow for the camera."""

    def __init__(self, generator: Generator, delay: float) -> None:
        self.generator, self.delay, self.info = generator, delay, generator.info
        self.neutral_reference = generator.neutral_reference

    def __call__(self, sketch, reference=None):
        time.sleep(self.delay)
        return self.generator(sketch, reference)

    def submit(self, sketch, reference=None, wait=False):
        self.started = time.perf_counter()
        self.generator.submit(sketch, reference, wait)

    def result(self):
        time.sleep(self.delay)
        face, seconds = self.generator.result()
        return face, seconds + self.delay

    def reference(self, points, t=None, out=None):
        return self.generator.reference(points, t, out)


def test_slow_generator_drops_stale_frames_and_latency_stays_bounded(generator, analyzer):
    puppeteer = Puppeteer(SlowGenerator(generator, 0.1), analyzer, PuppetConfig())
    null = create_sink("null", SinkConfig(640, 480, 30))
    times = StageTimes()
    with VideoSource(str(VIDEOS / "lp_d18.mp4")) as video, LatestFrameCapture(video, pace_fps=30.0) as capture:
        result = run_live(capture, puppeteer, [null], times, max_frames=15)
    assert result.frames == 15 and null.frames == 15
    assert result.dropped >= 15  # ~2 of every 3 camera frames arrive while the generator works
    latency = times.latency[: times.count]
    working = times.stages[: times.count, 1:].sum(axis=1)  # from taking the frame to sending the output
    # Each frame taken is the newest (at most a frame interval old, plus slack for a busy machine),
    # never one from a backlog, which would age by a generator run per frame.
    assert (latency - working).max() < 2 / 30 + 0.1
    assert np.median(working) >= 0.1  # the generator's delay is in the stages
    loop = times.summary()["loop_ms"]
    assert loop["frame"]["p50"] >= 100 and abs(loop["between"]["p50"]) < 5  # the frame's time is in its stages
    assert loop["thread_cpu"]["p50"] < loop["frame"]["p50"] - 80  # the planted sleep: the thread off the cores


def test_a_face_submitted_to_the_generators_thread_is_the_face_a_call_gives(generator, tiny_dataset):
    path = sorted((tiny_dataset / "test" / "input").glob("*.png"))[1]
    sketch, reference = cv2.imread(str(path)), cv2.imread(str(path.parent.parent / "reference" / path.name))
    called = generator(sketch, reference).copy()
    generator.submit(sketch, reference)
    sketch[:] = 0  # read before submit returned
    with pytest.raises(RuntimeError):
        generator.submit(sketch, reference)  # one run at a time
    face, seconds = generator.result()
    assert (face == called).all() and seconds > 0
    sketch, reference = cv2.imread(str(path)), cv2.imread(str(path.parent.parent / "reference" / path.name))
    generator.submit(sketch, reference, wait=True)  # in turn: run on this thread, the face as before
    face, seconds = generator.result()
    assert (face == called).all() and seconds > 0


def test_the_loop_overlaps_where_the_generator_keeps_its_cores():
    assert loop_plan("auto", 1) == loop_plan("auto", 2) == loop_plan("off", 8) == LoopPlan(False, None)
    assert loop_plan("auto", 4) == LoopPlan(True, 3)  # one core for the loop's own stages
    assert loop_plan("on", 2) == LoopPlan(True, 1) and loop_plan("on", 1) == LoopPlan(True, 1)


def test_the_capture_keeps_the_frames_the_loop_holds():
    with VideoSource(str(VIDEOS / "lp_d18.mp4")) as video, LatestFrameCapture(video, pace_fps=100.0, hold=2) as capture:
        first, _ = capture.get()
        kept = first.copy()
        second, _ = capture.get()
        also = second.copy()
        time.sleep(0.1)  # ten frames decoded meanwhile, into the buffers the loop does not hold
        assert (first == kept).all() and (second == also).all() and not (first == second).all()
        capture.get()
        time.sleep(0.1)
        assert (second == also).all()  # the last two frames taken stay as they were


def test_a_looping_capture_starts_again_where_the_last_left_the_file_at_its_end():
    with VideoSource(str(VIDEOS / "lp_d18.mp4")) as video:
        first = video.read().copy()
        while video.grab():
            pass  # the file read to its end, as a capture before this one may leave it
        with LatestFrameCapture(video, pace_fps=2.0, loop=True) as capture:  # the next frame half a second later
            frame, _ = capture.get()
            assert (frame == first).all()


class ShownWithItsSketch(NullSink):
    """A null sink that keeps each frame sent with the sketch and reference the puppeteer says it shows."""

    def __init__(self, config: SinkConfig, puppeteer: Puppeteer) -> None:
        super().__init__(config)
        self.puppeteer, self.shown = puppeteer, []

    def send(self, frame: np.ndarray) -> None:
        super().send(frame)
        self.shown.append((frame.copy(), self.puppeteer.sketch.copy(), self.puppeteer.reference.copy()))


def test_the_overlapped_loop_shows_each_face_with_the_sketch_it_was_drawn_from(generator, analyzer):
    size = generator.info.size  # the face layout at the model's size: the output frame is the face
    puppeteer = Puppeteer(generator, analyzer, PuppetConfig(layout="face", width=size, height=size))
    sink = ShownWithItsSketch(SinkConfig(size, size, 30), puppeteer)
    times = StageTimes()
    with VideoSource(str(VIDEOS / "lp_d19.mp4")) as video, \
            LatestFrameCapture(video, pace_fps=30.0, loop=True, hold=2) as capture:
        result = run_live(capture, puppeteer, [sink], times, max_frames=40, overlap=True)
    assert result.frames == len(sink.shown) == times.count == 40 and result.stopped_by == "limit"
    assert len({sketch.tobytes() for _, sketch, _ in sink.shown}) > 20  # the face moves: sketches differ
    for face, sketch, reference in sink.shown:  # the face each sketch and reference make, never a neighbour's
        assert (face == generator(sketch, reference)).all()
    stages, latency = times.stages[: times.count], times.latency[: times.count]
    assert (stages[:, STAGES.index("generate")] > 0).all()
    # The tiny model keeps up with a 30 fps camera: each face is shown as soon as it is made, not
    # held back until the next camera frame comes to be prepared (33 ms later).
    own = stages[:, 1:STAGES.index("generate")].sum(axis=1) + stages[:, STAGES.index("wait"):].sum(axis=1)
    assert np.median(latency - own) < 0.005
    summary = times.summary()
    assert summary["overlapped"] and abs(summary["loop_ms"]["between"]["p50"]) < 1.0
    with pytest.raises(ValueError, match="hold"):
        with VideoSource(str(VIDEOS / "lp_d19.mp4")) as video, LatestFrameCapture(video) as capture:
            run_live(capture, puppeteer, [sink], times, max_frames=2, overlap=True)


class CoverageShown(NullSink):
    """A null sink that keeps what a preview would show of the coverage."""

    shows_coverage = True

    def __init__(self, config: SinkConfig) -> None:
        super().__init__(config)
        self.statuses: list[str] = []

    def show_coverage(self, status: str) -> None:
        self.statuses.append(status)


def test_the_live_loop_hands_the_preview_where_the_driver_leaves_the_target(generator, analyzer):
    puppeteer = Puppeteer(generator, analyzer, PuppetConfig())
    assert puppeteer.coverage is not None  # the model's sidecar carries its target's ranges
    shown = CoverageShown(SinkConfig(640, 480, 30))
    with VideoSource(str(VIDEOS / "lp_d18.mp4")) as video, LatestFrameCapture(video, pace_fps=30.0) as capture:
        result = run_live(capture, puppeteer, [shown], StageTimes(), max_frames=20)
    watch = puppeteer.coverage
    assert len(shown.statuses) == result.frames == watch.frames == 20  # every frame, the face tracked in each
    pattern = r"(inside the target's video|outside the target's video: [a-z_, ]+) \(\d+% of frames outside\)"
    assert all(re.fullmatch(pattern, status) for status in shown.statuses)
    assert shown.statuses[-1] == watch.status() and f"({100 * watch.outside_any / 20:.0f}% of frames" in watch.status()


def test_tracker_notices_the_face_is_gone(analyzer):
    tracker = FaceTracker(analyzer, TrackerConfig(verify_every=5))
    with VideoSource(str(VIDEOS / "lp_d18.mp4")) as video:
        found = [tracker.update(video.read()) is not None for _ in range(20)]
        frame = video.read()
    assert all(found) and tracker.detector_runs == 1
    empty = cv2.resize(cv2.imread(str(IMAGES / "coffee.png")), frame.shape[1::-1])
    lost_after = next(i for i in range(10) if tracker.update(empty) is None)
    assert lost_after < 5
    assert tracker.update(frame) is not None  # and finds it again


def test_frames_without_a_face_never_show_the_driver(generator, analyzer):
    config = PuppetConfig(width=64, height=64, hold_seconds=0.2, tracker=TrackerConfig(verify_every=1),
                          retarget=RetargetConfig(mode="absolute"))
    puppeteer = Puppeteer(generator, analyzer, config)
    row = np.zeros(len(STAGES))
    with VideoSource(str(VIDEOS / "lp_d18.mp4")) as video:
        faces = [video.read() for _ in range(3)]
    empty = cv2.resize(cv2.imread(str(IMAGES / "coffee.png")), faces[0].shape[1::-1])
    for i, frame in enumerate(faces):
        last = puppeteer.process(frame, i / 30, row).copy()
    assert not np.array_equal(last, cv2.resize(puppeteer.neutral_face, (64, 64)))
    held = puppeteer.process(empty, 3 / 30, row).copy()  # within hold_seconds: the last output
    assert np.array_equal(held, last)
    neutral = puppeteer.process(empty, 1.0, row).copy()  # later: the target's neutral face
    assert np.array_equal(neutral, cv2.resize(puppeteer.neutral_face, (64, 64)))
    assert puppeteer.faces_found == 3


def test_pupil_model_follows_the_drivers_eyes_and_older_models_keep_working(tiny_model, analyzer, tmp_path):
    with VideoSource(str(VIDEOS / "lp_d18.mp4")) as video:
        frames = [video.read() for _ in range(4)]
    config = PuppetConfig(width=64, height=64, retarget=RetargetConfig(mode="absolute"))
    puppeteer = Puppeteer(Generator(tiny_model, provider="cpu"), analyzer, config)
    row = np.zeros(len(STAGES))
    for i, frame in enumerate(frames):
        puppeteer.process(frame, i / 30, row)
    assert puppeteer.draw_pupils and np.isfinite(puppeteer.pupils).all()  # lp_d18 looks into the camera
    for pupil, eye_slice in zip(puppeteer.pupils, EYES):
        assert cv2.pointPolygonTest(puppeteer.points[eye_slice].reshape(-1, 1, 2), tuple(map(float, pupil)), False) >= 0
    assert (puppeteer.sketch == PUPIL_COLOUR).all(axis=2).any()
    old = tmp_path / "old.onnx"  # a model exported before pupils: its sidecar has no pupil fields
    old.write_bytes(tiny_model.read_bytes())
    copy_reference(tiny_model, tmp_path)
    info = json.loads(sidecar_path(tiny_model).read_text())
    sidecar_path(old).write_text(json.dumps({k: v for k, v in info.items() if "pupils" not in k}))
    puppeteer = Puppeteer(Generator(old, provider="cpu"), analyzer, config)
    for i, frame in enumerate(frames):
        out = puppeteer.process(frame, i / 30, row)
    assert out.shape == (64, 64, 3) and puppeteer.points is not None and puppeteer.pupils is None
    assert not (puppeteer.sketch == PUPIL_COLOUR).all(axis=2).any()


def test_every_sink_is_in_the_registry():
    assert set(sink_names()) == {"virtual", "window", "file", "record", "null"}


def test_file_sink_writes_a_readable_video_only_on_clean_close(tmp_path):
    path = tmp_path / "rec.mp4"
    frame = np.full((48, 64, 3), (0, 128, 255), np.uint8)
    with create_sink("file", SinkConfig(64, 48, 30, path=str(path))) as sink:
        for _ in range(5):
            sink.send(frame)
        assert not path.exists()  # still being written under a temporary name
    with VideoSource(str(path)) as video:
        frames = list(video)
    assert len(frames) == 5 and abs(frames[0].astype(int) - frame).mean() < 8  # BGR order kept
    with pytest.raises(RuntimeError), create_sink("file", SinkConfig(64, 48, 30, path=str(tmp_path / "x.mp4"))) as sink:
        sink.send(frame)
        raise RuntimeError("crash mid-recording")
    assert list(tmp_path.glob("x*")) == [] and list(tmp_path.glob(".x*")) == []


class RecordingBackend:
    """Stand-in for the v4l2loopback device (no kernel module here), behind pyvirtualcam's backend API."""

    frames: list = []
    fourcc: int | None = None

    def __init__(self, *, width, height, fps, fourcc, device, **kw):
        self.size = (width, height)
        RecordingBackend.fourcc = fourcc

    def device(self):
        return "/dev/video-test"

    def native_fourcc(self):
        return None

    def send(self, frame):
        RecordingBackend.frames.append(frame.copy())

    def close(self):
        pass


def test_virtual_sink_sends_bgr_frames_through_pyvirtualcam():
    pyvirtualcam.register_backend("recording", RecordingBackend)
    RecordingBackend.frames.clear()
    frame = np.zeros((48, 64, 3), np.uint8)
    frame[..., 2] = 255  # red in BGR
    with create_sink("virtual", SinkConfig(64, 48, 30, backend="recording")) as sink:
        assert sink.paces and sink.device == "/dev/video-test"
        sink.send(frame)
    assert len(RecordingBackend.frames) == 1
    assert RecordingBackend.fourcc == encode_fourcc(pyvirtualcam.PixelFormat.BGR.value)  # no conversion on our side
    assert RecordingBackend.frames[0].reshape(48, 64, 3)[0, 0].tolist() == [0, 0, 255]


def test_missing_virtual_camera_explains_the_fix():
    with pytest.raises(Face2FaceError, match="modprobe v4l2loopback"):
        create_sink("virtual", SinkConfig(64, 48, 30, backend="v4l2loopback"))


def test_window_sink_without_display_says_so(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(Face2FaceError, match="no display"):
        create_sink("window", SinkConfig(64, 48, 30))


def test_camera_that_does_not_open_is_named(capsys, tiny_model):
    assert main(["live", "--model", str(tiny_model), "--camera", "42", "--record", "/tmp/never.mp4"]) == 1
    err = capsys.readouterr().err
    assert "camera 42" in err and "--camera" in err


def test_live_recording_lasts_as_long_as_the_run(tiny_model, tmp_path, capsys):
    out = tmp_path / "live.mp4"
    assert main(["live", "--model", str(tiny_model), "--source", str(VIDEOS / "lp_d19.mp4"),
                 "--record", str(out), "--frames", "20", "--width", "128", "--height", "96", "--fps", "10"]) == 0
    summary = capsys.readouterr().out
    assert summary.startswith("20 frames in ")
    seconds = float(summary.split(" frames in ")[1].split(" s ")[0])
    with VideoSource(str(out)) as video:
        assert (video.width, video.height) == (128, 96) and video.fps == 10
        recorded = sum(1 for _ in video) / video.fps
    # 20 frames stamped at 10 fps would last 2 s; the run (paced at the clip's 30 fps) lasts about 0.7 s
    assert abs(recorded - seconds) <= 0.2


def test_live_loops_a_short_video_and_reports_its_memory(tiny_model, tmp_path, capsys):
    clip = tmp_path / "short.mp4"
    with VideoSource(str(VIDEOS / "lp_d19.mp4")) as video:
        writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 30, (video.width, video.height))
        for _, frame in zip(range(15), video):
            writer.write(frame)
        writer.release()
    assert main(["live", "--model", str(tiny_model), "--source", str(clip), "--loop", "--frames", "75",
                 "--record", str(tmp_path / "out.mp4"), "--width", "128", "--height", "96"]) == 0
    summary = capsys.readouterr().out
    assert summary.startswith("75 frames in ") and "MiB after the first second" in summary  # 5 rounds of 15
    assert main(["live", "--model", str(tiny_model), "--loop", "--record", str(tmp_path / "no.mp4")]) == 1
    assert "--loop plays a video file" in capsys.readouterr().err


def test_recording_holds_each_frame_until_the_next_one(tmp_path):
    path = tmp_path / "rec.mp4"
    times = iter([0.0, 0.15, 0.17, 0.42, 0.55])  # sends at 0, 0.15, 0.17, 0.42 s; closed at 0.55 s
    frames = [np.full((48, 64, 3), level, np.uint8) for level in (0, 80, 160, 240)]
    with create_sink("record", SinkConfig(64, 48, 10.0, path=str(path))) as sink:
        sink.clock = lambda: next(times)
        for frame in frames:
            sink.send(frame)
    with VideoSource(str(path)) as video:
        levels = [int(round(float(f.mean()) / 80)) for f in video]
    # 10 fps: the first frame shows until 0.15 s (periods 0 and 1), the second is replaced within
    # period 2 by the third, which shows until 0.42 s (periods 2-4), then the fourth until 0.55 s
    assert levels == [0, 0, 2, 2, 2, 3]


def test_recordings_get_the_mode_of_any_new_file(tmp_path, umask_022):
    for name in ("file", "record"):
        with create_sink(name, SinkConfig(64, 48, 30, path=str(tmp_path / f"{name}.mp4"))) as sink:
            sink.send(np.zeros((48, 64, 3), np.uint8))
        assert stat.S_IMODE((tmp_path / f"{name}.mp4").stat().st_mode) == 0o644  # not mkstemp's 0600


def test_fp16_model_falls_back_to_fp32_when_its_outputs_turn_non_finite(tiny_run, tmp_path):
    import onnx
    from onnx import numpy_helper

    from face2face.files import file_sha256
    from face2face.train.export import ExportConfig, export

    half = tmp_path / "half.onnx"
    export(tiny_run, half, ExportConfig(fp16=True))
    proto = onnx.load(str(half))
    kernel = next(i for i in proto.graph.initializer if i.data_type == onnx.TensorProto.FLOAT16 and len(i.dims) == 4)
    weights = numpy_helper.to_array(kernel).copy()
    weights.flat[0] = np.inf  # what a weight beyond float16's range (65504) becomes
    kernel.CopyFrom(numpy_helper.from_array(weights, kernel.name))
    onnx.save(proto, str(half))
    info = json.loads(sidecar_path(half).read_text())
    sidecar_path(half).write_text(json.dumps({**info, "model_sha256": file_sha256(half)}))  # as if exported so
    raw = ort.InferenceSession(str(half), providers=[CPU]).run(None, {"sketch": np.zeros((1, 64, 64, 6), np.float32)})[0]
    assert not np.isfinite(raw).all()  # the premise: this fp16 model overflows
    generator = Generator(half, provider="cpu")
    assert generator.info.precision == "fp32"
    session = ort.InferenceSession(str(tmp_path / "half.fp32.onnx"), providers=[CPU])
    reference = Generator(tmp_path / "half.onnx", engine=(OrtEngine(session), EngineChoice("cpu", "fp32")))
    sketch = np.zeros((64, 64, 3), np.uint8)
    assert np.array_equal(generator(sketch), reference(sketch))


class StallingCamera:
    """A webcam stand-in (no camera here) with VideoSource's interface: real frames, then silence."""

    def __init__(self, video: VideoSource, frames: int) -> None:
        import threading

        self.video, self.left, self.spec = video, frames, "camera 0"
        self.width, self.height, self.fps = video.width, video.height, video.fps
        self.unplugged = threading.Event()

    def read(self, out=None):
        if self.left == 0:
            self.unplugged.wait(10)  # a frozen driver: read() blocks
            return None
        self.left -= 1
        return self.video.read(out)


def test_camera_that_stops_delivering_ends_the_loop_and_keeps_the_recording(generator, analyzer, tmp_path):
    path = tmp_path / "rec.mp4"
    with VideoSource(str(VIDEOS / "lp_d18.mp4")) as video:
        camera = StallingCamera(video, frames=8)
        with create_sink("file", SinkConfig(64, 64, 30, path=str(path))) as sink, \
                LatestFrameCapture(camera, pace_fps=30.0) as capture:
            puppeteer = Puppeteer(generator, analyzer, PuppetConfig(width=64, height=64))
            result = run_live(capture, puppeteer, [sink], StageTimes(), stall_timeout=0.5)
        camera.unplugged.set()
    assert result.stopped_by == "stalled" and 1 <= result.frames <= 8
    with VideoSource(str(path)) as recorded:
        assert sum(1 for _ in recorded) == result.frames


def test_window_sink_shows_frames_and_maps_keys(x_display):
    import subprocess

    frame = np.zeros((240, 320, 3), np.uint8)
    with create_sink("window", SinkConfig(320, 240, 30)) as sink:
        sink.show_stats(30.0, 12.0)
        for _ in range(3):
            sink.send(frame)
        window = subprocess.run(["xdotool", "search", "--name", "face2face"], capture_output=True, text=True).stdout.split()
        assert len(window) == 1
        geometry = subprocess.run(["xdotool", "getwindowgeometry", window[0]], capture_output=True, text=True).stdout
        width, height = (int(v) for v in geometry.split("Geometry:")[1].split("x"))
        assert width >= 320 and height >= 240  # the frame, plus the toolkit's bars
        sink.show_coverage("outside the target's video: mouth (10% of frames outside)")
        sink.send(frame)
        assert not sink._shown[40:60].any()  # the coverage line is off until v
        subprocess.run(["xdotool", "key", "--window", window[0], "v"], stderr=subprocess.DEVNULL)
        for _ in range(20):
            sink.send(frame)
            assert sink.poll() is None  # the window's own view: no command for the loop
            if sink.coverage_shown:
                break
        sink.send(frame)
        assert sink.coverage_shown and sink._shown[40:60].any()  # drawn under the fps line
        commands = []
        for key in ("c", "s", "q"):
            subprocess.run(["xdotool", "key", "--window", window[0], key], stderr=subprocess.DEVNULL)
            for _ in range(20):
                sink.send(frame)
                if (command := sink.poll()) is not None:
                    commands.append(command)
                    break
        assert commands == ["neutral", "sketch", "quit"]
        assert not frame.any()  # the fps text is drawn on the window's own copy, not the shared frame

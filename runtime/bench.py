"""`face2face bench`: the live loop on a video paced like a camera, with per-stage latency figures."""

from __future__ import annotations

import os
import platform
import time
from contextlib import nullcontext
from dataclasses import dataclass

import cv2
import dlib
import numpy as np
import onnxruntime as ort

from face2face.console import plural
from face2face.faces import FaceAnalyzer
from face2face.runtime.capture import LatestFrameCapture
from face2face.runtime.generator import Generator
from face2face.runtime.openvino_engine import cpu_capabilities, cpu_name, openvino_missing
from face2face.runtime.pipeline import Job, Puppeteer, PuppetConfig, StageTimes, generated, run_live, submit_to
from face2face.runtime.reload import ModelReloader, ModelVersion, Reload, reload_figures, reload_summary
from face2face.runtime.sinks import NullSink, SinkConfig
from face2face.sketch import PARTS
from face2face.video import VideoSource


DRIFT_WINDOW = 1000  # frames compared at the start and the end of a long run


@dataclass(frozen=True)
class BenchConfig:
    """What the benchmark runs."""

    frames: int = 300  # measured frames
    warmup: int = 30  # frames processed before measuring
    camera_fps: float = 60.0  # the video is delivered at this rate, looping, like a 60 fps webcam
    overlap: bool = False  # prepare the next frame while the generator runs (``run_live``)
    rounds: int = 3  # with a baseline: stretches of frames each loop takes in turn with the other (``run_bench``)


class SeedLoop:
    """The seed's per-frame method, as a baseline: what face2face-demo's webcam script does.

    Every frame: downscale x1/4, dlib HOG detection (upsample 1), 68 landmarks, polylines on a
    black frame, centre crop resized to the model size, generator (a model that reads a reference
    gets the neutral face's: the seed had none); no tracking, no smoothing.
    """

    def __init__(self, generator: Generator, analyzer: FaceAnalyzer) -> None:
        self.generator, self.predictor = generator, analyzer.predictor.predictor
        self.detector = dlib.get_frontal_face_detector()
        self.size = generator.info.size
        self.detector_runs = 0
        self.faces_found = 0

    def prepare(self, frame: np.ndarray, t: float, row: np.ndarray) -> Job:
        """Detect, find the landmarks and draw the seed's sketch of a frame."""
        clock = time.perf_counter
        t0 = clock()
        small = cv2.resize(frame, None, fx=0.25, fy=0.25)
        gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        faces = self.detector(gray, 1)
        self.detector_runs += 1
        shapes = [np.array([(p.x, p.y) for p in self.predictor(gray, f).parts()], np.float32) * 4 for f in faces]
        t1 = clock()
        h, w = frame.shape[:2]
        side = min(h, w)
        black = np.zeros((h, w, 3), np.uint8)
        for points in shapes:
            self.faces_found += 1
            for _, start, stop, closed, _colour in PARTS:  # the seed: white polylines, 3 px, full frame
                cv2.polylines(black, [points[start:stop].astype(np.int32)], closed, (255, 255, 255), 3)
        crop = black[(h - side) // 2 : (h + side) // 2, (w - side) // 2 : (w + side) // 2]
        sketch = cv2.resize(crop, (self.size, self.size))
        row[1:5] = (t1 - t0, 0.0, clock() - t1, 0.0)
        return Job(frame, t, row, sketch=sketch)

    def submit(self, job: Job, wait: bool = False) -> None:
        """Start the generator on the sketch (the seed ran it on every frame, face or not)."""
        submit_to(self.generator, job, wait)

    def result(self, job: Job) -> np.ndarray:
        return generated(self.generator, job)

    def show(self, job: Job, face: np.ndarray) -> np.ndarray:
        """The generated face is the output."""
        return face


class _Method:
    """One loop's benchmark (face2face's or the seed's), measured over one or more stretches of
    frames: its figures add up over the stretches, each read from the source where the last stopped."""

    def __init__(self, source: str, generator: Generator, analyzer: FaceAnalyzer, puppet: PuppetConfig,
                 config: BenchConfig, seed: bool, version: ModelVersion | None) -> None:
        self.puppet, self.config, self.overlap = puppet, config, config.overlap and not seed
        self.times = StageTimes(config.warmup + config.frames)
        self.puppeteer = SeedLoop(generator, analyzer) if seed else Puppeteer(generator, analyzer, puppet)
        self.reloader = None if seed or version is None else ModelReloader(self.puppeteer, version)
        self.sink = NullSink(SinkConfig(puppet.width, puppet.height, config.camera_fps))
        self.video = VideoSource(source)
        self.frames, self.seconds, self.dropped, self.captured, self.detector_runs = 0, 0.0, 0, 0, 0
        self.memory: list[float | None] = []  # after warm-up, then once a second, then at the end
        self.decoded: list[float] = []
        self.stretch_fps: list[float] = []

    def __enter__(self) -> _Method:
        if self.reloader is not None:
            self.reloader.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.reloader is not None:
            self.reloader.close()
        self.video.close()

    def run(self, frames: int, measure: bool = True) -> None:
        """``frames`` more frames of the loop (``measure=False``: the warm-up, not counted)."""
        with LatestFrameCapture(self.video, pace_fps=self.config.camera_fps, loop=True,
                                hold=2 if self.overlap else 1) as capture:
            runs_before = self.puppeteer.detector_runs
            if measure and not self.memory:
                self.memory.append(resident_mb())
            on_second = (lambda fps, ms: self.memory.append(resident_mb())) if measure else None
            result = run_live(capture, self.puppeteer, [self.sink], self.times, max_frames=frames,
                              on_second=on_second, reloader=self.reloader, overlap=self.overlap)
        if not measure:
            return
        self.memory.append(resident_mb())
        self.frames += result.frames
        self.seconds += result.seconds
        self.stretch_fps.append(result.frames / max(result.seconds, 1e-9))
        self.dropped, self.captured = self.dropped + result.dropped, self.captured + result.captured
        self.detector_runs += self.puppeteer.detector_runs - runs_before
        self.decoded += list(capture.decode_seconds)[: result.captured]  # a fresh capture: its frames the loop counted

    def report(self, model: str) -> dict:
        """The figures as a JSON-ready dict."""
        puppet = self.puppet
        generator, seed = self.puppeteer.generator, isinstance(self.puppeteer, SeedLoop)  # the model running at the end
        return {
            "provider": generator.provider,
            "precision": generator.precision,
            "model": str(model),
            "model_size": generator.info.size,
            "ngf": generator.info.ngf,
            "source": str(self.video.spec),
            "source_size": [self.video.width, self.video.height],
            "camera_fps": self.config.camera_fps,
            "frames": self.frames,
            "fps": round(self.frames / max(self.seconds, 1e-9), 2),
            **self.times.summary(skip=self.config.warmup),
            "dropped": self.dropped,
            "captured": self.captured,
            "detector_runs": self.detector_runs,
            "memory_mb": memory_figures(self.memory),
            "decode_ms": decode_figures(self.decoded, self.seconds),
            "drift": _drift(self.times, self.config.warmup),
            "faces_found": self.puppeteer.faces_found,
            **reload_figures(self.reloader.reloads if self.reloader else []),
            "method": "seed baseline" if seed else "face2face",
            "overlap": self.overlap,
            "generator_threads": generator.threads,
            "layout": puppet.layout,
            "retarget": puppet.retarget.mode,
            "output_size": [puppet.width, puppet.height],
            "machine": _machine(),
        }


def run_bench(model: str, source: str, generator: Generator, analyzer: FaceAnalyzer,
              puppet: PuppetConfig, config: BenchConfig = BenchConfig(), seed: bool = False,
              version: ModelVersion | None = None, baseline: Generator | None = None) -> dict:
    """Run the live loop into a null sink; returns the figures as a JSON-ready dict.

    ``seed=True`` runs the seed's per-frame method instead. With the ``version`` of the model
    files ``generator`` was loaded from, a newer version written during the run is swapped in as
    ``live`` does, and each swap is timed (``reloads``). With a ``baseline`` generator the seed's
    method runs too, in ``config.rounds`` stretches taking turns with the loop's, so that a
    machine whose speed drifts slows both alike: its figures go into ``baseline``, the ratio of the
    frame rates into ``speedup`` (overall and per round).
    """
    rounds = max(config.rounds, 1) if baseline is not None else 1
    share = [config.frames // rounds + (i < config.frames % rounds) for i in range(rounds)]
    with _Method(source, generator, analyzer, puppet, config, seed, version) as ours, \
            (_Method(source, baseline, analyzer, puppet, config, True, None) if baseline else nullcontext()) as theirs:
        methods = [m for m in (ours, theirs) if m is not None]
        for method in methods:
            method.run(config.warmup, measure=False)
        for frames in share:
            for method in methods:
                method.run(frames)
    report = ours.report(model)
    if theirs is not None:
        report["baseline"] = theirs.report(model)
        report["speedup"] = {"fps": round(report["fps"] / max(report["baseline"]["fps"], 1e-9), 3),
                             "rounds": [round(a / max(b, 1e-9), 3) for a, b in zip(ours.stretch_fps, theirs.stretch_fps)]}
    return report


def decode_figures(seconds: list[float], wall: float) -> dict | None:
    """The capture thread's decoding: ms a frame (p50, p95) and its share of one core over ``wall`` s."""
    if not seconds or wall <= 0:
        return None
    ms = np.asarray(seconds) * 1e3
    return {"p50": round(float(np.percentile(ms, 50)), 2), "p95": round(float(np.percentile(ms, 95)), 2),
            "frames": len(ms), "core_share": round(float(ms.sum()) / 1e3 / wall, 3)}


def resident_mb() -> float | None:
    """This process's resident memory in MiB (from /proc; None where there is none)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def memory_figures(samples: list[float | None]) -> dict | None:
    """Resident memory after warm-up, at the end and at its peak, and the growth in between."""
    if any(m is None for m in samples):
        return None
    start, end = samples[0], samples[-1]
    return {"after_warmup": round(start, 1), "end": round(end, 1), "peak": round(max(samples), 1),
            "growth_pct": round(100 * (end - start) / start, 2), "samples": len(samples)}


def _drift(times: StageTimes, skip: int, window: int = DRIFT_WINDOW) -> dict | None:
    """Latency p99 over the first and the last ``window`` measured frames (runs of 2 windows or more)."""
    latency = times.latency[skip : times.count] * 1e3
    if len(latency) < 2 * window:
        return None
    first, last = float(np.percentile(latency[:window], 99)), float(np.percentile(latency[-window:], 99))
    return {"window": window, "p99_first_ms": round(first, 2), "p99_last_ms": round(last, 2),
            "p99_change_pct": round(100 * (last - first) / first, 2)}


def _machine() -> dict:
    """The CPU, its cores and matrix-unit capabilities (as OpenVINO sees them), and the runtimes' versions."""
    machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
               "onnxruntime": ort.__version__, "openvino": None}
    if not openvino_missing():
        import openvino

        machine.update(cpu=cpu_name(), capabilities=sorted(cpu_capabilities()), openvino=openvino.__version__)
    return machine


def format_table(report: dict) -> str:
    """The benchmark as a small text table."""
    lines = [
        f"{report['model']} (ngf {report['ngf']}, {report['model_size']} px) on {report['provider']} {report['precision']}, "
        f"{report['source']} {report['source_size'][0]}x{report['source_size'][1]} at {report['camera_fps']:.0f} fps",
        f"{report['frames']} frames: {report['fps']:.1f} fps, dropped {report['dropped']}, "
        f"detector runs {report['detector_runs']}; stages {'overlapped' if report['overlap'] else 'in turn'}, "
        f"the generator on {plural(report['generator_threads'], 'thread')}",
        f"{'stage':10s} {'p50 ms':>8s} {'p95 ms':>8s}",
    ]
    for name, s in report["stages_ms"].items():
        lines.append(f"{name:10s} {s['p50']:8.2f} {s['p95']:8.2f}")
    lat = report["latency_ms"]
    lines.append(f"{'latency':10s} {lat['p50']:8.2f} {lat['p95']:8.2f}   p99 {lat['p99']:.2f} (capture -> sent)")
    if loop := report.get("loop_ms"):
        lines.append(f"loop       a frame {loop['frame']['p50']:.2f} ms p50, of it {loop['between']['p50']:.2f} between the "
                     f"stages; the loop's thread on a core {loop['thread_cpu']['p50']:.2f} ms of it")
        if report.get("overlap"):
            lines.append(f"overlap    the generator runs beside the loop's other stages: idle {loop['generator_idle']['p50']:.2f} "
                         f"ms a frame p50, the loop waits for it {report['stages_ms']['wait']['p50']:.2f} ms")
    if decode := report.get("decode_ms"):
        lines.append(f"decode     {decode['p50']:.2f} ms p50 a frame on the capture thread, {decode['frames']} frames: "
                     f"{100 * decode['core_share']:.0f}% of a core beside the loop")
    memory, drift = report.get("memory_mb"), report.get("drift")
    if memory:
        lines.append(f"memory     {memory['after_warmup']:.0f} MiB after warm-up, {memory['end']:.0f} at the end "
                     f"({memory['growth_pct']:+.1f}%), peak {memory['peak']:.0f}")
    if report.get("reloads"):
        lines.append(f"reloads    {reload_summary([Reload(**r) for r in report['reloads']])}")
    if drift:
        lines.append(f"drift      latency p99 {drift['p99_first_ms']:.1f} ms over the first {drift['window']} frames, "
                     f"{drift['p99_last_ms']:.1f} over the last ({drift['p99_change_pct']:+.1f}%)")
    if "baseline" in report:
        base = report["baseline"]
        lines.append(f"seed baseline, same model and clip, {base['provider']} {base['precision']}: "
                     f"{base['fps']:.1f} fps ({report['speedup']['fps']:.2f}x; by round "
                     f"{', '.join(f'{r:.2f}' for r in report['speedup']['rounds'])}), latency p50 "
                     f"{base['latency_ms']['p50']:.2f} ms, p95 {base['latency_ms']['p95']:.2f} ms, "
                     f"detector runs {base['detector_runs']}")
    return "\n".join(lines)

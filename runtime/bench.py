"""`face2face bench`: the live loop on a video paced like a camera, with per-stage latency figures."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass

import onnxruntime as ort

from face2face.faces import FaceAnalyzer
from face2face.runtime.capture import LatestFrameCapture
from face2face.runtime.generator import Generator
from face2face.runtime.pipeline import Puppeteer, PuppetConfig, StageTimes, run_live
from face2face.runtime.sinks import NullSink, SinkConfig
from face2face.video import VideoSource


@dataclass(frozen=True)
class BenchConfig:
    """What the benchmark runs."""

    frames: int = 300  # measured frames
    warmup: int = 30  # frames processed before measuring
    camera_fps: float = 60.0  # the video is delivered at this rate, looping, like a 60 fps webcam


def run_bench(model: str, source: str, generator: Generator, analyzer: FaceAnalyzer,
              puppet: PuppetConfig, config: BenchConfig = BenchConfig()) -> dict:
    """Run the live loop into a null sink; returns the figures as a JSON-ready dict."""
    times = StageTimes(config.warmup + config.frames)
    puppeteer = Puppeteer(generator, analyzer, puppet)
    sink = NullSink(SinkConfig(puppet.width, puppet.height, config.camera_fps))
    with VideoSource(source) as video, LatestFrameCapture(video, pace_fps=config.camera_fps, loop=True) as capture:
        run_live(capture, puppeteer, [sink], times, max_frames=config.warmup)
        dropped_before, captured_before, runs_before = capture.dropped, capture.captured, puppeteer.tracker.detector_runs
        result = run_live(capture, puppeteer, [sink], times, max_frames=config.frames)
        width, height = video.width, video.height
    frames = result.frames
    return {
        "provider": generator.provider,
        "model": str(model),
        "model_size": generator.info.size,
        "ngf": generator.info.ngf,
        "source": str(source),
        "source_size": [width, height],
        "camera_fps": config.camera_fps,
        "frames": frames,
        "fps": round(frames / max(result.seconds, 1e-9), 2),
        **times.summary(skip=config.warmup),
        "dropped": result.dropped - dropped_before,
        "captured": result.captured - captured_before,
        "detector_runs": puppeteer.tracker.detector_runs - runs_before,
        "faces_found": puppeteer.faces_found,
        "layout": puppet.layout,
        "retarget": puppet.retarget.mode,
        "output_size": [puppet.width, puppet.height],
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "onnxruntime": ort.__version__},
    }


def format_table(report: dict) -> str:
    """The benchmark as a small text table."""
    lines = [
        f"{report['model']} (ngf {report['ngf']}, {report['model_size']} px) on {report['provider']}, "
        f"{report['source']} {report['source_size'][0]}x{report['source_size'][1]} at {report['camera_fps']:.0f} fps",
        f"{report['frames']} frames: {report['fps']:.1f} fps, dropped {report['dropped']}, "
        f"detector runs {report['detector_runs']}",
        f"{'stage':10s} {'p50 ms':>8s} {'p95 ms':>8s}",
    ]
    for name, s in report["stages_ms"].items():
        lines.append(f"{name:10s} {s['p50']:8.2f} {s['p95']:8.2f}")
    lat = report["latency_ms"]
    lines.append(f"{'latency':10s} {lat['p50']:8.2f} {lat['p95']:8.2f}   p99 {lat['p99']:.2f} (capture -> sent)")
    return "\n".join(lines)

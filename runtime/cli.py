"""Command-line entries of the runtime side: live, reenact, bench."""

from __future__ import annotations

import argparse
import json
import logging
from contextlib import ExitStack
from pathlib import Path

log = logging.getLogger("face2face")


def add_commands(commands) -> None:
    """Register ``live``, ``reenact`` and ``bench`` on the main parser."""
    from face2face.cli import add_detector_option

    p = commands.add_parser("live", help="drive the target face from a webcam into a virtual camera")
    _model_options(p)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--camera", type=int, default=0, help="webcam index (default 0)")
    src.add_argument("--source", help="a video file instead of a webcam (played at its own speed)")
    p.add_argument("--virtual-cam", action="store_true", help="send frames to a virtual camera")
    p.add_argument("--device", help="virtual camera device, e.g. /dev/video10")
    p.add_argument("--backend", help="pyvirtualcam backend (v4l2loopback, obs, unitycapture)")
    p.add_argument("--preview", action="store_true", help="show a preview window")
    p.add_argument("--record", metavar="OUT.mp4", help="also record the output to a file")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--fps", type=float, default=30.0, help="output frame rate (default 30)")
    p.add_argument("--frames", type=int, default=None, help="stop after N frames")
    add_detector_option(p)
    p.set_defaults(handler=_live)

    p = commands.add_parser("reenact", help="drive the target face from a video file, every frame")
    _model_options(p)
    p.add_argument("--source", required=True, metavar="DRIVING.mp4")
    p.add_argument("-o", "--output", required=True, metavar="OUT.mp4")
    p.add_argument("--width", type=int, default=None, help="default: the model size (x3 side-by-side)")
    p.add_argument("--height", type=int, default=None)
    add_detector_option(p)
    p.set_defaults(handler=_reenact)

    p = commands.add_parser("bench", help="measure live-loop latency per stage on a video")
    _model_options(p)
    p.add_argument("--source", required=True, metavar="VIDEO")
    p.add_argument("--frames", type=int, default=300, help="measured frames (default 300)")
    p.add_argument("--warmup", type=int, default=30, help="frames before measuring (default 30)")
    p.add_argument("--camera-fps", type=float, default=60.0, help="rate the video is fed at (default 60)")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--json", metavar="OUT", help="also write the figures as JSON")
    p.add_argument("--baseline", action="store_true",
                   help="also run the seed's per-frame method (HOG every frame, onnxruntime fp32 on the CPU) "
                        "on the same model and clip")
    add_detector_option(p)
    p.set_defaults(handler=_bench)


def _model_options(p: argparse.ArgumentParser) -> None:
    from face2face.faces import TrackerConfig
    from face2face.runtime.compose import LAYOUTS
    from face2face.runtime.generator import PRECISIONS, PROVIDERS
    from face2face.runtime.retarget import MODES

    p.add_argument("--model", required=True, metavar="M.onnx", help="exported generator (with its .json sidecar)")
    p.add_argument("--retarget", choices=MODES, default="relative", help="driver -> target mapping (default relative)")
    p.add_argument("--layout", choices=LAYOUTS, default="face", help="output layout (default face)")
    p.add_argument("--provider", choices=PROVIDERS, default="auto",
                   help="generator engine: auto = CUDA if usable, else OpenVINO, else onnxruntime CPU (default auto)")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="OpenVINO compute: auto = bf16 on CPUs with native bf16, else fp32; int8 needs "
                        "`face2face quantize` first (default auto)")
    p.add_argument("--smooth-min-cutoff", type=float, default=1.0, help="One Euro filter: jitter at rest (Hz, lower = steadier)")
    p.add_argument("--smooth-beta", type=float, default=5.0, help="One Euro filter: lag when moving (higher = less lag)")
    p.add_argument("--redetect-every", type=int, default=TrackerConfig.redetect_every,
                   help=f"run the full face detector at least every N frames (default {TrackerConfig.redetect_every})")


def _engine(args):
    """The generator and face analyzer the options ask for."""
    from face2face.detectors import DetectorConfig
    from face2face.faces import FaceAnalyzer
    from face2face.runtime.generator import Generator

    return Generator(args.model, args.provider, args.precision), FaceAnalyzer(DetectorConfig(name=args.detector))


def _config(args, width: int, height: int):
    """The per-frame processing options."""
    from face2face.faces import TrackerConfig
    from face2face.runtime.pipeline import PuppetConfig
    from face2face.runtime.retarget import RetargetConfig
    from face2face.runtime.smooth import OneEuroConfig

    return PuppetConfig(
        layout=args.layout, width=width, height=height,
        retarget=RetargetConfig(mode=args.retarget),
        smoothing=OneEuroConfig(min_cutoff=args.smooth_min_cutoff, beta=args.smooth_beta),
        tracker=TrackerConfig(redetect_every=args.redetect_every),
    )


def _live(args) -> int:
    from face2face.errors import Face2FaceError
    from face2face.runtime.capture import LatestFrameCapture
    from face2face.runtime.pipeline import Puppeteer, StageTimes, run_live
    from face2face.runtime.sinks import SinkConfig, create_sink
    from face2face.video import VideoSource

    generator, analyzer = _engine(args)
    config = _config(args, args.width, args.height)
    names = (["virtual"] if args.virtual_cam else []) + (["window"] if args.preview else []) + (["file"] if args.record else [])
    if not names:
        raise Face2FaceError("nowhere to send frames: add --virtual-cam, --preview and/or --record OUT.mp4")
    sink_config = SinkConfig(args.width, args.height, args.fps, path=args.record, device=args.device, backend=args.backend)
    with ExitStack() as stack:
        sinks = [stack.enter_context(create_sink(name, sink_config)) for name in names]
        source = stack.enter_context(VideoSource(args.source if args.source else args.camera, args.width, args.height))
        pace = source.fps if args.source else None
        capture = stack.enter_context(LatestFrameCapture(source, pace_fps=pace))
        puppeteer = Puppeteer(generator, analyzer, config)
        for sink in sinks:
            if getattr(sink, "device", None):
                log.info("virtual camera: %s (%dx%d @ %g fps)", sink.device, args.width, args.height, args.fps)
        gaze = "gaze followed" if puppeteer.draw_pupils else "gaze not followed: the model was trained without pupils"
        log.info("running (%s retargeting, %s); Ctrl-C to stop", args.retarget, gaze)
        times = StageTimes()
        result = run_live(capture, puppeteer, sinks, times, max_frames=args.frames,
                          on_second=lambda fps, ms: log.debug("%.1f fps, %.0f ms", fps, ms))
    summary = times.summary()
    lat = summary["latency_ms"]
    print(f"{result.frames} frames in {result.seconds:.1f} s ({result.frames / max(result.seconds, 1e-9):.1f} fps), "
          f"latency p50 {lat.get('p50', 0):.1f} ms, dropped {result.dropped} stale frames; stopped: {result.stopped_by}"
          + (f"; recorded {args.record}" if args.record else ""))
    return 0


def _reenact(args) -> int:
    from tqdm import tqdm

    from face2face.runtime.pipeline import Puppeteer, StageTimes, run_offline
    from face2face.runtime.sinks import SinkConfig, create_sink
    from face2face.video import VideoSource

    with VideoSource(args.source) as source:
        generator, analyzer = _engine(args)
        size = generator.info.size
        width = args.width or (3 * size if args.layout == "side-by-side" else size)
        height = args.height or size
        puppeteer = Puppeteer(generator, analyzer, _config(args, width, height))
        with create_sink("file", SinkConfig(width, height, source.fps, path=args.output)) as sink, \
                tqdm(total=source.frame_count, desc="reenact", unit="frame") as bar:
            result = run_offline(source, source.fps, puppeteer, [sink], StageTimes(), on_frame=lambda n: bar.update(1))
    print(f"{args.output}: {result.frames} frames {width}x{height}, face found in {puppeteer.faces_found}")
    return 0


def _bench(args) -> int:
    from face2face.runtime.bench import BenchConfig, format_table, run_bench

    generator, analyzer = _engine(args)
    config = _config(args, args.width, args.height)
    bench = BenchConfig(frames=args.frames, warmup=args.warmup, camera_fps=args.camera_fps)
    report = run_bench(args.model, args.source, generator, analyzer, config, bench)
    if args.baseline:
        from face2face.runtime.generator import Generator

        seed_generator = Generator(args.model, provider="cpu")
        report["baseline"] = run_bench(args.model, args.source, seed_generator, analyzer, config, bench, seed=True)
    print(format_table(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0

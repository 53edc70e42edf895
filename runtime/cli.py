"""Command-line entries of the runtime side: live, reenact, record, bench."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
from contextlib import ExitStack
from typing import Callable

from face2face.progress import report as report_progress
from face2face.console import Counter, plural, ticker
from face2face.errors import Face2FaceError
from face2face.files import writable_file, write_atomic

log = logging.getLogger("face2face")


def add_commands(commands) -> None:
    """Register ``live``, ``reenact``, ``record`` and ``bench`` on the main parser."""
    from face2face.cli import (add_command, add_detector_option, frame_side, non_negative_int, positive_float,
                               positive_int)

    p = add_command(commands, "live", "drive the target face from a webcam into a virtual camera",
                    "Drive the target face from a webcam (or a video file: --source) into a virtual camera "
                    "(--virtual-cam; on Linux it needs v4l2loopback loaded), a preview window (--preview) and/or "
                    "a recording (--record). Every requested piece is checked before starting; `face2face doctor` "
                    "says what this machine has.")
    _model_options(p)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--camera", type=non_negative_int, default=0, metavar="N", help="webcam index")
    src.add_argument("--source", metavar="VIDEO", help="a video file instead of a webcam (played at its own speed)")
    p.add_argument("--loop", action="store_true", help="with --source: play the video over and over (demos, long runs)")
    p.add_argument("--virtual-cam", action="store_true", help="send frames to a virtual camera")
    p.add_argument("--device", help="virtual camera device, e.g. /dev/video10 (default: the first free one)")
    p.add_argument("--backend", help="pyvirtualcam backend: v4l2loopback, obs or unitycapture "
                                     "(default: the platform's own)")
    p.add_argument("--preview", action="store_true", help="show a preview window (q quits, c neutral face, s sketch)")
    p.add_argument("--record", metavar="OUT.mp4", help="also record the output, in real time at --fps")
    p.add_argument("--width", type=frame_side, default=None,
                   help="output width in px (default: 1280 with --layout frame, else 640)")
    p.add_argument("--height", type=frame_side, default=None,
                   help="output height in px (default: 720 with --layout frame, else 480)")
    p.add_argument("--fps", type=positive_float, default=30.0, help="output frame rate")
    p.add_argument("--frames", type=positive_int, default=None, metavar="N",
                   help="stop after N frames (default: at the end of --source, on q or Ctrl-C)")
    _overlap_option(p)
    p.add_argument("--models-from-stdin", action="store_true",
                   help="switch to each model path read from standard input (a line each) without stopping "
                        "(how `face2face studio` switches models)")
    add_detector_option(p)
    p.set_defaults(handler=_live)

    p = add_command(commands, "reenact", "drive the target face from a video file, every frame",
                    "Drive the target face from a video file, every frame, into a video file.")
    _model_options(p)
    p.add_argument("--source", required=True, metavar="DRIVING.mp4", help="video of the person driving the face")
    p.add_argument("-o", "--output", required=True, metavar="OUT.mp4", help="video to write")
    p.add_argument("--width", type=frame_side, default=None,
                   help="output width in px (default: 1280 with --layout frame, else the model size, "
                        "x3 with --layout side-by-side)")
    p.add_argument("--height", type=frame_side, default=None,
                   help="output height in px (default: 720 with --layout frame, else the model size)")
    add_detector_option(p)
    p.set_defaults(handler=_reenact)

    p = add_command(commands, "record", "record a target video, prompted for what it still misses",
                    "Record a target video from a webcam (or a video file: --source) for `face2face quickstart`, "
                    "prompting for what drivers do that it does not show yet (turn the head, open the mouth, close "
                    "the eyes) and warning of what spoils training (dark, blurred, small, a second face); stops when "
                    "the video covers what drivers do, on q, or at --seconds.")
    p.add_argument("output", metavar="OUT.mp4", help="video to write")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--camera", type=non_negative_int, default=0, metavar="N", help="webcam index")
    src.add_argument("--source", metavar="VIDEO", help="a video file instead of a webcam")
    p.add_argument("--seconds", type=positive_float, default=120.0, help="stop after this much video")
    p.add_argument("--goal", type=positive_float, default=0.8, metavar="SHARE",
                   help="stop once no end of the drivers' range is missed and this share of it is covered on average")
    p.add_argument("--preview", action="store_true", help="show the prompts and coverage meters in a window (q stops)")
    add_detector_option(p)
    p.set_defaults(handler=_record)

    p = add_command(commands, "bench", "measure live-loop latency per stage on a video",
                    "Measure the live loop's frame rate and latency per stage on a video fed like a webcam "
                    "(looping) into a sink that discards frames.")
    _model_options(p)
    p.add_argument("--source", required=True, metavar="VIDEO", help="video fed as the webcam")
    p.add_argument("--frames", type=positive_int, default=300, help="measured frames")
    p.add_argument("--warmup", type=non_negative_int, default=30, help="frames before measuring")
    p.add_argument("--camera-fps", type=positive_float, default=60.0, help="rate the video is fed at")
    p.add_argument("--width", type=frame_side, default=None,
                   help="output width in px (default: 1280 with --layout frame, else 640)")
    p.add_argument("--height", type=frame_side, default=None,
                   help="output height in px (default: 720 with --layout frame, else 480)")
    p.add_argument("--json", metavar="OUT", help="also write the figures as JSON")
    _overlap_option(p)
    p.add_argument("--baseline", action="store_true",
                   help="also run the seed's per-frame method (HOG every frame, onnxruntime fp32 on the CPU) "
                        "on the same model and clip, the two loops taking turns in 3 stretches of the frames")
    add_detector_option(p)
    p.set_defaults(handler=_bench)


def _model_options(p: argparse.ArgumentParser) -> None:
    from face2face.cli import add_shape_limit_option, non_negative_float, positive_float, positive_int
    from face2face.faces import TrackerConfig
    from face2face.runtime.compose import LAYOUTS
    from face2face.runtime.generator import PRECISIONS, PROVIDERS
    from face2face.runtime.retarget import MODES

    p.add_argument("--model", required=True, metavar="M.onnx", help="exported generator (with its .json sidecar)")
    p.add_argument("--retarget", choices=MODES, default="relative",
                   help="driver -> target mapping: relative moves the target's face by your expression")
    add_shape_limit_option(p)
    p.add_argument("--layout", choices=LAYOUTS, default="frame",
                   help="output layout: frame (the face in the target's own video frame; models without a "
                        "background clip fall back to face), face (the generated crop), or side-by-side "
                        "(driver | sketch | output)")
    p.add_argument("--still", action="store_true",
                   help="frame layout: hold one frame of the target's clip instead of playing it back and forth")
    p.add_argument("--provider", choices=PROVIDERS, default="auto",
                   help="generator engine: auto = CUDA if usable, else OpenVINO, else onnxruntime CPU")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="OpenVINO compute: auto = int8 where a calibrated copy holds its guard, else bf16 on CPUs "
                        "with native bf16, else fp32; int8 needs `face2face quantize` first")
    p.add_argument("--smooth-min-cutoff", type=positive_float, default=1.0, metavar="HZ",
                   help="One Euro filter: jitter at rest (lower = steadier)")
    p.add_argument("--smooth-beta", type=non_negative_float, default=5.0, help="One Euro filter: lag when moving (higher = less lag)")
    p.add_argument("--redetect-every", type=positive_int, default=TrackerConfig.redetect_every, metavar="N",
                   help="run the full face detector at least every N frames")


def _overlap_option(p: argparse.ArgumentParser) -> None:
    from face2face.runtime.pipeline import OVERLAPS

    p.add_argument("--overlap", choices=OVERLAPS, default="auto",
                   help="prepare the next frame (track, sketch, reference) and compose the last one while the "
                        "generator runs on the other cores: auto = where the process has 3 cores or more")


def _engine(args, threads: int | None = None):
    """The generator (on ``threads``, else the engine's default) and face analyzer the options ask for."""
    from face2face.detectors import DetectorConfig
    from face2face.faces import FaceAnalyzer
    from face2face.runtime.generator import Generator

    with ticker("loading the generator"):
        return (Generator(args.model, args.provider, args.precision, threads, layout=args.layout),
                FaceAnalyzer(DetectorConfig(name=args.detector)))


def _config(args, width: int, height: int):
    """The per-frame processing options."""
    from face2face.faces import TrackerConfig
    from face2face.runtime.pipeline import PuppetConfig
    from face2face.runtime.retarget import RetargetConfig
    from face2face.runtime.smooth import OneEuroConfig

    return PuppetConfig(
        layout=args.layout, still=args.still, width=width, height=height,
        retarget=RetargetConfig(mode=args.retarget, shape_limit=args.shape_limit),
        smoothing=OneEuroConfig(min_cutoff=args.smooth_min_cutoff, beta=args.smooth_beta),
        tracker=TrackerConfig(redetect_every=args.redetect_every),
    )


def _switch_models(reloader) -> None:
    """Hand each model path read from standard input to ``reloader`` (until it closes)."""
    for line in sys.stdin:
        if line.strip():
            reloader.switch(line.strip())


def _live(args) -> int:
    from face2face.runtime.compose import output_size
    from face2face.modelfile import read_sidecar
    from face2face.runtime.bench import memory_figures, resident_mb
    from face2face.runtime.capture import LatestFrameCapture
    from face2face.runtime.pipeline import Puppeteer, StageTimes, loop_plan, run_live
    from face2face.runtime.reload import ModelReloader, ModelVersion, reload_summary
    from face2face.runtime.sinks import SinkConfig, create_sink
    from face2face.video import VideoSource

    if args.loop and not args.source:
        raise Face2FaceError("--loop plays a video file over and over: add --source VIDEO")
    requested = {"virtual": args.virtual_cam, "window": args.preview, "record": bool(args.record)}
    names = [name for name, wanted in requested.items() if wanted]
    if not names:
        raise Face2FaceError("nowhere to send frames: add --virtual-cam, --preview and/or --record OUT.mp4")
    args.width, args.height = output_size(args.layout, args.width, args.height)
    sink_config = SinkConfig(args.width, args.height, args.fps, path=args.record, device=args.device,
                             backend=args.backend)
    driver = args.source if args.source else args.camera
    with ExitStack() as stack:
        # every requested piece is checked before anything starts, and all problems are told at once
        opened = _all_or_nothing([
            lambda: read_sidecar(args.model),
            lambda: stack.enter_context(VideoSource(driver, args.width, args.height)),
            *[lambda name=name: stack.enter_context(create_sink(name, sink_config)) for name in names],
        ])
        source, sinks = opened[1], opened[2:]
        version = ModelVersion.of(args.model)  # before loading: a version written meanwhile is loaded next
        plan = loop_plan(args.overlap)
        puppeteer = Puppeteer(*_engine(args, plan.threads), _config(args, args.width, args.height))
        pace = source.fps if args.source else None
        capture = stack.enter_context(LatestFrameCapture(source, pace_fps=pace, loop=args.loop,
                                                         hold=2 if plan.overlap else 1))
        reloader = stack.enter_context(ModelReloader(puppeteer, version))
        if args.models_from_stdin:
            threading.Thread(target=_switch_models, args=(reloader,), name="models-from-stdin", daemon=True).start()
        for sink in sinks:
            if getattr(sink, "device", None):
                log.info("virtual camera: %s (%dx%d @ %g fps)", sink.device, args.width, args.height, args.fps)
        gaze = "gaze followed" if puppeteer.draw_pupils else "gaze not followed: the model was trained without pupils"
        log.info("running (%s retargeting, %s); Ctrl-C to stop", args.retarget, gaze)
        times, memory = StageTimes(), []  # resident MiB once a second, from the first second on

        def each_second(fps: float, ms: float) -> None:
            memory.append(resident_mb())
            log.debug("%.1f fps, %.0f ms", fps, ms)
            report_progress("live", fps=round(fps, 2), latency_ms=round(ms, 1), frames=times.count,
                            steps=puppeteer.generator.info.steps, model=str(puppeteer.generator.model))

        result = run_live(capture, puppeteer, sinks, times, max_frames=args.frames, on_second=each_second,
                          reloader=reloader, overlap=plan.overlap)
    memory.append(resident_mb())
    reloads = reload_summary(reloader.reloads)
    growth = memory_figures(memory) if len(memory) > 2 else None
    summary = times.summary()
    lat = summary["latency_ms"]
    print(f"{plural(result.frames, 'frame')} in {result.seconds:.1f} s "
          f"({result.frames / max(result.seconds, 1e-9):.1f} fps), latency p50 {lat.get('p50', 0):.1f} ms, "
          f"dropped {plural(result.dropped, 'stale frame')}; stopped: {result.stopped_by}"
          + (f"; recorded {args.record} at {args.fps:g} fps, as long as the run" if args.record else "")
          + (f"; memory {growth['after_warmup']:.0f} MiB after the first second, {growth['end']:.0f} at the end "
             f"({growth['growth_pct']:+.1f}%)" if growth else "")
          + (f"; {reloads}" if reloads else ""))
    if puppeteer.coverage is not None and puppeteer.coverage.frames:
        print(puppeteer.coverage.summary())
    return 0


def _record(args) -> int:
    from face2face.detectors import DetectorConfig
    from face2face.faces import FaceAnalyzer
    from face2face.runtime.record import record
    from face2face.runtime.sinks import display_missing
    from face2face.video import VideoSource

    writable_file(args.output)
    if args.preview and (missing := display_missing()):
        raise Face2FaceError(f"--preview: {missing}")
    with VideoSource(args.source if args.source else args.camera) as source:
        analyzer = FaceAnalyzer(DetectorConfig(name=args.detector))
        log.info("recording %s: follow the prompts%s", args.output, " in the window" if args.preview else "")
        report = record(source, args.output, analyzer, seconds=args.seconds, goal=args.goal, window=args.preview)
    for line in report.lines():
        print(line)
    print(f"next: face2face quickstart {args.output}")
    return 0


def _all_or_nothing(steps: list[Callable[[], object]]) -> list[object]:
    """Every step's result, or one error naming every step that failed (a line each)."""
    results, problems = [], []
    for step in steps:
        try:
            results.append(step())
        except Face2FaceError as exc:
            problems.append(str(exc))
    if len(problems) > 1:
        raise Face2FaceError("\n  ".join([f"{len(problems)} problems, nothing started:", *problems]))
    if problems:
        raise Face2FaceError(problems[0])
    return results


def _reenact(args) -> int:
    from face2face.runtime.compose import output_size
    from face2face.runtime.pipeline import Puppeteer, StageTimes, run_offline
    from face2face.runtime.sinks import SinkConfig, create_sink
    from face2face.video import VideoSource

    writable_file(args.output)  # before the generator loads
    with VideoSource(args.source) as source:
        generator, analyzer = _engine(args)
        size = generator.info.size
        width, height = output_size(args.layout, args.width, args.height, size)
        puppeteer = Puppeteer(generator, analyzer, _config(args, width, height))
        with create_sink("file", SinkConfig(width, height, source.fps, path=args.output)) as sink, \
                Counter("reenact", "frame") as progress:
            result = run_offline(source, source.fps, puppeteer, [sink], StageTimes(),
                                 on_frame=lambda n: progress(n, source.frame_count))
    print(f"{args.output}: {plural(result.frames, 'frame')} {width}x{height}, face found in {puppeteer.faces_found}")
    if puppeteer.coverage is not None and puppeteer.coverage.frames:
        print(puppeteer.coverage.summary())
    return 0


def _bench(args) -> int:
    from face2face.runtime.compose import output_size
    from face2face.runtime.bench import BenchConfig, format_table, run_bench
    from face2face.runtime.pipeline import loop_plan
    from face2face.runtime.reload import ModelVersion
    from face2face.video import VideoSource

    with VideoSource(args.source):  # a bad source fails before the generator loads
        pass
    if args.json:
        writable_file(args.json)
    version = ModelVersion.of(args.model)  # before loading: a version written meanwhile is loaded next
    plan = loop_plan(args.overlap)
    generator, analyzer = _engine(args, plan.threads)
    config = _config(args, *output_size(args.layout, args.width, args.height))
    bench = BenchConfig(frames=args.frames, warmup=args.warmup, camera_fps=args.camera_fps, overlap=plan.overlap)
    seed_generator = None
    if args.baseline:
        from face2face.runtime.generator import Generator

        seed_generator = Generator(args.model, provider="cpu")
    with ticker("bench, taking turns with the seed baseline" if args.baseline else "bench"):
        report = run_bench(args.model, args.source, generator, analyzer, config, bench, version=version,
                           baseline=seed_generator)
    print(format_table(report))
    if args.json:
        write_atomic(args.json, json.dumps(report, indent=2).encode())
    return 0

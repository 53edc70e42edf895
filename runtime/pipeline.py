"""Per-frame puppeteering (track -> gaze -> smooth -> retarget -> sketch -> reference -> generate -> compose)
and the loops that drive it: live (capture thread, newest frame wins) and offline (every frame)."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Callable, Iterable

import numpy as np

from face2face.coverage import CoverageWatch
from face2face.faces import FaceAnalyzer, FaceTracker, TrackerConfig
from face2face.geometry import Square, face_square
from face2face.pupils import fill_gaze, find_pupils, to_eye_coordinates
from face2face.shapes import ShapeSpace
from face2face.sketch import draw_sketch
from face2face.runtime.capture import LatestFrameCapture, SourceStalled
from face2face.runtime.compose import Composer, Layout
from face2face.runtime.generator import Generator
from face2face.runtime.background import BackgroundClip, clip_identity, load_background
from face2face.runtime.retarget import GazeMapper, HeadMotion, RetargetConfig, Retargeter
from face2face.runtime.sinks import Sink
from face2face.runtime.smooth import OneEuroConfig, OneEuroFilter

if TYPE_CHECKING:
    from face2face.runtime.reload import ModelReloader

log = logging.getLogger(__name__)

# A frame's stages: ``generate`` runs on the generator's own thread; ``wait`` is the loop's thread
# waiting for it (the part of ``generate`` not overlapped by other work; 0 where nothing overlaps)
STAGES = ("capture", "track", "gaze", "sketch", "reference", "generate", "wait", "compose", "sink")
GENERATE, WAIT, COMPOSE = (STAGES.index(name) for name in ("generate", "wait", "compose"))
# Eye widths per face size: gaze (in eye widths) is filtered at speeds in face sizes per second.
EYE_WIDTHS_PER_FACE = 12.0


@dataclass(frozen=True)
class PuppetConfig:
    """How driver frames become output frames."""

    layout: Layout = "face"
    still: bool = False  # frame layout: hold the clip's first frame instead of playing the clip
    width: int = 640  # output frame size, px
    height: int = 480
    retarget: RetargetConfig = field(default_factory=RetargetConfig)
    smoothing: OneEuroConfig = field(default_factory=OneEuroConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    hold_seconds: float = 0.5  # after the face is lost, keep the last output this long
    measure_gaze: bool = False  # follow the driver's pupils even if the model draws none


class StageTimes:
    """Per-frame stage durations and latencies in preallocated arrays (seconds)."""

    def __init__(self, capacity: int = 100_000) -> None:
        self.stages = np.zeros((capacity, len(STAGES)))
        self.latency = np.zeros(capacity)
        # per frame: wall time from the previous frame's end, CPU time of the loop's thread, and the
        # loop thread's stages in that time (its own stages; overlapped, the next frame's taking and
        # preparing with this one's waiting, composing and sending)
        self.loop = np.zeros((capacity, 3))
        self.overlapped = False  # whether the generator ran beside the loop's thread
        self.count = 0

    def add(self, row: np.ndarray, latency: float, wall: float = 0.0, cpu: float = 0.0, busy: float | None = None,
            overlapped: bool = False) -> None:
        """Record one frame (dropped silently once full); ``busy`` defaults to the sum of ``row``."""
        if self.count < len(self.latency):
            self.stages[self.count] = row
            self.latency[self.count] = latency
            self.loop[self.count] = wall, cpu, row.sum() if busy is None else busy
            self.overlapped |= overlapped
            self.count += 1

    def summary(self, skip: int = 0) -> dict:
        """Percentiles in ms over the recorded frames after the first ``skip``; ``loop_ms``: each
        frame's wall time, the part of it outside the loop thread's stages (``between``), the loop
        thread's CPU time (below the wall time where it waited or other threads had the cores),
        and the generator's idle time (the frame's wall time less its run)."""
        stages, latency = self.stages[skip : self.count] * 1e3, self.latency[skip : self.count] * 1e3
        if not len(latency):
            return {"latency_ms": {}, "stages_ms": {}}
        pct = lambda a, q: round(float(np.percentile(a, q)), 2)  # noqa: E731
        wall, cpu, busy = self.loop[skip : self.count].T * 1e3
        between = wall - busy
        idle = wall - stages[:, GENERATE]
        return {
            "latency_ms": {"p50": pct(latency, 50), "p95": pct(latency, 95), "p99": pct(latency, 99)},
            "stages_ms": {name: {"p50": pct(stages[:, i], 50), "p95": pct(stages[:, i], 95)} for i, name in enumerate(STAGES)},
            "loop_ms": {name: {"p50": pct(v, 50), "p95": pct(v, 95)} for name, v in
                        (("frame", wall), ("between", between), ("thread_cpu", cpu), ("generator_idle", idle))},
            "overlapped": self.overlapped,
        }


@dataclass(frozen=True)
class Target:
    """A model and what the loop derives from it, once per model: built before it runs, at start
    and, off the frame loop, when a new version of the model file replaces the running one."""

    generator: Generator
    template: np.ndarray  # the target's mean landmarks, crop px
    shapes: ShapeSpace | None  # the target's range of face shapes (None: exported before it)
    template_pupils: np.ndarray | None  # the template's pupils (None: a dataset without them)
    draw_pupils: bool  # the sketches carry pupils
    neutral_sketch: np.ndarray
    neutral_face: np.ndarray
    background: BackgroundClip | None  # the frame layout's clip (None: the face layout)
    clip_id: bytes = b""  # what identifies ``background`` (``clip_identity``): an unchanged clip is kept


def load_target(generator: Generator, config: PuppetConfig, previous: Target | None = None) -> Target:
    """What the loop needs of ``generator``'s model under ``config``; the background clip of
    ``previous`` is kept when the model's own is the same clip."""
    info = generator.info
    if config.retarget.mode == "relative" and config.retarget.shape_limit > 0 and info.shape_space is None:
        log.info("%s has no range of face shapes (exported before it): sketches are not held within "
                 "the target's shapes; export the model again for that", generator.model.name)
    template, template_pupils = info.template_array(), info.template_pupils_array()
    draw_pupils = info.pupils and template_pupils is not None
    neutral_sketch = draw_sketch(template, info.size, pupils=template_pupils if draw_pupils else None)
    background, clip_id = None, b""
    if config.layout == "frame" and info.background:
        folder = generator.model.with_name(info.background)
        clip_id = clip_identity(folder)
        if previous is not None and previous.background is not None and clip_id and clip_id == previous.clip_id:
            background = previous.background
        else:
            background = load_background(folder, config.width, config.height, still=config.still)
    elif config.layout == "frame":
        log.info("%s has no background clip (exported before clips, or without its video): layout face",
                 generator.model.name)
    return Target(generator, template, info.shapes(), template_pupils, draw_pupils, neutral_sketch,
                  generator(neutral_sketch).copy(), background, clip_id)


@dataclass
class Job:
    """A driver frame on its way to the output: what its face is drawn from."""

    frame: np.ndarray
    t: float  # its time (s)
    row: np.ndarray  # its stage durations (s), in ``STAGES`` order
    square: Square | None = None  # the driver's face square (None: no face found)
    head: tuple[float, float, float] = (0.0, 0.0, 1.0)  # the driver's head motion
    points: np.ndarray | None = None  # the sketch's crop landmarks (None: no face found)
    sketch: np.ndarray | None = None
    reference: np.ndarray | None = None  # what the face is drawn over (None: a model of the sketch alone)


def submit_to(generator: Generator, job: Job, wait: bool = False) -> None:
    """Start ``generator`` on ``job``'s sketch and reference (``wait``: run it here, in turn); the
    time it takes goes into ``wait``."""
    started = time.perf_counter()
    generator.submit(job.sketch, job.reference, wait)
    job.row[WAIT] = time.perf_counter() - started


def generated(generator: Generator, job: Job) -> np.ndarray:
    """The face ``generator`` was submitted for ``job``: the seconds it ran on its thread go into
    the job's ``generate`` stage, those this thread waited for it and took the face into ``wait``."""
    waited = time.perf_counter()
    face, job.row[GENERATE] = generator.result()
    job.row[WAIT] += time.perf_counter() - waited
    return face


def in_turn(row: np.ndarray) -> None:
    """A frame's stages where the loop did nothing while the generator ran: its ``generate`` is
    the loop's whole time with the generator (loading its input, the run, taking the face), ``wait`` none."""
    row[GENERATE], row[WAIT] = row[WAIT], 0.0


class Puppeteer:
    """Turns driver frames into output frames; one instance per driver stream.

    A frame is ``prepare``d (tracked, sketched, its reference built), ``submit``ted to the
    generator's thread, its face taken with ``result`` and composed with ``show``; ``process``
    does the four in a row. The live loop prepares the next frame while the generator runs.
    """

    def __init__(self, generator: Generator, analyzer: FaceAnalyzer, config: PuppetConfig = PuppetConfig()) -> None:
        self.config = config
        self.tracker = FaceTracker(analyzer, config.tracker)
        self.filter = OneEuroFilter(config.smoothing)
        self.gaze_filter = OneEuroFilter(config.smoothing)
        self.motion = HeadMotion(config.retarget.neutral_frames)
        self.head = (0.0, 0.0, 1.0)  # the driver's head motion, as last measured
        self.driver_points: np.ndarray | None = None  # the driver's landmarks in the last frame (None: no face)
        self.points: np.ndarray | None = None  # crop landmarks of the last sketch drawn from a face
        self.pupils: np.ndarray | None = None  # crop pupils asked of the generator (NaN: none)
        self.target: Target | None = None
        self.retargeter: Retargeter | None = None
        self.gaze: GazeMapper | None = None
        self.coverage: CoverageWatch | None = None  # where the driver leaves what the target video covers
        self.composer: Composer | None = None
        self.sketch: np.ndarray | None = None  # the sketch of the face shown
        self.adopt(load_target(generator, config))
        self.shown_points = self.neutral_points  # crop landmarks of the face shown
        self.shown_head = self.head  # the head motion the face shown was placed with
        self.last_face = self.neutral_face  # the generator's buffer holds it until its next run
        self.reference = generator.neutral_reference  # what the face shown was drawn over (None: the sketch alone)
        self._last_seen = -np.inf
        self.faces_found = 0

    def adopt(self, target: Target) -> Target | None:
        """Run ``target``'s model from the next frame on; what was measured of the driver (tracking,
        smoothing, neutral face, head motion) carries over. Cheap: the loop calls it between two
        frames. Returns the target it replaces (None the first time)."""
        info = target.generator.info
        previous, self.target, self.generator = self.target, target, target.generator
        self.size = info.size
        if self.retargeter is None:
            retarget = replace(self.config.retarget, context=info.context)
            self.retargeter = Retargeter(target.template, info.size, retarget, target.shapes)
        else:
            self.retargeter.set_target(target.template, info.size, target.shapes, info.context)
        self.draw_pupils = target.draw_pupils
        if not info.coverage:  # a model exported before coverage
            self.coverage = None
        elif self.coverage is None:
            self.coverage = CoverageWatch(info.coverage, self.config.retarget.mode)
        else:  # a new version of the model: the counts go on against its ranges
            self.coverage.set_target(info.coverage)
        if target.template_pupils is None or not (target.draw_pupils or self.config.measure_gaze):
            self.gaze = None
        elif self.gaze is None:
            self.gaze = GazeMapper(target.template, target.template_pupils, self.retargeter.config)
        else:
            self.gaze.set_target(target.template, target.template_pupils)
        layout = "face" if self.config.layout == "frame" and target.background is None else self.config.layout
        if self.composer is None or self.composer.layout != layout:
            self.composer = Composer(layout, self.config.width, self.config.height, target.background)
        else:
            self.composer.background = target.background
        if self.sketch is None or self.sketch.shape[0] != info.size:
            # one buffer each for the frame shown, the frame generated and the frame prepared
            self._sketches = [target.neutral_sketch.copy() for _ in range(3)]
            self._references = [np.empty_like(target.neutral_sketch) for _ in range(3)]
            self._slot = 0
            self.sketch = self._sketches[0]
        self.neutral_sketch, self.neutral_face, self.neutral_points = (target.neutral_sketch, target.neutral_face,
                                                                      target.template)
        return previous

    def prepare(self, frame: np.ndarray, t: float, row: np.ndarray) -> Job:
        """Track the face in a driver frame at time ``t`` (s) and draw what the generator reads for
        it; stage durations go into ``row``. ``submit`` starts its face, ``show`` composes it."""
        clock = time.perf_counter
        t0 = clock()
        points = self.driver_points = self.tracker.update(frame)
        t1 = clock()
        gaze = pupils = None
        if points is not None and self.gaze is not None:
            pupils = find_pupils(frame, points)
            gaze = to_eye_coordinates(pupils, points)
        t2 = clock()
        job = Job(frame, t, row)
        if points is not None:
            self.faces_found += 1
            job.square = face_square(points, self.retargeter.config.context)
            smoothed = self.filter(points, t, job.square.side)
            job.head = self.head = self.motion(face_square(smoothed, self.retargeter.config.context))
            job.points = self.points = self.retargeter(smoothed)
            if self.coverage is not None:
                self.coverage.add(points, pupils, self.retargeter.limited)
            if gaze is not None:
                self.pupils = self.gaze(self._smooth_gaze(gaze, t), self.points)
            self._slot = (self._slot + 1) % len(self._sketches)
            job.sketch = draw_sketch(self.points, self.size, out=self._sketches[self._slot],
                                     pupils=self.pupils if self.draw_pupils else None)
            t3 = clock()
            job.reference = self.generator.reference(self.points, t, out=self._references[self._slot])
        else:
            self.filter.reset()
            self.gaze_filter.reset()
            self.points = self.pupils = None
            t3 = clock()
        row[1:5] = (t1 - t0, t2 - t1, t3 - t2, clock() - t3)
        return job

    def submit(self, job: Job, wait: bool = False) -> None:
        """Start generating the face of a prepared ``job`` on the generator's thread (``wait``: on
        this one, in turn; nothing to generate where no face was found); ``result`` waits for it."""
        if job.points is not None:
            submit_to(self.generator, job, wait)

    def result(self, job: Job) -> np.ndarray | None:
        """The face ``submit`` started for ``job`` (None where no face was found); the seconds the
        generator ran go into its ``generate`` stage, those this thread waited into ``wait``."""
        return None if job.points is None else generated(self.generator, job)

    def show(self, job: Job, face: np.ndarray | None) -> np.ndarray:
        """The output frame for ``job`` with its generated ``face`` (None: no face was found: the
        last face shown is held briefly, then the target's neutral face is shown)."""
        t0 = time.perf_counter()
        if face is not None:
            self.sketch, self.reference, self.shown_points = job.sketch, job.reference, job.points
            self.last_face, self.shown_head, self._last_seen = face, job.head, job.t
        elif job.t - self._last_seen <= self.config.hold_seconds:  # never show the driver
            face = self.last_face
        else:
            face = self.neutral_face
            self.sketch, self.reference = self.neutral_sketch, self.generator.neutral_reference
            self.shown_points, self.shown_head = self.neutral_points, (0.0, 0.0, 1.0)
        out = self.composer.compose(job.frame, self.sketch, face, job.square, job.t, self.shown_head, self.shown_points)
        job.row[COMPOSE] = time.perf_counter() - t0
        return out

    def process(self, frame: np.ndarray, t: float, row: np.ndarray) -> np.ndarray:
        """The output frame for a driver frame at time ``t`` (s), each stage after the other; stage
        durations go into ``row``."""
        row[GENERATE:] = 0.0
        job = self.prepare(frame, t, row)
        self.submit(job, wait=True)
        face = self.result(job)
        in_turn(row)
        return self.show(job, face)

    def _smooth_gaze(self, gaze: np.ndarray, t: float) -> np.ndarray:
        """One Euro filtered gaze; an unsure eye takes the other eye's gaze, else its last one."""
        last = self.gaze_filter.value
        filled = fill_gaze(gaze, np.zeros((2, 2), np.float32) if last is None else last)
        return self.gaze_filter(filled, t, EYE_WIDTHS_PER_FACE)

    @property
    def detector_runs(self) -> int:
        """How often the full face detector has run for this driver."""
        return self.tracker.detector_runs

    def command(self, name: str) -> None:
        """Apply a user command from a sink (``neutral`` or ``sketch``)."""
        if name == "neutral":
            self.retargeter.recapture_neutral()
            self.motion.recapture_neutral()
            if self.gaze is not None:
                self.gaze.recapture_neutral()
            log.info("capturing the neutral face: look straight ahead, relaxed")
        elif name == "sketch":
            self.composer.show_sketch = not self.composer.show_sketch


@dataclass
class RunResult:
    """What a loop did."""

    frames: int = 0
    seconds: float = 0.0
    dropped: int = 0
    captured: int = 0
    stopped_by: str = "end"  # end | quit | interrupt | limit | stalled


def send_all(sinks: Iterable[Sink], out: np.ndarray, puppeteer: Puppeteer) -> bool:
    """Send a frame to every sink and apply their commands; False when one asks to quit."""
    keep_going = True
    for sink in sinks:
        sink.send(out)
        command = sink.poll()
        if command == "quit":
            keep_going = False
        elif command:
            puppeteer.command(command)
    return keep_going


OVERLAPS = ("auto", "on", "off")


MIN_OVERLAP_CORES = 3  # ``--overlap auto`` overlaps from this many cores on (docs/engines.md: live speed)


@dataclass(frozen=True)
class LoopPlan:
    """How the live loop uses the cores: whether it overlaps its stages, and the generator's threads."""

    overlap: bool
    threads: int | None  # the generator's (None: the engine's own default, every core)


def process_cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def loop_plan(choice: str, cores: int | None = None) -> LoopPlan:
    """The plan for ``--overlap`` (``OVERLAPS``) on ``cores`` (this process's by default). Overlapped,
    the generator gets every core but the one the loop's own stages run on, so neither waits for
    the other's core; ``auto`` overlaps from ``MIN_OVERLAP_CORES`` on: on two cores the generator
    would lose half its cores to the loop, and each frame would come later."""
    cores = cores or process_cores()
    overlap = choice == "on" or (choice == "auto" and cores >= MIN_OVERLAP_CORES)
    return LoopPlan(overlap, max(cores - 1, 1) if overlap else None)


class JustInTime:
    """When the overlapped loop takes its next frame: late enough that the frame is prepared as the
    generator finishes the one before, not earlier (a frame taken early only waits, and ages).
    Both durations are followed as moving averages of the loop's own frames."""

    KEEP = 0.9  # of the average, per frame

    def __init__(self) -> None:
        self.prepare = self.generate = 0.0  # seconds

    def learn(self, row: np.ndarray) -> None:
        """Follow a prepared frame's stages."""
        self.prepare = self.KEEP * self.prepare + (1 - self.KEEP) * float(row[1:GENERATE].sum())

    def ran(self, seconds: float) -> None:
        """Follow the generator's run."""
        self.generate = self.KEEP * self.generate + (1 - self.KEEP) * seconds

    def wait(self, generator: Generator) -> None:
        """Sleep until the next frame is due to be taken (at once when it is already)."""
        delay = generator.started + self.generate - self.prepare - time.perf_counter()
        if delay > 0:
            time.sleep(delay)


def run_live(
    capture: LatestFrameCapture,
    puppeteer: Puppeteer,
    sinks: list[Sink],
    times: StageTimes,
    max_frames: int | None = None,
    on_second: Callable[[float, float], None] | None = None,
    stall_timeout: float = 2.0,
    reloader: ModelReloader | None = None,
    overlap: bool = False,
) -> RunResult:
    """Process the newest frame each time until the source ends, a sink quits, Ctrl-C or ``max_frames``.

    Latency runs from the frame's capture to the end of the last sink's ``send``.
    ``on_second(fps, latency_ms)`` gets an EMA frame rate at most once a second. A ``reloader``
    (watching ``puppeteer``'s model) swaps in a new version of the model between two frames.
    With ``overlap``, the next frame is taken and prepared while the generator runs, and the
    frame before is composed and sent while the generator runs the next one (``capture`` must let
    the loop hold two frames). A frame is taken just in time to be prepared as the generator ends
    (``JustInTime``), and only if one is there then: a loop waiting for the camera shows each
    face as soon as it is made, as without overlap, never after the next camera frame.
    """
    if overlap and capture.hold < 2:
        raise ValueError("the overlapped loop holds two frames: open the capture with hold=2")
    result = RunResult()
    clock = time.perf_counter
    started = last_report = clock()
    fps_ema, latency_ema = 0.0, 0.0
    previous_end, previous_cpu = started, time.thread_time()
    in_flight: Job | None = None  # submitted to the generator, not yet shown (overlap)
    lead = JustInTime()  # when to take the next frame (overlap)
    unsent = 0.0  # the loop thread's taking and preparing of frames since the last frame was sent (s)

    def send(job: Job, face: np.ndarray | None) -> bool:
        """Compose and send ``job``'s output; False when a sink asks to quit."""
        nonlocal previous_end, previous_cpu, last_report, fps_ema, latency_ema, unsent
        out = puppeteer.show(job, face)
        sent = clock()
        watch = getattr(puppeteer, "coverage", None)
        if watch is not None and watch.frames and (showing := [s for s in sinks if s.shows_coverage]):
            status = watch.status()
            for sink in showing:
                sink.show_coverage(status)
        keep_going = send_all(sinks, out, puppeteer)
        done = clock()
        job.row[-1] = done - sent
        cpu = time.thread_time()
        busy = unsent + job.row[WAIT if overlap else GENERATE :].sum()  # the loop thread's stages since the last frame
        unsent = 0.0
        times.add(job.row, done - job.t, done - previous_end, cpu - previous_cpu, busy, overlap)
        result.frames += 1
        fps_ema += 0.1 * (1.0 / max(done - previous_end, 1e-6) - fps_ema)
        latency_ema += 0.1 * ((done - job.t) * 1e3 - latency_ema)
        previous_end, previous_cpu = done, cpu
        if reloader is not None:
            reloader.frame_done(done)
        if done - last_report >= 1.0:
            last_report = done
            for sink in sinks:
                sink.show_stats(fps_ema, latency_ema)
            if on_second:
                on_second(fps_ema, latency_ema)
        return keep_going

    try:
        while max_frames is None or result.frames + (in_flight is not None) < max_frames:
            if reloader is not None and reloader.ready and in_flight is not None:
                job, in_flight = in_flight, None  # the frame under way is finished by the model that began it
                if not send(job, puppeteer.result(job)):
                    result.stopped_by = "quit"
                    break
            if reloader is not None:
                reloader.swap()
            waiting = clock()
            if in_flight is None:  # nothing under way: wait for the next frame
                got = capture.get(stall_timeout)
                if got is None:
                    break
            else:  # the generator runs: the newest frame, if one is there when it can be prepared in time
                lead.wait(puppeteer.generator)
                got = capture.poll()
            job = None
            if got is not None:
                row = np.zeros(len(STAGES))
                row[0] = clock() - waiting
                job = puppeteer.prepare(got[0], got[1], row)
                lead.learn(row)
                unsent += row[:GENERATE].sum()
            if overlap:  # the frame under way is shown once the generator starts on the next
                previous, in_flight = in_flight, job
                face = None if previous is None else puppeteer.result(previous)
                if face is not None:
                    lead.ran(previous.row[GENERATE])
                if job is not None:
                    puppeteer.submit(job)
                keep_going = previous is None or send(previous, face)
            else:
                puppeteer.submit(job, wait=True)
                face = puppeteer.result(job)
                in_turn(row)
                keep_going = send(job, face)
            if not keep_going:
                result.stopped_by = "quit"
                break
        else:
            result.stopped_by = "limit"
        if in_flight is not None and result.stopped_by != "quit":
            job, in_flight = in_flight, None
            if not send(job, puppeteer.result(job)) and result.stopped_by == "end":
                result.stopped_by = "quit"
    except KeyboardInterrupt:
        result.stopped_by = "interrupt"
    except SourceStalled as exc:  # stop cleanly: recordings are finished, not thrown away
        log.warning("%s", exc)
        result.stopped_by = "stalled"
    finally:
        if in_flight is not None:  # leave the generator idle
            puppeteer.result(in_flight)
    result.seconds = clock() - started
    result.dropped, result.captured = capture.dropped, capture.captured
    return result


def run_offline(
    frames: Iterable[np.ndarray],
    fps: float,
    puppeteer: Puppeteer,
    sinks: list[Sink],
    times: StageTimes,
    on_frame: Callable[[int], None] | None = None,
) -> RunResult:
    """Process every frame of a video in order, timing the filter by the video's own clock."""
    result = RunResult()
    row = np.zeros(len(STAGES))
    clock = time.perf_counter
    started = clock()
    for index, frame in enumerate(frames):
        begin = clock()
        out = puppeteer.process(frame, index / fps, row)
        sent = clock()
        send_all(sinks, out, puppeteer)
        done = clock()
        row[0], row[-1] = 0.0, done - sent
        times.add(row, done - begin)
        result.frames += 1
        if on_frame:
            on_frame(result.frames)
    result.seconds = clock() - started
    result.captured = result.frames
    return result

"""A new version of the model while the loop runs: a watcher thread notices it beside the running
one, builds it off the frame loop, and the loop swaps it in between two frames; a version that
cannot run leaves the running one in place, with one warning.

``export`` replaces a model so that a finished export can be told: the old sidecar is removed
before the new ONNX is renamed into place, and the new sidecar is written last. So a model file
without a sidecar is an export still at work (waited for, ``SIDECAR_WAIT``). A sidecar names the
sha256 of the ONNX file it describes, checked when the model is built, so a sidecar of another
model never runs (sidecars written before that: one older than its model file describes an
earlier model). Files that changed since the last look may still
be being written: a version is judged once it has stood still for one look.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from face2face.console import plural
from face2face.errors import Face2FaceError
from face2face.modelfile import read_sidecar, sidecar_path
from face2face.runtime.openvino_engine import int8_path
from face2face.runtime.pipeline import Puppeteer, Target, load_target

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5  # between two looks at the model's files (three stat calls)
SIDECAR_WAIT = 30.0  # s a changed model file may stay without a sidecar (an export at work) before a warning
RECENT_FRAMES = 32  # output intervals the loop's frame interval is the median of
BUILD_NICE = 10  # the watcher's nice value: the loop first (2-core CPU under load: the loop's median frame
#                  went from 23-25 ms to 13-15 ms while models were built back to back, nice 0 -> 10)

FileState = tuple[int, int, int] | None  # (inode, size, mtime in ns); None: no such file


def file_state(path: Path) -> FileState:
    """A file's inode, size and modification time, or None if there is none."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def _names_its_model(model: Path) -> bool:
    """Whether the sidecar names the ONNX file it describes (by sha256, checked when the model is
    built); older sidecars are judged by their time alone."""
    try:
        return bool(read_sidecar(model).model_sha256)
    except Face2FaceError:
        return False


def yield_to_the_loop() -> None:
    """Lower the calling thread's priority (Linux: its own nice value, which the threads it starts
    inherit), so that building a model takes the CPU time the frame loop leaves."""
    if sys.platform.startswith("linux"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BUILD_NICE)
        except OSError as exc:
            log.debug("cannot lower the model watcher's priority: %s", exc)


@dataclass(frozen=True)
class ModelVersion:
    """The state on disk of a model's files: the ONNX, its sidecar and its int8 copy."""

    model: FileState
    sidecar: FileState
    int8: FileState

    @classmethod
    def of(cls, model: str | os.PathLike) -> ModelVersion:
        """The files' state now (without the model file, the others do not matter)."""
        state = file_state(Path(model))
        if state is None:
            return cls(None, None, None)
        return cls(state, file_state(sidecar_path(model)), file_state(int8_path(model)))


@dataclass(frozen=True)
class Reload:
    """One swap of the running model, as the loop timed it."""

    steps: int  # training steps behind the new model
    engine: str  # e.g. "OpenVINO CPU fp32"
    load_s: float  # building it, off the loop
    gap_ms: float  # between the old model's last output frame and the new one's first
    interval_ms: float  # the loop's frame interval before building began (median of the last frames)
    building_ms: float  # longest interval between two output frames from the start of building to the new model's first

    def message(self) -> str:
        """The one line logged when the new model has made its first frame."""
        return (f"model reloaded: step {self.steps} ({self.engine}), built in {self.load_s:.1f} s off the frame loop; "
                f"gap at the swap {self.gap_ms:.0f} ms (frame interval {self.interval_ms:.0f} ms), "
                f"longest while building {self.building_ms:.0f} ms")


def reload_figures(reloads: list[Reload]) -> dict:
    """The reloads of a run as JSON-ready figures."""
    return {"reloads": [asdict(r) for r in reloads],
            "reload_gap_ms": max((r.gap_ms for r in reloads), default=None)}


def reload_summary(reloads: list[Reload]) -> str:
    """The reloads of a run in a few words ("" if none)."""
    if not reloads:
        return ""
    worst = max(reloads, key=lambda r: r.gap_ms / max(r.interval_ms, 1e-9))
    return (f"model reloaded {plural(len(reloads), 'time')}, longest gap at a swap {worst.gap_ms:.0f} ms "
            f"(frame interval {worst.interval_ms:.0f} ms)")


class ModelReloader:
    """Watches a puppeteer's model files on its own thread, builds a new version there with the
    running generator's request, and hands it to the loop: ``run_live`` calls ``swap`` before and
    ``frame_done`` after each frame (no file access on the loop). Runs within ``with``."""

    def __init__(self, puppeteer: Puppeteer, running: ModelVersion, interval: float = POLL_SECONDS,
                 sidecar_wait: float = SIDECAR_WAIT) -> None:
        self.puppeteer = puppeteer
        self.model = puppeteer.generator.model
        self.interval, self.sidecar_wait = interval, sidecar_wait
        self.reloads: list[Reload] = []
        self._running = running  # the version that runs, or is built and waits for the loop
        self._seen, self._seen_at = running, time.monotonic()  # the version at the last look, and since when
        self._warned: ModelVersion | None = None  # the last version warned about
        self._steps = puppeteer.generator.info.steps  # of the running model
        self._ready: Target | None = None  # built, waiting for the loop
        self._retired: Target | None = None  # replaced by a swap: released on the watcher's thread
        self._recent = np.zeros(RECENT_FRAMES)  # the last output intervals (s), a ring
        self._frames = 0
        self._last_done: float | None = None
        self._loading: float | None = None  # when building a version began, until its first frame
        self._load_s = self._interval = self._worst = 0.0
        self._swapped = False
        self._switch: Path | None = None  # another model to run (``switch``), taken up by the watcher
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="model-reload", daemon=True)

    def __enter__(self) -> ModelReloader:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop watching (a build under way is let finish) and time a swap whose first frame never came."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10.0)
        if self._swapped and self._last_done is not None:
            self._finish(time.perf_counter() - self._last_done)

    def _watch(self) -> None:
        yield_to_the_loop()
        while not self._stop.wait(self.interval):
            self._retired = None  # the model a swap replaced is released here, not on the loop
            if self._ready is None:
                if self._switch is not None:
                    self._take_switch()
                self.check()

    def switch(self, model: str | os.PathLike) -> None:
        """Run another model from now on, its files watched as this one's were; it is built off the
        loop and swapped in as a new version is (and one that cannot run leaves this one running)."""
        self._switch = Path(model)

    def _take_switch(self) -> None:
        self.model, self._switch = self._switch, None
        self._running = ModelVersion(None, None, None)  # no version of the new path runs yet
        self._seen, self._seen_at = ModelVersion.of(self.model), time.monotonic()
        if self._seen.model is None:
            log.warning("%s: no such model; still running the model of step %d", self.model, self._steps)
        else:
            log.info("switching to %s", self.model)

    def check(self) -> None:
        """One look at the model's files (the watcher's thread, every ``interval``): a version that
        has stood still since the last look is judged and built; one warning per version that
        cannot run."""
        version, now = ModelVersion.of(self.model), time.monotonic()
        if version != self._seen:
            self._seen, self._seen_at = version, now
            return
        if version in (self._running, self._warned):
            return
        if version.model is not None and version.sidecar is None and now - self._seen_at < self.sidecar_wait:
            return  # an export writes the sidecar last
        problem = self._problem(version) or self._build(version)
        if problem:
            self._warned = version
            log.warning("%s; still running the model of step %d", problem, self._steps)

    def _problem(self, version: ModelVersion) -> str:
        """Why a version cannot run, judged from its files' state alone ("" if it may)."""
        name, sidecar = self.model.name, sidecar_path(self.model).name
        if version.model is None:
            return f"{name} was removed"
        if version.sidecar is None:
            return f"{name} has had no sidecar {sidecar} for {self.sidecar_wait:.0f} s (an export that did not finish?)"
        if (version.model != self._running.model and version.sidecar[2] < version.model[2]
                and not _names_its_model(self.model)):
            return f"{name} changed, but its sidecar {sidecar} is older: it describes an earlier model"
        return ""

    def _build(self, version: ModelVersion) -> str:
        """Build ``version`` and leave it for the loop; why it cannot run ("" if it can)."""
        n = min(self._frames, RECENT_FRAMES)
        self._interval = float(np.median(self._recent[:n])) if n else 0.0
        self._worst = 0.0
        self._loading = started = time.perf_counter()
        running, target, problem = self.puppeteer, None, ""
        try:
            target = load_target(running.generator.reopen(self.model), running.config, running.target)
        except Face2FaceError as exc:
            problem = str(exc) or "no reason given"
        except Exception as exc:  # whatever a damaged file does to a loader, the running model stays
            problem = f"{type(exc).__name__}: {exc}"
        if target is None:
            self._loading = None
            return f"{self.model.name} changed, but does not load: {problem.strip().splitlines()[0]}"
        if ModelVersion.of(self.model) != version:  # changed again while building: the next look takes the newer one
            self._loading = None
            return ""
        self._load_s = time.perf_counter() - started
        self._running = version
        self._ready = target
        return ""

    @property
    def ready(self) -> bool:
        """Whether a version has been built and waits for ``swap``."""
        return self._ready is not None

    def swap(self) -> None:
        """Between two frames (the loop's thread): run a version that has been built."""
        target = self._ready
        if target is None:
            return
        self._ready = None
        self._retired = self.puppeteer.adopt(target)
        self._steps = target.generator.info.steps
        self._swapped = True

    def frame_done(self, done: float) -> None:
        """After each output frame (the loop's thread), finished at ``done`` (``perf_counter``)."""
        last, self._last_done = self._last_done, done
        if last is None:
            return
        interval = done - last
        self._recent[self._frames % RECENT_FRAMES] = interval
        self._frames += 1
        loading = self._loading  # read once: the watcher may clear it meanwhile
        if self._swapped:
            self._finish(interval)
        elif loading is not None and done > loading:
            self._worst = max(self._worst, interval)

    def _finish(self, gap: float) -> None:
        """Record and log a swap once the new model has made its first frame, ``gap`` s after the old one's last."""
        generator = self.puppeteer.generator
        reload = Reload(self._steps, f"{generator.provider} {generator.precision}", round(self._load_s, 2),
                        round(gap * 1e3, 1), round(self._interval * 1e3, 1), round(max(self._worst, gap) * 1e3, 1))
        self.reloads.append(reload)
        self._loading, self._swapped = None, False
        log.info("%s", reload.message())

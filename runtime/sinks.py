"""Where output frames go, chosen by name from a registry: virtual camera, window, file, live recording, null."""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from face2face.errors import Face2FaceError
from face2face.video import VideoWriter


@dataclass(frozen=True)
class SinkConfig:
    """What every sink is told at start-up."""

    width: int
    height: int
    fps: float
    path: str | None = None  # ``file``: the mp4 to write
    device: str | None = None  # ``virtual``: e.g. /dev/video10 (None = the first free one)
    backend: str | None = None  # ``virtual``: pyvirtualcam backend (v4l2loopback, obs, unitycapture)


class Sink:
    """Receives ``HxWx3 uint8 BGR`` frames of the configured size; a context manager."""

    name = "sink"
    paces = False  # True when ``send`` blocks to keep the output's frame rate
    shows_coverage = False  # True when ``show_coverage`` displays what it is given

    def send(self, frame: np.ndarray) -> None:
        """Deliver one frame."""

    def poll(self) -> str | None:
        """A user command from this sink (``quit``, ``neutral``, ``sketch``), if any."""
        return None

    def show_stats(self, fps: float, latency_ms: float) -> None:
        """Figures to display, if the sink displays anything."""

    def show_coverage(self, status: str) -> None:
        """Where the driver is against the target video's coverage (``CoverageWatch.status``), if
        the sink displays anything."""

    def close(self) -> None:
        """Release what the sink holds (idempotent)."""

    def __enter__(self) -> "Sink":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.close()


_REGISTRY: dict[str, Callable[[SinkConfig], Sink]] = {}


def register_sink(name: str, factory: Callable[[SinkConfig], Sink]) -> None:
    """Make a sink available under ``name``."""
    _REGISTRY[name] = factory


def sink_names() -> list[str]:
    """Names of the registered sinks."""
    return list(_REGISTRY)


def create_sink(name: str, config: SinkConfig) -> Sink:
    """Open the sink called ``name``."""
    if name not in _REGISTRY:
        raise Face2FaceError(f"unknown sink {name!r}; choose from {', '.join(_REGISTRY)}")
    return _REGISTRY[name](config)


class NullSink(Sink):
    """Discards frames (benchmarks)."""

    name = "null"

    def __init__(self, config: SinkConfig) -> None:
        self.frames = 0

    def send(self, frame: np.ndarray) -> None:
        self.frames += 1


class FileSink(Sink):
    """Writes an mp4 that appears only when the run ends cleanly."""

    name = "file"

    def __init__(self, config: SinkConfig) -> None:
        if not config.path:
            raise Face2FaceError("the file sink needs an output path")
        self.writer = VideoWriter(config.path, config.width, config.height, config.fps)

    def send(self, frame: np.ndarray) -> None:
        self.writer.write(frame)

    def close(self) -> None:
        self.writer.close()

    def __exit__(self, exc_type, *exc) -> None:
        self.writer.abort() if exc_type else self.close()


class RecordingSink(FileSink):
    """Records a live run in real time at the configured rate: each frame is repeated until the
    next one arrives (frames closer than a frame period are skipped), so the video lasts as long
    as the run and lines up with a screen recording of it."""

    name = "record"

    def __init__(self, config: SinkConfig, clock: Callable[[], float] = time.perf_counter) -> None:
        super().__init__(config)
        self.fps = config.fps
        self.clock = clock
        self.written = 0  # frames in the file so far
        self._held = np.zeros((config.height, config.width, 3), np.uint8)  # the frame on show
        self._start: float | None = None

    def send(self, frame: np.ndarray) -> None:
        if frame.shape != self._held.shape:
            raise Face2FaceError(f"unexpected frame shape {frame.shape} != {self._held.shape}")
        now = self.clock()
        if self._start is None:
            self._start = now
        self._hold_until(now)
        np.copyto(self._held, frame)

    def _hold_until(self, now: float, at_least: int = 0) -> None:
        """Write the frame on show into every frame period that began before ``now``."""
        due = max(math.ceil((now - self._start) * self.fps), at_least)
        for _ in range(due - self.written):
            self.writer.write(self._held)
        self.written = max(self.written, due)

    def close(self) -> None:
        if self._start is not None:  # the last frame stays on show until the end, at least once
            self._hold_until(self.clock(), at_least=self.written + 1)
            self._start = None
        super().close()


VIRTUAL_CAMERA_HELP = {
    "linux": "load v4l2loopback: sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label=face2face",
    "other": "install OBS Studio and start its virtual camera once",
}


def virtual_camera_fix() -> str:
    """The step that makes a virtual camera available on this platform."""
    return VIRTUAL_CAMERA_HELP["linux" if sys.platform.startswith("linux") else "other"]


class VirtualCameraSink(Sink):
    """pyvirtualcam: frames appear as a webcam in Zoom, Meet, Teams or OBS."""

    name = "virtual"
    paces = True

    def __init__(self, config: SinkConfig) -> None:
        import pyvirtualcam

        try:
            self.camera = pyvirtualcam.Camera(
                config.width, config.height, config.fps, fmt=pyvirtualcam.PixelFormat.BGR,
                device=config.device, backend=config.backend,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            where = config.device or "virtual camera"
            raise Face2FaceError(f"{where}: cannot open ({str(exc).splitlines()[0]}); {virtual_camera_fix()}") from None
        self.device = self.camera.device

    def send(self, frame: np.ndarray) -> None:
        self.camera.send(frame)
        self.camera.sleep_until_next_frame()

    def close(self) -> None:
        self.camera.close()


class WindowSink(Sink):
    """A preview window with fps and latency; keys: q quits, c re-captures neutral, s sketch, v shows
    where the driver leaves the target video's coverage."""

    name = "window"
    shows_coverage = True
    KEYS = {ord("q"): "quit", 27: "quit", ord("c"): "neutral", ord("s"): "sketch"}
    COVERAGE_KEY = ord("v")

    def __init__(self, config: SinkConfig) -> None:
        if missing := display_missing():
            raise Face2FaceError(f"--preview: {missing}; drop --preview or run in a desktop session")
        self.title = "face2face (q quit, c neutral, s sketch, v coverage)"
        self._shown = np.empty((config.height, config.width, 3), np.uint8)  # frame + text
        self._text = ""
        self.coverage_shown = False
        self._coverage = ""
        self._open = True
        cv2.namedWindow(self.title, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)  # no toolbar
        self._key = -1

    def show_stats(self, fps: float, latency_ms: float) -> None:
        self._text = f"{fps:4.1f} fps  {latency_ms:4.0f} ms"

    def show_coverage(self, status: str) -> None:
        self._coverage = status

    def send(self, frame: np.ndarray) -> None:
        np.copyto(self._shown, frame)
        if self._text:
            cv2.putText(self._shown, self._text, (10, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 255, 0), 2, cv2.LINE_AA)
        if self.coverage_shown and self._coverage:
            cv2.putText(self._shown, self._coverage, (10, 50), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 200, 255), 2,
                        cv2.LINE_AA)
        cv2.imshow(self.title, self._shown)
        self._key = cv2.waitKey(1) & 0xFF

    def poll(self) -> str | None:
        key, self._key = self._key, -1
        if key == self.COVERAGE_KEY:  # the window's own view: nothing for the loop to do
            self.coverage_shown = not self.coverage_shown
            return None
        return self.KEYS.get(key)

    def close(self) -> None:
        if self._open:
            self._open = False
            cv2.destroyWindow(self.title)


def display_missing() -> str:
    """Why no window can open here, or "" when one can."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display (DISPLAY is not set)"
    return ""


register_sink("virtual", VirtualCameraSink)
register_sink("window", WindowSink)
register_sink("file", FileSink)
register_sink("record", RecordingSink)
register_sink("null", NullSink)

"""Frame capture on its own thread where the newest frame wins; stale frames are dropped."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque

import numpy as np

from face2face.errors import Face2FaceError
from face2face.video import VideoSource

log = logging.getLogger(__name__)


DECODE_TIMES = 10_000  # decode times kept (``LatestFrameCapture.decode_seconds``)


class SourceStalled(Face2FaceError):
    """The source stopped delivering frames (a camera unplugged or frozen)."""


class LatestFrameCapture:
    """Reads a source on a background thread into reused buffers (triple buffering; one more for
    each further frame the consumer holds).

    ``get()`` returns the newest frame not yet returned, with the time it was captured; frames
    overwritten before anyone took them are counted in ``dropped``. The consumer may hold the
    last ``hold`` frames it got (the overlapped live loop holds two). A file source can be paced
    at ``pace_fps`` to behave like a camera, and looped for long benchmarks.
    """

    def __init__(self, source: VideoSource, pace_fps: float | None = None, loop: bool = False,
                 start_timeout: float = 5.0, hold: int = 1) -> None:
        self.source = source
        self.pace_fps = pace_fps
        self.loop = loop
        self.hold = hold
        shape = (source.height, source.width, 3)
        self._buffers = [np.empty(shape, np.uint8) for _ in range(hold + 2)]
        self._latest: int | None = None  # buffer holding the newest unread frame
        self._held: deque[int] = deque(maxlen=hold)  # buffers the consumer holds, oldest first
        self._stamp = 0.0
        self._cond = threading.Condition()
        self._ended = False
        self._stop = threading.Event()
        self.captured = 0
        self.dropped = 0
        self.decode_seconds: deque[float] = deque(maxlen=DECODE_TIMES)  # per frame read, newest last
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name="capture", daemon=True)
        self._thread.start()
        with self._cond:
            if not self._cond.wait_for(lambda: self._latest is not None or self._ended, start_timeout):
                self.close()
                raise Face2FaceError(f"{source.spec}: no frame within {start_timeout:.0f} s of starting")

    def _run(self) -> None:
        period = 1.0 / self.pace_fps if self.pace_fps else 0.0
        next_due = time.perf_counter()
        while not self._stop.is_set():
            with self._cond:
                target = next(i for i in range(len(self._buffers)) if i != self._latest and i not in self._held)
            started = time.perf_counter()
            frame = self.source.read(out=self._buffers[target])
            if frame is None and self.loop:  # also where an earlier capture left the source at its end
                self.source.rewind()
                frame = self.source.read(out=self._buffers[target])
            if frame is None:  # the end, or a file with no frame to loop over
                break
            self.decode_seconds.append(time.perf_counter() - started)
            if frame is not self._buffers[target]:  # the decoder could not write in place
                self._buffers[target][:] = frame
            if period:
                next_due += period
                delay = next_due - time.perf_counter()
                if delay > 0:
                    self._stop.wait(delay)
                else:
                    next_due = time.perf_counter()
            with self._cond:
                if self._latest is not None:
                    self.dropped += 1
                self._latest = target
                self._stamp = time.perf_counter()
                self.captured += 1
                self._cond.notify_all()
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    def get(self, timeout: float = 2.0) -> tuple[np.ndarray, float] | None:
        """The newest unread frame and its capture time (``perf_counter``); None at the end.

        The frame stays valid for the next ``hold - 1`` calls of ``get``. Raises if the source
        stalls for ``timeout`` seconds (a camera that stopped delivering frames).
        """
        with self._cond:
            if len(self._held) == self._held.maxlen:
                self._held.popleft()  # released while waiting: the capture may write it
            if not self._cond.wait_for(lambda: self._latest is not None or self._ended, timeout):
                raise SourceStalled(f"{self.source.spec}: no new frame for {timeout:.0f} s; the camera stopped delivering frames")
            return None if self._latest is None else self._take()

    def poll(self) -> tuple[np.ndarray, float] | None:
        """The newest unread frame and its capture time if there is one now, else None at once (as
        ``get``, without waiting: the end of the source is ``get``'s to tell)."""
        with self._cond:
            return None if self._latest is None else self._take()

    def _take(self) -> tuple[np.ndarray, float]:
        """Hand the newest frame to the consumer (under the lock), releasing the oldest it held."""
        if len(self._held) == self._held.maxlen:
            self._held.popleft()
        self._held.append(self._latest)
        frame, self._latest = self._buffers[self._latest], None
        return frame, self._stamp

    def close(self) -> None:
        """Stop the thread (idempotent); the source is left to its owner."""
        self._stop.set()
        with self._cond:
            self._held.clear()
            self._cond.notify_all()
        self._thread.join(timeout=2.0)

    def __enter__(self) -> "LatestFrameCapture":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

"""What the user reads: log lines in one format, progress bars that do not collide with them,
and the libraries' own log output kept quiet unless ``--verbose``."""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from contextlib import ExitStack, contextmanager
from typing import Iterator

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from face2face import progress

log = logging.getLogger("face2face")

# Set before the libraries are imported; a value the user set wins.
QUIET_LIBRARIES = {
    "TF_CPP_MIN_LOG_LEVEL": "3",  # TensorFlow's C++ logs (its E-lines look like failures)
    "OPENCV_LOG_LEVEL": "SILENT",  # OpenCV's [ WARN:0@...] / [ERROR:0@...] lines, e.g. when no webcam opens
    "OPENCV_VIDEOIO_DEBUG": "0",
    # FFmpeg's own lines from OpenCV's video reader, e.g. `[mov,mp4,... @ 0x...] moov atom not found`
    # for a file that is not a whole video: its log level, AV_LOG_QUIET (read once, at the first video opened)
    "OPENCV_FFMPEG_LOGLEVEL": "-8",
}
# Log lines C++ libraries write straight to file descriptor 2, whatever their settings: absl's
# (TensorFlow logs through it before anything calls absl::InitializeLog) and TensorFlow's own.
NATIVE_LOG_LINE = re.compile(
    rb"^(?:[IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] "
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] \S+:\d+\] )"
)


class Formatter(logging.Formatter):
    """``message`` for face2face's own information, ``[library: ]level: message`` for the rest."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message = f"{message}\n{self.formatException(record.exc_info)}"
        own = record.name == "face2face" or record.name.startswith("face2face.")
        if own and record.levelno == logging.INFO:
            return message
        return f"{'face2face' if own else record.name}: {record.levelname.lower()}: {message}"


@contextmanager
def console(verbose: bool = False, quiet: bool = False) -> Iterator[None]:
    """Within ``with``: log lines go to stderr in one format, around progress bars, never into them:
    face2face's information (only its warnings with ``quiet``, debug lines too with ``verbose``),
    the libraries' Python logs and warnings from errors up (from information up with ``verbose``).
    Unless ``verbose``, the libraries' native log output is silenced (set before they load)."""
    if not verbose:
        for name, value in QUIET_LIBRARIES.items():
            os.environ.setdefault(name, value)
    with NativeLogFilter(active=not verbose):
        root, levels = logging.getLogger(), (logging.getLogger().level, log.level)
        handler = logging.StreamHandler()  # on the current stderr: the filter may have replaced it
        handler.setFormatter(Formatter())
        root.addHandler(handler)
        root.setLevel(logging.INFO if verbose else logging.ERROR)
        log.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)
        logging.captureWarnings(True)
        try:
            with logging_redirect_tqdm():
                yield
        finally:
            logging.captureWarnings(False)
            root.removeHandler(handler)
            root.setLevel(levels[0])
            log.setLevel(levels[1])


class NativeLogFilter:
    """Within ``with``: drops the log lines C++ libraries write to file descriptor 2 (see
    ``NATIVE_LOG_LINE``); everything else written there passes, and Python's own stderr writes
    straight to the original one (progress bars stay live)."""

    def __init__(self, active: bool = True) -> None:
        self.active = active
        self._original: int | None = None
        self._thread: threading.Thread | None = None
        self._stderr = None

    def __enter__(self) -> "NativeLogFilter":
        if not self.active:
            return self
        try:
            sys.stderr.flush()
            original = os.dup(2)
            read, write = os.pipe()
        except OSError:  # no usable descriptor 2: nothing to filter
            return self
        self._original = original
        os.dup2(write, 2)
        os.close(write)
        self._thread = threading.Thread(target=self._forward, args=(read, self._original), daemon=True)
        self._thread.start()
        if _writes_to_fd2(sys.stderr):
            self._stderr = sys.stderr
            sys.stderr = open(os.dup(self._original), "w", buffering=1, encoding=sys.stderr.encoding,
                              errors="backslashreplace")
        return self

    @staticmethod
    def _forward(read: int, original: int) -> None:
        with open(read, "rb", closefd=True) as pipe:
            for line in pipe:
                if not NATIVE_LOG_LINE.match(line):
                    try:
                        os.write(original, line)
                    except OSError:  # the original stderr is gone
                        return

    def __exit__(self, *exc) -> None:
        if self._original is None:
            return
        if self._stderr is not None:
            sys.stderr.close()
            sys.stderr, self._stderr = self._stderr, None
        os.dup2(self._original, 2)  # closes the pipe's last writer: the forwarding thread ends
        self._thread.join(timeout=2.0)
        if not self._thread.is_alive():  # else a child process still holds the pipe: keep forwarding
            os.close(self._original)
        self._original = self._thread = None


def _writes_to_fd2(stream) -> bool:
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):  # a replaced stream (e.g. captured by a test runner)
        return False


class Counter:
    """A progress bar for counted work, fed by ``counter(done, total, figures)``: it appears at the
    first call (so work that fails at once prints only its error; a resumed count starts where it
    stopped), is off with ``--quiet``, and ``with`` closes it. Until the first call, a ``ticker``
    shows the time spent starting."""

    def __init__(self, desc: str, unit: str, **options) -> None:
        self.desc, self.unit, self.options = desc, unit, options
        self.bar: tqdm | None = None
        self._starting = ExitStack()

    def __call__(self, done: int, total: int | None, figures: dict[str, float] | None = None) -> None:
        if self.bar is None:
            self._starting.close()
            self.bar = tqdm(desc=self.desc, total=total, unit=self.unit, initial=done - 1, dynamic_ncols=True,
                            disable=not log.isEnabledFor(logging.INFO), **self.options)
        self.bar.total = total
        if figures:
            self.bar.set_postfix({k: f"{v:.3f}" for k, v in figures.items()}, refresh=False)
        self.bar.update(done - self.bar.n)
        progress.count(self.desc, done, total, figures)

    def __enter__(self) -> "Counter":
        self._starting.enter_context(ticker(f"{self.desc} (starting)"))
        return self

    def __exit__(self, *exc) -> None:
        self._starting.close()
        if self.bar is not None:
            self.bar.close()


@contextmanager
def ticker(desc: str) -> Iterator[None]:
    """Elapsed time of work that reports no progress of its own, on a terminal, once it has
    taken a second; it disappears when the work ends."""
    if not (log.isEnabledFor(logging.INFO) and sys.stderr.isatty()):
        yield
        return
    with tqdm(desc=desc, bar_format="{desc}: {elapsed}", delay=1.0, mininterval=0.5, leave=False) as bar:
        stop = threading.Event()

        def tick() -> None:
            while not stop.wait(0.5):
                bar.update(0)  # redraws, once the delay has passed

        thread = threading.Thread(target=tick, name="ticker", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 frame``, ``2 frames``; ``nouns`` where the plural is not ``noun + "s"``."""
    return f"{count} {noun}" if count == 1 else f"{count} {nouns or noun + 's'}"

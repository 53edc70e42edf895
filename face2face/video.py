"""Frame sources (camera, video file) and a video writer that never leaves a partial file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from face2face.errors import Face2FaceError
from face2face.files import publish, writable_file


class VideoSource:
    """Frames (``HxWx3 uint8 BGR``) from a video file or a camera index, as a context manager."""

    def __init__(self, spec: str | int, width: int | None = None, height: int | None = None) -> None:
        self.spec = spec
        self.is_camera = isinstance(spec, int)
        if not self.is_camera and not Path(spec).is_file():
            if not Path(spec).exists():
                raise Face2FaceError(f"{spec}: no such video file")
            raise Face2FaceError(f"{spec}: not a video file (a folder, device or other special file)")
        self.capture = cv2.VideoCapture(spec)
        if self.is_camera and width and height:
            self.capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            self.capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        ok, first = self.capture.read() if self.capture.isOpened() else (False, None)
        if not ok:
            self.capture.release()
            if self.is_camera:
                raise Face2FaceError(
                    f"camera {spec}: cannot open it or read a frame; check that it is connected, "
                    "not used by another program, and try another --camera index"
                )
            raise Face2FaceError(f"{spec}: not a readable video (no frame could be decoded)")
        self._first: np.ndarray | None = first
        self.height, self.width = first.shape[:2]
        fps = self.capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and fps > 0 else 30.0
        count = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count = count if count > 0 and not self.is_camera else None

    def read(self, out: np.ndarray | None = None) -> np.ndarray | None:
        """The next frame (decoded into ``out`` when given and of the right shape), or None at the end."""
        if self._first is not None:
            frame, self._first = self._first, None
            if out is not None and out.shape == frame.shape:
                out[:] = frame
                return out
            return frame
        ok, frame = self.capture.read(out) if out is not None else self.capture.read()
        return frame if ok else None

    def rewind(self) -> None:
        """Start a video file again from its first frame."""
        if self.is_camera:
            raise Face2FaceError(f"camera {self.spec}: cannot rewind a camera")
        self.capture.set(cv2.CAP_PROP_POS_FRAMES, 0)

    def grab(self) -> bool:
        """Skip one frame without decoding it into an image; False at the end."""
        if self._first is not None:
            self._first = None
            return True
        return bool(self.capture.grab())

    def __iter__(self):
        while (frame := self.read()) is not None:
            yield frame

    def close(self) -> None:
        """Release the capture (idempotent)."""
        self.capture.release()

    def __enter__(self) -> "VideoSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


CODECS = {".mp4": "mp4v", ".webm": "VP80"}  # by the file's suffix, else mp4 (VP8 WebM plays in browsers)


class VideoWriter:
    """Writes ``HxWx3 uint8 BGR`` frames to an mp4 (a WebM where the path ends in .webm); the file
    appears only on a clean close.

    Frames go to a hidden temporary file beside the target, renamed into place by ``close()``;
    ``abort()`` (or an exception inside ``with``) deletes it, so a partial video never looks
    complete.
    """

    def __init__(self, path: str | os.PathLike, width: int, height: int, fps: float) -> None:
        self.path = writable_file(path)
        self.size = (width, height)
        suffix = self.path.suffix.lower() if self.path.suffix.lower() in CODECS else ".mp4"
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=f".part{suffix}", dir=self.path.parent)
        os.close(fd)
        self._tmp = Path(tmp)
        self.writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*CODECS[suffix]), fps, self.size)
        if not self.writer.isOpened():
            self._tmp.unlink(missing_ok=True)
            raise Face2FaceError(f"{self.path}: cannot write an {suffix[1:]} video here")
        self._open = True

    def write(self, frame: np.ndarray) -> None:
        """Append one frame of the writer's size."""
        if frame.shape[1::-1] != self.size:
            raise Face2FaceError(f"unexpected frame size {frame.shape[1::-1]} != {self.size}")
        self.writer.write(frame)

    def close(self) -> None:
        """Finish the file and move it into place (idempotent)."""
        if self._open:
            self._open = False
            self.writer.release()
            publish(self._tmp, self.path)

    def abort(self) -> None:
        """Stop and delete the partial file (idempotent)."""
        if self._open:
            self._open = False
            self.writer.release()
            self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.abort() if exc_type else self.close()

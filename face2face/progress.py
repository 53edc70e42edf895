"""Progress for a program watching a command (the studio): where ``FACE2FACE_PROGRESS`` names a
file, commands append one JSON object a line to it (progress bars' counts and figures, quickstart's
stages, the first model to drive, live's frame rate), and ``read`` gives them back. Without the
variable nothing is written."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

ENV = "FACE2FACE_PROGRESS"
EVERY_S = 0.5  # at most this often per progress bar (its first and last counts always)

_lock = threading.Lock()
_last: dict[str, float] = {}  # progress bar -> when its count was last written


def report(kind: str, **fields) -> None:
    """Append ``{"kind": kind, "t": unix time, **fields}`` to the progress file, if one is named."""
    path = os.environ.get(ENV)
    if not path:
        return
    line = json.dumps({"kind": kind, "t": round(time.time(), 3), **fields}) + "\n"
    with _lock:
        try:
            with open(path, "a", encoding="utf-8") as out:
                out.write(line)
        except OSError:  # the watcher's folder is gone: the command itself goes on
            pass


def count(bar: str, done: int, total: int | None, figures: dict[str, float] | None = None) -> None:
    """A progress bar's count (and figures, e.g. the training losses), at most every ``EVERY_S``."""
    if not os.environ.get(ENV):
        return
    now = time.monotonic()
    if done != total and done > 1 and now - _last.get(bar, -EVERY_S) < EVERY_S:
        return
    _last[bar] = now
    report("count", bar=bar, done=done, total=total, figures={k: round(v, 5) for k, v in (figures or {}).items()})


def read(path: str | os.PathLike) -> list[dict]:
    """The records written so far (a line still being written is left for the next read)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError:
        return []
    records = []
    for line in text.splitlines(keepends=True):
        if line.endswith("\n"):
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
    return records

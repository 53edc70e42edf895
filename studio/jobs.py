"""The studio's long work: `face2face` commands run in processes of their own, exactly as typed in a
terminal, each leaving its files in a folder so that a page opened later (or a restarted studio)
finds it where it is: ``NAME.log`` (what it printed), ``NAME.progress`` (``face2face.progress``
records, its exit status last), ``NAME.pid`` (while it may run) and ``NAME.exit`` (its exit status
as the studio that started it saw it, also where it was killed)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from face2face import progress
from face2face.errors import Face2FaceError

ERROR_PREFIX = "face2face: error: "


@dataclass(frozen=True)
class JobState:
    """What a job is doing, read from its files."""

    state: str  # "never" (not started here), "running", "finished" (exit 0), "stopped" (Ctrl-C), "failed"
    exit: int | None = None  # its exit status, once known
    error: str = ""  # its one-line error, where it failed

    @property
    def running(self) -> bool:
        return self.state == "running"


class Job:
    """One command's files in ``folder`` under ``name``; ``start`` runs it, ``pause`` sends it
    Ctrl-C (a training saves its checkpoint; a live loop stops), ``send`` writes a line to its
    standard input (only where this process started it)."""

    def __init__(self, folder: Path, name: str, cwd: Path | None = None) -> None:
        self.folder, self.name, self.cwd = Path(folder), name, cwd  # cwd: where the command runs
        self._process: subprocess.Popen | None = None

    def _file(self, suffix: str) -> Path:
        return self.folder / f"{self.name}.{suffix}"

    @property
    def log_path(self) -> Path:
        return self._file("log")

    @property
    def progress_path(self) -> Path:
        return self._file("progress")

    def start(self, *arguments: str, stdin: bool = False) -> None:
        """``face2face ARGUMENTS`` in a session of its own (a closed page or a stopped studio does not
        stop it); refused while one runs."""
        if self.state().running:
            raise Face2FaceError(f"{self.name} is already running")
        self.folder.mkdir(parents=True, exist_ok=True)
        for suffix in ("exit", "progress"):
            self._file(suffix).unlink(missing_ok=True)
        env = {**os.environ, progress.ENV: str(self.progress_path), "PYTHONUNBUFFERED": "1"}
        with open(self.log_path, "wb") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "face2face", *arguments], stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, env=env, cwd=self.cwd, start_new_session=True,
                preexec_fn=_ctrl_c_default)
        self._file("pid").write_text(f"{self._process.pid} {_started(self._process.pid)}\n")
        threading.Thread(target=self._wait, args=(self._process,), name=f"wait-{self.name}", daemon=True).start()

    def _wait(self, process: subprocess.Popen) -> None:
        status = process.wait()
        self._file("exit").write_text(f"{status}\n")
        self._file("pid").unlink(missing_ok=True)

    def _pid(self) -> int | None:
        """The process of this job if it still runs (its start time guards against a reused pid)."""
        try:
            pid, started = self._file("pid").read_text().split()
        except (OSError, ValueError):
            return None
        return int(pid) if _started(int(pid)) == started else None

    def state(self) -> JobState:
        """Running, or how it ended (from its files: also a job started by an earlier studio)."""
        if self._pid() is not None:
            return JobState("running")
        try:
            status = int(self._file("exit").read_text())
        except (OSError, ValueError):  # not started by this studio: the command's own last word
            status = next((r["status"] for r in reversed(self.records()) if r["kind"] == "exit"), None)
        if status is None and not self.log_path.exists():
            return JobState("never")
        if status == 0:
            return JobState("finished", 0)
        error = self.error()
        if status in (130, -signal.SIGINT) or (status is None and not error):
            return JobState("stopped", status)
        return JobState("failed", status, error or f"stopped with exit status {status}")

    def pause(self) -> bool:
        """Ctrl-C to the job's process group; False if it is not running."""
        pid = self._pid()
        if pid is None:
            return False
        try:
            os.killpg(pid, signal.SIGINT)
        except ProcessLookupError:
            return False
        return True

    def send(self, line: str) -> bool:
        """Write ``line`` to the job's standard input; False where that cannot be done (not running,
        or started by an earlier studio)."""
        process = self._process
        if process is None or process.stdin is None or process.poll() is not None:
            return False
        try:
            process.stdin.write(f"{line}\n".encode())
            process.stdin.flush()
        except OSError:
            return False
        return True

    def wait(self, timeout: float | None = None) -> JobState:
        """Wait for a job this process started to end, and return how it ended."""
        if self._process is not None:
            self._process.wait(timeout)
            for _ in range(100):  # the waiting thread writes the exit file
                if not self._file("pid").exists():
                    break
                time.sleep(0.02)
        return self.state()

    def records(self) -> list[dict]:
        """Its progress records so far."""
        return progress.read(self.progress_path)

    def log_tail(self, lines: int = 12) -> str:
        """The last lines it printed (progress bars' redraws reduced to their latest)."""
        try:
            text = self.log_path.read_bytes().decode(errors="replace")  # read_text would make each \r a line
        except OSError:
            return ""
        shown = [line.rsplit("\r", 1)[-1].rstrip() for line in text.split("\n")]
        return "\n".join([line for line in shown if line][-lines:])

    def error(self) -> str:
        """Its one-line error, if it printed one."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        errors = [line[len(ERROR_PREFIX):] for line in text.splitlines() if line.startswith(ERROR_PREFIX)]
        return errors[-1] if errors else ""


def _ctrl_c_default() -> None:
    """In the child before it runs: Ctrl-C (``pause``) acts, even where the studio itself was
    started with it ignored (a shell's background job); a child inherits an ignored signal."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _started(pid: int) -> str:
    """A process's start time in clock ticks since boot ("" where it does not exist or is unknown)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "" if not _alive(pid) else "?"
    return stat.rsplit(")", 1)[1].split()[19]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

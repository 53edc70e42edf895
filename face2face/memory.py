"""Peak resident memory (RSS) of this process and of the face2face commands it runs apart.

A child's own figure comes from the child: on Linux the kernel's figure for a child
(``getrusage``/``wait4``) counts the parent's memory at the moment it forked, so a command run
from a large process would report that process's size. ``run_apart`` names a file in the child's
environment and ``report_peak`` (called as a command exits) writes the child's peak there.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from face2face import progress

PEAK_FILE = "FACE2FACE_PEAK_FILE"  # environment: where a command run apart writes its peak (GB)


def peak_gb() -> float | None:
    """This process's peak resident memory so far in GB (1e9 bytes), or None where it cannot be read."""
    try:  # Linux: this program's own high-water mark, from its start (exec) on
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) * 1024 / 1e9, 2)
    except OSError:
        pass
    try:
        import resource
    except ImportError:  # Windows
        return None
    unit = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB elsewhere
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit / 1e9, 2)


def report_peak() -> None:
    """Write this process's peak to the file its parent named (``run_apart``), if any."""
    path = os.environ.get(PEAK_FILE)
    peak = peak_gb()
    if path and peak is not None:
        Path(path).write_text(f"{peak}\n")


def run_apart(argv: list[str]) -> tuple[int, str, str, float | None]:
    """Run ``argv`` (a program that calls ``report_peak`` as it exits: a face2face command); (exit
    status, its stdout, its stderr, its peak resident memory in GB, None where it reported none)."""
    with tempfile.TemporaryDirectory() as folder:
        file = Path(folder) / "peak"
        env = {k: v for k, v in os.environ.items() if k != progress.ENV}  # the parent reports the stage's progress
        result = subprocess.run(argv, capture_output=True, text=True, env={**env, PEAK_FILE: str(file)})
        try:
            peak = float(file.read_text())
        except (OSError, ValueError):
            peak = None
    return result.returncode, result.stdout, result.stderr, peak

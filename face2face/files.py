"""Output files that appear complete, under their final name, or not at all."""

from __future__ import annotations

import os
from pathlib import Path


def publish(tmp: str | os.PathLike, target: str | os.PathLike) -> None:
    """Move a finished temporary file into place with the mode any new file gets under the umask
    (``tempfile.mkstemp`` makes its files private: 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, Path(target))

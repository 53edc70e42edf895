"""Output files that appear complete, under their final name, or not at all; the check, made
before any work, that an output can be written where the user asked; and a file's sha256."""

from __future__ import annotations

import hashlib
import os
import tempfile
from functools import lru_cache
from pathlib import Path

from face2face.errors import Face2FaceError


def publish(tmp: str | os.PathLike, target: str | os.PathLike) -> None:
    """Move a finished temporary file into place with the mode any new file gets under the umask
    (``tempfile.mkstemp`` makes its files private: 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, Path(target))


def writable_file(path: str | os.PathLike) -> Path:
    """``path`` if a file can be written there (its folder exists and takes a new file), else a
    one-line error naming the path and what to do."""
    target = Path(path)
    if target.is_dir():
        raise Face2FaceError(f"{target}: is a folder; give a file name to write")
    _probe(target, target.parent)
    return target


def writable_folder(path: str | os.PathLike) -> Path:
    """``path`` if it is, or can be made, a folder to write into, else a one-line error."""
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise Face2FaceError(f"{target}: exists and is not a folder; give a folder to write into")
    existing = next(p for p in (target, *target.absolute().parents) if p.exists())
    _probe(target, existing)
    return target


def _probe(target: Path, folder: Path) -> None:
    """Create and delete a file in ``folder``: permissions, read-only disks and odd mounts all show."""
    if not folder.is_dir():
        where = "is not a folder" if folder.exists() else "does not exist"
        raise Face2FaceError(f"{target}: folder {folder} {where}; create it or write elsewhere")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise Face2FaceError(f"{target}: cannot write in {folder} ({exc.strerror}); write elsewhere") from None


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a hidden temporary file beside it: complete or absent."""
    target = writable_file(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        publish(tmp, target)
    except OSError as exc:
        raise Face2FaceError(f"{target}: cannot write ({exc.strerror})") from None
    finally:
        Path(tmp).unlink(missing_ok=True)


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes (remembered while the file's size and time stay the same)."""
    stat = os.stat(path)
    return _sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=8)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

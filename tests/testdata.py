"""Where the tests find their real face data: ``$FACE2FACE_TEST_DATA``, else ``../shared/data``
beside the checkout, else the user cache, filled once from the files' public origins (pinned by
sha256 in ``data_manifest.json``) with the project's own checked downloader, unless
``$FACE2FACE_TEST_DATA_FETCH`` is ``0``."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from face2face import assets
from face2face.errors import Face2FaceError

ENV_DATA = "FACE2FACE_TEST_DATA"
ENV_FETCH = "FACE2FACE_TEST_DATA_FETCH"  # "0": never fetch (a machine without network)
MANIFEST = Path(__file__).with_name("data_manifest.json")
HOW = (f"set ${ENV_DATA} to a copy of the data, put the project's shared/ folder beside the checkout, "
       "or run once with network access to fetch it (about 11 MB) into the user cache")


@dataclass(frozen=True)
class DataFile:
    """One file of the test data."""

    path: str  # relative to the data folder, with /
    url: str  # public origin, pinned
    sha256: str


def manifest(path: Path = MANIFEST) -> list[DataFile]:
    """Every file the tests may read."""
    return [DataFile(**entry) for entry in json.loads(path.read_text())["files"]]


def cache_dir() -> Path:
    """The user-cache folder that fetched test data goes to."""
    return assets.user_cache_dir() / "test-data"


def data_dir(shared_data: Path) -> Path:
    """The data folder, in lookup order: ``$FACE2FACE_TEST_DATA``, ``shared_data``, the cache."""
    if os.environ.get(ENV_DATA):
        return Path(os.environ[ENV_DATA])
    return shared_data if shared_data.is_dir() else cache_dir()


def missing(root: Path, files: list[DataFile]) -> list[DataFile]:
    """The files not (yet) in ``root``."""
    return [f for f in files if not (root / f.path).is_file()]


def fetch(root: Path, files: list[DataFile], timeout: float = 20.0) -> None:
    """Download the files missing from ``root``, each checked against its sha256 and moved into
    place only when complete; stops at the first failure (Face2FaceError)."""
    for f in missing(root, files):
        assets.download(f.url, root / f.path, f.sha256, timeout=timeout)


def unavailable(root: Path, files: list[DataFile]) -> str:
    """Why the data cannot be used ("" when every file is there), after fetching what is missing
    when ``root`` is the cache (a folder named by the user or shared/ is only read)."""
    if root == cache_dir() and missing(root, files):
        if os.environ.get(ENV_FETCH) == "0":
            return f"real face data not found (fetching is off: ${ENV_FETCH}=0); {HOW}"
        try:
            fetch(root, files)
        except Face2FaceError as exc:
            return f"real face data not found and not fetched ({exc}); {HOW}"
    gone = missing(root, files)
    if gone:
        return f"real face data incomplete in {root} ({len(gone)} files missing, e.g. {gone[0].path}); {HOW}"
    return ""

"""The tests' own data lookup: environment variable, then ../shared/data, then a one-time fetch
into the user cache, checked by sha256 (against a local HTTP origin: no network needed)."""

from __future__ import annotations

import hashlib
import threading
from functools import partial
from http.server import HTTPServer, SimpleHTTPRequestHandler
from pathlib import Path

import pytest

import testdata
from face2face.errors import Face2FaceError
from testdata import DataFile


@pytest.fixture()
def origin(tmp_path):
    """A local HTTP server for ``tmp_path/origin``, serving one clip; yields (base URL, folder)."""
    folder = tmp_path / "origin"
    folder.mkdir()
    (folder / "clip.mp4").write_bytes(b"a real enough clip" * 1000)
    handler = partial(SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", folder
    server.shutdown()
    server.server_close()


def _entry(url: str, folder: Path, sha256: str | None = None) -> DataFile:
    return DataFile("videos/clip.mp4", f"{url}/clip.mp4",
                    sha256 or hashlib.sha256((folder / "clip.mp4").read_bytes()).hexdigest())


def test_missing_files_are_fetched_once_and_checked(origin, tmp_path):
    url, folder = origin
    root = tmp_path / "cache"
    files = [_entry(url, folder)]
    testdata.fetch(root, files)
    assert (root / "videos" / "clip.mp4").read_bytes() == (folder / "clip.mp4").read_bytes()
    (folder / "clip.mp4").unlink()  # the origin is gone: the cached copy is enough
    testdata.fetch(root, files)
    assert testdata.missing(root, files) == []


def test_a_file_whose_hash_does_not_match_leaves_nothing_in_the_cache(origin, tmp_path):
    url, folder = origin
    root = tmp_path / "cache"
    with pytest.raises(Face2FaceError, match="checksum mismatch"):
        testdata.fetch(root, [_entry(url, folder, sha256="0" * 64)])
    assert [p for p in root.rglob("*") if p.is_file()] == []


def test_lookup_order_env_then_shared_then_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    shared = tmp_path / "shared" / "data"
    monkeypatch.delenv(testdata.ENV_DATA, raising=False)
    assert testdata.data_dir(shared) == tmp_path / "xdg" / "face2face" / "test-data"
    shared.mkdir(parents=True)
    assert testdata.data_dir(shared) == shared
    monkeypatch.setenv(testdata.ENV_DATA, str(tmp_path / "mine"))
    assert testdata.data_dir(shared) == tmp_path / "mine"


def test_unavailable_data_fills_the_cache_or_says_how_to_get_it(origin, tmp_path, monkeypatch):
    url, folder = origin
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv(testdata.ENV_FETCH, raising=False)
    cache = testdata.cache_dir()
    assert testdata.unavailable(cache, [_entry(url, folder, sha256="0" * 64)]).endswith(testdata.HOW)
    assert testdata.unavailable(cache, [_entry(url, folder)]) == ""
    mine = tmp_path / "mine"  # a folder the user named is read, never written
    problem = testdata.unavailable(mine, [_entry(url, folder)])
    assert "1 files missing, e.g. videos/clip.mp4" in problem and not mine.exists()


def test_fetching_can_be_turned_off(origin, tmp_path, monkeypatch):
    url, folder = origin
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv(testdata.ENV_FETCH, "0")
    problem = testdata.unavailable(testdata.cache_dir(), [_entry(url, folder)])
    assert problem.startswith("real face data not found (fetching is off") and problem.endswith(testdata.HOW)
    assert not testdata.cache_dir().exists()


def test_the_manifest_names_every_file_once_with_a_pinned_origin():
    files = testdata.manifest()
    assert len({f.path for f in files}) == len(files) >= 30
    for f in files:
        assert f.url.startswith("https://raw.githubusercontent.com/") and len(f.sha256) == 64

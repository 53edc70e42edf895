"""Weight lookup order and checksum-verified downloads against a local HTTP server."""

import bz2
import hashlib
import http.server
import stat
import threading
from functools import partial

import pytest

from face2face import assets
from face2face.cli import main
from face2face.errors import Face2FaceError

PAYLOAD = b"weights " * 4096


@pytest.fixture()
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/www."""
    www = tmp_path / "www"
    www.mkdir()
    (www / "good.bin").write_bytes(PAYLOAD)
    (www / "corrupt.bin").write_bytes(PAYLOAD[:-1] + b"!")
    (www / "packed.bin.bz2").write_bytes(bz2.compress(PAYLOAD))
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture()
def test_asset(monkeypatch, tmp_path):
    """A registered asset pointing at the local server, with the cache in tmp_path."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def register(url: str, compression: str = "none"):
        asset = assets.Asset(name="test-weights", filename="test.bin", description="test",
                             url=url, sha256=hashlib.sha256(PAYLOAD).hexdigest(), compression=compression)
        monkeypatch.setitem(assets.ASSETS, asset.name, asset)
        return asset

    return register


def test_fetch_downloads_verifies_and_places(server, test_asset, tmp_path, umask_022):
    test_asset(f"{server}/good.bin")
    seen = []
    path = assets.fetch("test-weights", progress=lambda done, total: seen.append((done, total)))
    assert path == tmp_path / "cache" / "face2face" / "test.bin" and path.read_bytes() == PAYLOAD
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # like any new file, not the temporary file's 0600
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert assets.locate("test-weights") == path


def test_fetch_decompresses_bz2(server, test_asset):
    test_asset(f"{server}/packed.bin.bz2", compression="bz2")
    assert assets.fetch("test-weights").read_bytes() == PAYLOAD


def test_corrupt_download_leaves_nothing(server, test_asset, tmp_path):
    test_asset(f"{server}/corrupt.bin")
    with pytest.raises(Face2FaceError, match="checksum mismatch"):
        assets.fetch("test-weights")
    assert list((tmp_path / "cache" / "face2face").iterdir()) == []


def test_unreachable_server_is_one_line(test_asset, capsys, tmp_path):
    test_asset("http://127.0.0.1:9/none.bin")
    assert main(["models", "fetch", "test-weights"]) == 1
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("face2face:")]
    assert len(errors) == 1 and "download failed" in errors[0] and "Traceback" not in err
    assert list((tmp_path / "cache" / "face2face").iterdir()) == []


def test_lookup_order(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    packaged = assets.locate("landmarks68")  # shipped in face-recognition-models
    assert "face_recognition_models" in str(packaged)
    cached = tmp_path / "cache" / "face2face" / "shape_predictor_68_face_landmarks.dat"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"x")
    assert assets.locate("landmarks68") == cached
    env = tmp_path / "env"
    env.mkdir()
    (env / cached.name).write_bytes(b"y")
    monkeypatch.setenv("FACE2FACE_MODELS", str(env))
    assert assets.locate("landmarks68") == env / cached.name
    explicit = tmp_path / "mine.dat"
    explicit.write_bytes(b"z")
    assert assets.locate("landmarks68", explicit) == explicit
    with pytest.raises(Face2FaceError, match="not found"):
        assets.locate("landmarks68", tmp_path / "nope.dat")


def test_missing_yunet_says_how_to_fetch(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("FACE2FACE_MODELS", raising=False)
    with pytest.raises(Face2FaceError, match="face2face models fetch yunet"):
        assets.locate("yunet")


def test_models_list_names_every_asset(capsys):
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    for name in assets.ASSETS:
        assert name in out

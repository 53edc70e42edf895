"""Shared test setup: the real face data (see testdata.py for where it is found), the detector
weights folder, and skipping, with one line saying how to get them, the tests that need what is
missing."""

from __future__ import annotations

import inspect
import json
import os
import shutil
from pathlib import Path
from types import CodeType

import pytest

import testdata
from face2face import assets
from face2face.errors import Face2FaceError

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
SHARED = REPO.parent / "shared"
DATA = testdata.data_dir(SHARED / "data")
VIDEOS = DATA / "videos"
IMAGES = DATA / "images"
DATA_PROBLEM = pytest.StashKey[str]()

# Tests point the product at the shared detector weights the same way a user would; without
# shared/, the product's own lookup applies ($FACE2FACE_MODELS, the user cache, the packages).
if (SHARED / "models").is_dir():
    os.environ["FACE2FACE_MODELS"] = str(SHARED / "models")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[DATA_PROBLEM] = testdata.unavailable(DATA, testdata.manifest())


# Test files that run face2face in other processes for a minute or more (quickstarts, the studio, two
# training workers): the suite's two workers (pytest-xdist, ``--dist loadgroup``) run them in one
# group, one after another and first; two at once on two cores starve each other past their timeouts.
IN_OTHER_PROCESSES = ("test_distributed.py", "test_studio.py", "test_quickstart.py", "test_killed.py")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the tests that read the real face data when it is missing, and those run with a
    weight file that is not found (e.g. ``yunet`` before `face2face models fetch yunet`). Group the
    tests for the workers: a file's tests together (its module fixtures are built once), those in
    ``IN_OTHER_PROCESSES`` all together, first."""
    problem = config.stash[DATA_PROBLEM]
    items.sort(key=lambda item: item.path.name not in IN_OTHER_PROCESSES)  # stable: files keep their order
    for item in items:
        group = "in-other-processes" if item.path.name in IN_OTHER_PROCESSES else item.path.name
        item.add_marker(pytest.mark.xdist_group(group))
        if problem and _reads_data(item):
            item.add_marker(pytest.mark.skip(reason=problem))
        weights = _missing_weights(item)
        if weights:
            item.add_marker(pytest.mark.skip(reason=f"weight file {weights!r} not found: run "
                                                    f"`face2face models fetch {weights}` or set $FACE2FACE_MODELS"))


def _reads_data(item: pytest.Item) -> bool:
    """True if the test, its parameters or its fixtures (or the functions they call) name a path
    in the data folder."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    if any(str(DATA) in str(value) for value in params.values()):
        return True
    definitions = item._fixtureinfo.name2fixturedefs
    functions = [item.obj, *(d.func for name in item.fixturenames for d in definitions.get(name, ()))]
    seen: set[int] = set()
    return any(_names_data(inspect.unwrap(f), seen) for f in functions)


def _names_data(function, seen: set[int]) -> bool:
    """True if ``function``'s code refers to a global that is a data path, directly or through
    another function of the tests."""
    if not inspect.isfunction(function) or id(function) in seen or Path(function.__code__.co_filename).resolve().parent != TESTS:
        return False
    seen.add(id(function))
    for name in _global_names(function.__code__):
        value = function.__globals__.get(name)
        if (isinstance(value, Path) and value.is_relative_to(DATA)) or _names_data(value, seen):
            return True
    return False


def _global_names(code: CodeType) -> set[str]:
    """Names a code object (and the lambdas and comprehensions inside it) looks up."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, CodeType):
            names |= _global_names(const)
    return names


def _missing_weights(item: pytest.Item) -> str:
    """A weight file the test is parametrized with that cannot be found ("" if none)."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    for value in params.values():
        if isinstance(value, str) and value in assets.ASSETS:
            try:
                assets.locate(value)
            except Face2FaceError:
                return value
    return ""


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The ``shared`` folder beside the repository."""
    return SHARED


@pytest.fixture()
def umask_022():
    """The common umask (new files 0644) for the test's duration."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.fixture(scope="session")
def analyzer():
    """One default face analyzer (SSD + dlib 68 landmarks) for the whole session."""
    from face2face.faces import FaceAnalyzer

    return FaceAnalyzer()


TINY_SIZE = 64  # px: tiny models keep the suite fast
TINY_STEPS = 30


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """A 64 px dataset of 40 real pairs (32 train + 8 test) from lp_d19 (steady, glasses), its
    references built, so that no test depends on another having trained on it first."""
    from face2face.train.prepare import PrepareConfig, prepare
    from face2face.train.references import ensure_references

    out = tmp_path_factory.mktemp("data") / "d19"
    prepare([str(VIDEOS / "lp_d19.mp4")], out, PrepareConfig(size=TINY_SIZE, max_pairs=40))
    ensure_references(out)
    return out


@pytest.fixture(scope="session")
def tiny_run(tiny_dataset, tmp_path_factory) -> Path:
    """A 30-step ngf 8 / ndf 8 training run (settling included) on ``tiny_dataset``."""
    from face2face.train.trainer import TrainConfig, train

    run = tmp_path_factory.mktemp("run") / "tiny"
    train(tiny_dataset, run, TrainConfig(steps=TINY_STEPS, ngf=8, ndf=8, checkpoint_every=10, sample_every=15))
    return run


@pytest.fixture(scope="session")
def tiny_model(tiny_run, tmp_path_factory) -> Path:
    """``tiny_run`` exported to ONNX with its sidecar."""
    from face2face.train.export import export

    model = tmp_path_factory.mktemp("model") / "tiny.onnx"
    export(tiny_run, model)
    return model


def copy_reference(model: Path, folder: Path) -> None:
    """Copy the reference bank ``model``'s sidecar names into ``folder``, for a copy of the model
    put there (its sidecar names the same folder)."""
    name = json.loads(model.with_suffix(".json").read_text()).get("reference")
    if name:
        shutil.copytree(model.with_name(name), folder / name, dirs_exist_ok=True)


@pytest.fixture(scope="session")
def x_server():
    """A real X server (Xvfb) for preview windows, one for the whole session (one per worker, each on
    a free display number it picks itself): a process whose display goes away while OpenCV holds a
    connection to it is ended by Xlib. CI installs it."""
    import shutil
    import subprocess

    if not (shutil.which("Xvfb") and shutil.which("xdotool")):
        pytest.skip("Xvfb and xdotool are not installed (apt-get install xvfb xdotool)")
    server = subprocess.Popen(["Xvfb", "-displayfd", "1", "-screen", "0", "800x600x24"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    number = server.stdout.readline().strip()  # written once the server accepts connections
    if not number.isdigit():
        server.kill()
        pytest.fail("Xvfb did not start (no display number on its -displayfd)")
    yield f":{number}"
    server.terminate()
    server.wait()
    server.stdout.close()


@pytest.fixture()
def x_display(x_server, monkeypatch):
    """``DISPLAY`` set to the session's X server for one test."""
    monkeypatch.setenv("DISPLAY", x_server)
    return x_server

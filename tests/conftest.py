"""Shared test setup: the real face data in ../shared, and the detector weights folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DATA = SHARED / "data"
VIDEOS = DATA / "videos"
IMAGES = DATA / "images"

# Tests point the product at the shared detector weights the same way a user would.
os.environ["FACE2FACE_MODELS"] = str(SHARED / "models")


def pytest_configure(config: pytest.Config) -> None:
    if not DATA.is_dir():
        raise pytest.UsageError(f"test data not found: {DATA} (the shared folder must sit beside the repo)")


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
    """A 64 px dataset of 40 real pairs (32 train + 8 test) from lp_d19 (steady, glasses)."""
    from face2face.train.prepare import PrepareConfig, prepare

    out = tmp_path_factory.mktemp("data") / "d19"
    prepare([str(VIDEOS / "lp_d19.mp4")], out, PrepareConfig(size=TINY_SIZE, max_pairs=40))
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

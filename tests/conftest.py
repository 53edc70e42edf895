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


@pytest.fixture(scope="session")
def analyzer():
    """One default face analyzer (SSD + dlib 68 landmarks) for the whole session."""
    from face2face.faces import FaceAnalyzer

    return FaceAnalyzer()


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """A 64 px dataset of 40 pairs prepared from a real clip (lp_d19: steady, glasses)."""
    from face2face.train.prepare import PrepareConfig, prepare

    out = tmp_path_factory.mktemp("data") / "d19"
    prepare([str(VIDEOS / "lp_d19.mp4")], out, PrepareConfig(size=64, max_pairs=40))
    return out


@pytest.fixture(scope="session")
def tiny_model(tiny_dataset, tmp_path_factory) -> Path:
    """A tiny generator (64 px, ngf 8) trained enough steps on ``tiny_dataset`` to tell sketches apart."""
    from face2face.train.export import export
    from face2face.train.trainer import TrainConfig, train

    root = tmp_path_factory.mktemp("model")
    train(tiny_dataset, root / "run", TrainConfig(steps=200, ngf=8, ndf=8, sample_every=1000, checkpoint_every=1000))
    model = root / "tiny.onnx"
    export(root / "run", model)
    return model

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

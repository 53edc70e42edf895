"""Helpers shared by the training tests: a tiny real dataset and a tiny trained run, built once.

Each is built under pytest's session base temp folder and reused by every module that asks
(the fixtures are imported into the test modules; the folder check makes them once per session).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

SIZE = 64
STEPS = 30


def _shared() -> Path:
    return Path(__file__).resolve().parents[1].parent / "shared"


def build_dataset(base: Path) -> Path:
    """64 px dataset of 40 real pairs (32 train + 8 test) from a shared video."""
    from face2face.train.prepare import MANIFEST, PrepareConfig, prepare

    out = base / "tiny_dataset"
    if not (out / MANIFEST).is_file():
        prepare([str(_shared() / "data" / "videos" / "lp_d19.mp4")], out, PrepareConfig(size=SIZE, max_pairs=40))
    return out


def build_run(base: Path, data: Path) -> Path:
    """A 30-step run at ngf 8 / ndf 8 (settling included) on the tiny dataset."""
    from face2face.train.trainer import TrainConfig, train

    run = base / "tiny_run"
    if not (run / "checkpoints" / "checkpoint").is_file():
        shutil.rmtree(run, ignore_errors=True)
        train(data, run, TrainConfig(steps=STEPS, ngf=8, ndf=8, checkpoint_every=10, sample_every=15))
    return run


@pytest.fixture
def tiny_dataset(tmp_path_factory) -> Path:
    return build_dataset(tmp_path_factory.getbasetemp())


@pytest.fixture
def tiny_run(tmp_path_factory, tiny_dataset) -> Path:
    return build_run(tmp_path_factory.getbasetemp(), tiny_dataset)

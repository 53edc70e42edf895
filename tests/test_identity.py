"""Identity distance (dlib descriptor) and the cross-driver evaluation on real clips."""

import json

import cv2
import numpy as np
import pytest

from face2face.cli import main
from face2face.coverage import FEATURES
from face2face.identity import SAME_PERSON, FaceIdentity, distance
from face2face.train.crossdrive import Steadiness, _coverage_split
from face2face.video import VideoSource

from conftest import IMAGES, VIDEOS


def _descriptors(analyzer, identity, video, count=4):
    out = []
    with VideoSource(str(VIDEOS / video)) as source:
        for index, frame in enumerate(source):
            if index % 30 == 0:
                out.append(identity.descriptor(frame, analyzer.analyze(frame)[0].landmarks))
            if len(out) == count:
                return out
    return out


def test_same_person_is_closer_than_another(analyzer):
    identity = FaceIdentity()
    glasses_man = _descriptors(analyzer, identity, "lp_d19.mp4")
    woman = _descriptors(analyzer, identity, "lp_d6.mp4")
    within = [distance(a, b) for i, a in enumerate(glasses_man) for b in glasses_man[i + 1:]]
    across = [distance(a, b) for a in glasses_man for b in woman]
    assert max(within) < SAME_PERSON < min(across)


def test_cross_driver_report(tiny_model, tiny_dataset, tmp_path, capsys):
    out = tmp_path / "cross.json"
    assert main(["evaluate", str(tiny_model), str(tiny_dataset), "--driver", str(VIDEOS / "lp_d18.mp4"),
                 "--frames", "12", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["frames"] == 12 and report["driver_to_target"] > SAME_PERSON  # another man drives
    assert report["target_detail"] > 0.0 and report["target_checkerboard"] > 0.0  # the target's own photos
    assert set(report["modes"]) == {"absolute", "aligned", "relative"}
    for scores in report["modes"].values():
        assert 0.0 <= scores["face_rate"] <= 1.0
        for key in ("identity_to_target", "identity_to_driver"):
            assert scores[key] is None or 0.0 < scores[key] < 2.0
        assert 0.0 < scores["change_driver"] < 50.0 and scores["change_output"] > 0.0  # a talking man moves
        assert scores["change_ratio"] == pytest.approx(scores["change_output"] / scores["change_driver"])
        assert 0.0 < scores["sharpness"] < 2.0 and scores["checkerboard"] > 0.0
    assert report["shape_limit"] == 3.0 and report["modes"]["relative"]["shape_held_px"] > 0.0  # another face shape
    assert report["modes"]["absolute"]["shape_held_px"] == report["modes"]["aligned"]["shape_held_px"] == 0.0
    assert report["modes"]["absolute"]["shape_limited"] == report["modes"]["aligned"]["shape_limited"] == 0.0
    assert 0.0 <= report["modes"]["relative"]["shape_limited"] <= 1.0  # moved 0.5 px or more: few, on a tiny model
    for scores in report["modes"].values():  # the split itself: test_coverage_split_scores_the_frames_apart
        covered = scores["coverage"]
        assert list(covered["by_feature"]) == list(FEATURES)
        assert covered["outside_share"] >= max(covered["by_feature"].values())
        assert covered["inside"]["frames"] + covered["outside"]["frames"] == 12
    printed = capsys.readouterr().out
    assert "relative" in printed and "sharpness" in printed and "driver frames beyond the target video's range" in printed


def test_coverage_split_scores_the_frames_apart():
    target = np.zeros((len(FEATURES), 2))  # a target that never moves
    still, turned = np.zeros(len(FEATURES)), np.zeros(len(FEATURES))
    turned[FEATURES.index("yaw")] = 0.5  # beyond the target's range
    a, b, c = (np.eye(128)[i] * 0.4 for i in range(3))  # descriptors 0.4 from the origin, 0.566 apart
    driven = [(still, a, 1.0), (still, a, 2.0), (still, None, None), (turned, b, 5.0)]  # the driver's neutral: still
    split = _coverage_split(driven, target, [np.zeros(128)], "absolute")
    assert split["outside_share"] == 0.25 and split["by_feature"]["yaw"] == 0.25 and split["by_feature"]["mouth"] == 0.0
    assert split["inside"] == {"frames": 3, "identity_to_target": pytest.approx(0.4), "expression_error_px": 1.5}
    assert split["outside"] == {"frames": 1, "identity_to_target": pytest.approx(0.4), "expression_error_px": 5.0}
    assert _coverage_split([], target, [c], "relative") is None
    leaning = np.zeros(len(FEATURES))
    leaning[FEATURES.index("roll")] = 20.0  # the head leaning far: what relative mode levels away
    leant = [(still, a, 1.0), (still, a, 1.0), (leaning, b, 1.0)]
    assert _coverage_split(leant, target, [np.zeros(128)], "absolute")["outside_share"] == pytest.approx(1 / 3)
    assert _coverage_split(leant, target, [np.zeros(128)], "relative")["outside_share"] == 0.0


def test_steadiness_counts_change_inside_the_face_only(analyzer):
    photo = cv2.imread(str(IMAGES / "lp_d8.jpg"))
    points = analyzer.analyze(photo)[0].landmarks
    still = Steadiness()
    for _ in range(3):
        still.add(photo, points)
    assert still.value == 0.0
    outside = photo.copy()
    outside[:, : int(points[:, 0].min()) - 5] = 255  # the background changes, the face does not
    moving = Steadiness()
    for image in (photo, outside, photo):
        moving.add(image, points)
    assert moving.value == 0.0
    moving.add(cv2.add(photo, (8.0, 8.0, 8.0, 0.0)), points)  # every face pixel 8 levels brighter
    assert moving.value == pytest.approx(8.0 / 3, abs=0.3)
    moving.add(None, None)  # a frame without a face breaks the chain
    moving.add(photo, points)
    assert len(moving.changes) == 3

"""Identity distance (dlib descriptor) and the cross-driver evaluation on real clips."""

import json


from face2face.cli import main
from face2face.identity import SAME_PERSON, FaceIdentity, distance
from face2face.video import VideoSource

from conftest import VIDEOS


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
    assert set(report["modes"]) == {"absolute", "aligned", "relative"}
    for scores in report["modes"].values():
        assert 0.0 <= scores["face_rate"] <= 1.0
        for key in ("identity_to_target", "identity_to_driver"):
            assert scores[key] is None or 0.0 < scores[key] < 2.0
    assert "relative" in capsys.readouterr().out

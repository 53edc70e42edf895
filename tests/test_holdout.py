"""The weights a run hands over: scored on held-back train pairs, the best exported."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from face2face.errors import Face2FaceError
from face2face.train import data as data_module
from face2face.train.data import check_split
from face2face.train.export import ExportConfig, export, run_onnx
from face2face.train.holdout import HoldoutScorer, Scores, read_scores, split_holdout
from face2face.train.options import BEST, SCORES
from face2face.train.trainer import TrainConfig, train


def test_the_last_pairs_by_time_are_held_back_never_all_of_them(tiny_dataset):
    split = check_split(tiny_dataset, "train")
    kept, held = split_holdout(split, 0.1)
    assert kept.names + held.names == split.names and len(held.names) == round(0.1 * len(split.names))
    assert split_holdout(split, 0.0) == (split, None)
    two = check_split(tiny_dataset, "train").names[:2]
    kept, held = split_holdout(type(split)(split.root, "train", two, split.size), 0.4)
    assert (kept.names, held.names) == (two[:1], two[1:])  # at least one of each


def test_run_keeps_the_best_scoring_weights_and_export_hands_them_over(tiny_dataset, tmp_path, monkeypatch):
    trained_on = []
    original = data_module.make_dataset

    def spy(split, *args, **kwargs):
        trained_on.append(list(split.names))
        return original(split, *args, **kwargs)

    monkeypatch.setattr("face2face.train.trainer.make_dataset", spy)
    run = tmp_path / "run"
    train(tiny_dataset, run, TrainConfig(steps=30, ngf=8, ndf=8, checkpoint_every=10, holdout=0.25,
                                         sample_every=1000))
    scores = read_scores(run)
    held = scores.held_out
    assert len(held) == 8 and held == check_split(tiny_dataset, "train").names[-8:]
    assert not set(held) & set(trained_on[0])  # never trained on
    assert sorted(scores.scores) == [10, 20, 30]
    best = scores.best
    assert scores.scores[best] <= 1.1 * min(scores.scores.values())
    assert all(value > 1.1 * min(scores.scores.values()) for step, value in scores.scores.items() if step > best)
    assert json.loads((run / SCORES).read_text())["best_step"] == best
    assert (run / BEST).is_dir()

    chosen = export(run, tmp_path / "best.onnx")
    last = export(run, tmp_path / "last.onnx", ExportConfig(last=True))
    assert (chosen.steps, last.steps) == (best, 30)
    # The handed-over model is the one that was scored: its face L1 on the held-back pairs is the
    # recorded score (up to ONNX's rounding).
    scorer = HoldoutScorer(split_holdout(check_split(tiny_dataset, "train"), 0.25)[1])

    class Onnx:
        def __call__(self, sketch, training=False):
            return run_onnx(tmp_path / "best.onnx", np.asarray(sketch, np.float32))

    assert scorer.score(Onnx()) == pytest.approx(scores.scores[best], abs=1e-4)


def test_the_weights_handed_over_are_the_latest_within_a_tenth_of_the_best_score():
    # held-out face L1 of two real runs (lp_d6): a decaying rate, and a spoiled end (settling shock)
    decaying = Scores([], {360: 0.0613, 720: 0.0492, 1800: 0.0430, 2160: 0.0475, 3240: 0.0530, 3600: 0.0464})
    spoiled = Scores([], {600: 0.0522, 720: 0.0483, 1080: 0.0496, 1200: 0.0600})
    assert (decaying.best, spoiled.best) == (3600, 1080)
    assert Scores([], {10: 0.05, 20: 0.03}).best == 20 and Scores([], {}).best is None


def test_held_back_pairs_without_landmarks_get_a_one_line_error(tiny_dataset, tmp_path):
    split = check_split(tiny_dataset, "train")
    doc = json.loads((tiny_dataset / "train" / "landmarks.json").read_text())
    copy = tmp_path / "d"
    for kind in ("input", "target"):
        (copy / "train" / kind).mkdir(parents=True)
        for name in split.names[-2:]:
            image = cv2.imread(str(tiny_dataset / "train" / kind / f"{name}.png"))
            cv2.imwrite(str(copy / "train" / kind / f"{name}.png"), image)
    keep = [i for i, n in enumerate(doc["names"]) if n != split.names[-1]]
    doc = {k: [v[i] for i in keep] if isinstance(v, list) and len(v) == len(doc["names"]) else v
           for k, v in doc.items()}
    (copy / "train" / "landmarks.json").write_text(json.dumps(doc))
    held = type(split)(copy, "train", split.names[-1:], split.size)
    with pytest.raises(Face2FaceError, match="no landmarks for pair"):
        HoldoutScorer(held)

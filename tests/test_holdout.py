"""The weights a run hands over: scored on held-back train pairs, the best exported."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import tensorflow as tf

from face2face.errors import Face2FaceError
from face2face.train import data as data_module
from face2face.train.pairs import check_split
from face2face.train.export import ExportConfig, export, run_onnx
from face2face.train.holdout import HoldoutScorer, Scores, read_scores, split_holdout
from face2face.train.level import OUTPUT_LAYER
from face2face.train.options import BEST, CHECKPOINTS, SCORES
from face2face.train.pix2pix import WeightAverage, build_generator
from face2face.train.trainer import TrainConfig, build, make_checkpoint, train


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
    scorer = HoldoutScorer(split_holdout(check_split(tiny_dataset, "train", reference=True), 0.25)[1])

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


def test_a_weight_average_follows_the_weights_with_a_warming_up_decay():
    weights = [tf.Variable([0.0, 0.0]), tf.Variable(1.0)]
    average = WeightAverage(weights, decay=0.5)
    expected = [np.zeros(2), 1.0]
    for n, step in enumerate([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], start=1):
        weights[0].assign(step)
        weights[1].assign(step[0] * 10)
        average.update(weights)
        decay = min(0.5, (1 + n) / (10 + n))  # 0.18, 0.25, 0.31: the warm-up, under the decay
        expected = [decay * e + (1 - decay) * np.asarray(v.numpy()) for e, v in zip(expected, weights)]
    for got, want in zip(average.weights, expected):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)
    with average.swapped_into(weights):
        np.testing.assert_allclose(weights[0].numpy(), expected[0], rtol=1e-6)
    np.testing.assert_array_equal(weights[0].numpy(), [5.0, 6.0])  # the weights come back


def test_with_ema_the_run_hands_over_its_weight_average_scored_as_exported(tiny_dataset, tmp_path):
    run = tmp_path / "run"
    config = TrainConfig(steps=30, ngf=8, ndf=8, checkpoint_every=10, holdout=0.25, sample_every=1000, ema=0.9)
    train(tiny_dataset, run, config)
    best = read_scores(run).best
    model = build(config, 64, 1, 30)
    ckpt, _, _ = make_checkpoint(model)
    ckpt.restore(str(run / CHECKPOINTS / f"ckpt-{best}")).assert_existing_objects_matched()
    handed = build_generator(64, 8, channels=6, residual=True)
    tf.train.Checkpoint(generator=handed).restore(tf.train.latest_checkpoint(str(run / BEST))).expect_partial()
    level_fitted = handed.get_layer(OUTPUT_LAYER).bias
    for kept, average in zip(handed.trainable_variables, model.average.weights):
        if kept is level_fitted:  # the average's, plus the face's level fitted to it
            assert 0 < np.abs(kept.numpy() - average.numpy()).max() < 0.5
        else:
            np.testing.assert_array_equal(kept.numpy(), average.numpy())
    assert any(not np.allclose(a.numpy(), w.numpy()) for a, w in zip(model.average.weights,
                                                                       model.generator.trainable_variables))
    # Scored as exported: the ONNX file's held-back face L1 is the recorded one.
    export(run, tmp_path / "avg.onnx")
    export(run, tmp_path / "raw.onnx", ExportConfig(last=True))
    scorer = HoldoutScorer(split_holdout(check_split(tiny_dataset, "train", reference=True), 0.25)[1])
    sketch = scorer._sketches.astype(np.float32)
    assert not np.allclose(run_onnx(tmp_path / "avg.onnx", sketch), run_onnx(tmp_path / "raw.onnx", sketch))

    class Onnx:
        def __call__(self, sketch, training=False):
            return run_onnx(tmp_path / "avg.onnx", np.asarray(sketch, np.float32))

    assert scorer.score(Onnx()) == pytest.approx(read_scores(run).scores[best], abs=1e-4)
    with pytest.raises(Face2FaceError, match="cannot resume with ema 0.0; the run was trained with 0.9"):
        train(tiny_dataset, run, TrainConfig(**{**config.__dict__, "steps": 40, "ema": 0.0, "resume": True}))

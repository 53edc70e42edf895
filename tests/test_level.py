"""The face's level fitted on train pairs (``face2face.train.level``), as export and the held-back scores use it."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from face2face.train.pairs import check_split  # noqa: E402
from face2face.train import export as export_module  # noqa: E402
from face2face.train.export import ExportConfig, export, load_generator, run_onnx  # noqa: E402
from face2face.train.holdout import face_pairs, split_holdout  # noqa: E402
from face2face.train.level import OUTPUT_LAYER, FaceLevel, weighted_median  # noqa: E402


def _face_offset(outputs: np.ndarray, split) -> np.ndarray:
    """Mean (output - photo) inside the faces, per channel, in 8-bit grey levels."""
    _, photos, masks = face_pairs(split)
    return 255.0 * ((np.asarray(outputs) + 1.0) / 2.0 - photos)[masks].mean(axis=0)


def test_weighted_median_follows_the_weights():
    values = np.array([0.0, 1.0, 2.0, 3.0])
    assert weighted_median(values, np.ones(4)) == 1.0
    assert weighted_median(values, np.array([1.0, 1.0, 1.0, 10.0])) == 3.0
    assert weighted_median(values, np.array([10.0, 1.0, 1.0, 1.0])) == 0.0


def test_a_darkened_face_is_put_back_to_the_photos_level_and_the_fit_is_a_fixed_point(tiny_run, tiny_dataset):
    generator, _, _, _ = load_generator(tiny_run)
    trained_on = split_holdout(check_split(tiny_dataset, "train", reference=True), 0.05)[0]
    level = FaceLevel(trained_on)
    assert level.pairs == len(trained_on.names)  # the tiny split has fewer pairs than PAIRS: all of them
    # The handed-over weights were fitted on these pairs when the run scored them: nothing to add.
    assert np.abs(level.fit(generator)).max() < 0.01
    bias = generator.get_layer(OUTPUT_LAYER).bias
    fitted = bias.numpy()
    sketches = face_pairs(trained_on)[0]
    at_level = _face_offset(generator(sketches, training=False), trained_on)
    bias.assign_sub([0.4, 0.2, 0.3])  # the whole face darker, unevenly
    darker = _face_offset(generator(sketches, training=False), trained_on)
    assert (darker < at_level - 8).all()
    lightened = level.fit(generator)
    assert (lightened > 8).all()
    np.testing.assert_allclose(bias.numpy(), fitted, atol=2e-3)
    np.testing.assert_allclose(_face_offset(generator(sketches, training=False), trained_on), at_level, atol=0.5)


def test_export_fits_the_face_level_into_the_model(tiny_run, tiny_dataset, tmp_path, monkeypatch):
    conversions = []
    convert = export_module.to_onnx
    monkeypatch.setattr(export_module, "to_onnx", lambda *a: conversions.append(a) or convert(*a))
    report = export(tiny_run, tmp_path / "m.onnx", ExportConfig(last=True))  # weights as trained, not fitted yet
    assert len(conversions) == 1  # converted once, before the fit, which then shifted the converted bias
    trained_on = split_holdout(check_split(tiny_dataset, "train", reference=True), 0.05)[0]
    assert report.level_pairs == len(trained_on.names)
    red, green, blue = report.level
    assert f"{red:+.1f} / {green:+.1f} / {blue:+.1f} grey levels (R / G / B)" in report.summary()
    sketches = face_pairs(trained_on)[0]
    generator, _, _, _ = load_generator(tiny_run, last=True)
    as_trained = _face_offset(generator(sketches, training=False), trained_on)
    exported = _face_offset(run_onnx(tmp_path / "m.onnx", sketches), trained_on)
    generator.get_layer(OUTPUT_LAYER).bias.assign_sub([0.3, 0.3, 0.3])
    FaceLevel(trained_on).fit(generator)  # from anywhere, the fit comes to the exported level
    np.testing.assert_allclose(run_onnx(tmp_path / "m.onnx", sketches), generator(sketches, training=False),
                               atol=5e-3)
    # the faces now within a grey level of the photos' (a residual model starts at its reference, the
    # target's own photos, and may be there as trained; a face drawn whole was several levels off)
    assert np.abs(exported).max() < max(1.0, np.abs(as_trained).max() - 2)

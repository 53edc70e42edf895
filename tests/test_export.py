"""ONNX export of a real (tiny) trained run: parity with TensorFlow, I/O contract, sidecar."""

from __future__ import annotations

import json
import re

import cv2
import numpy as np
import onnx
import pytest

tf = pytest.importorskip("tensorflow")
ort = pytest.importorskip("onnxruntime")

from face2face.errors import Face2FaceError  # noqa: E402
from face2face.geometry import align  # noqa: E402
from face2face.modelfile import ModelInfo, read_sidecar  # noqa: E402
from face2face.pupils import EYES  # noqa: E402
from face2face.shapes import ShapeSpace  # noqa: E402
from face2face.train.export import ExportConfig, export, load_generator, parity_inputs  # noqa: E402
from conftest import TINY_STEPS as STEPS  # noqa: E402


def test_export_parity_contract_and_sidecar(tiny_run, tiny_dataset, tmp_path):
    model = tmp_path / "face.onnx"
    report = export(tiny_run, model)
    assert report.precision == "fp32" and report.parity_images == 8
    assert 0.0 <= report.max_error <= 1e-4
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, inp.shape, inp.type) == ("sketch", [1, 64, 64, 6], "tensor(float)")  # sketch, reference
    assert (out.name, out.shape, out.type) == ("face", [1, 64, 64, 3], "tensor(float)")
    ops = [node.op_type for node in onnx.load(str(model)).graph.node]
    # 64 px: 6 levels; batch norms folded; the one Add puts the correction on the reference
    assert ops.count("ConvTranspose") == 6 and "Mul" not in ops and ops.count("Add") == 1
    # Independent check against TF in inference mode, on real test sketches; deterministic output.
    generator, _, step, _ = load_generator(tiny_run)
    sketches = parity_inputs(tiny_dataset, 3, 64, reference=True)
    expected = generator(sketches, training=False).numpy()
    for sketch, want in zip(sketches, expected):
        got = session.run(["face"], {"sketch": sketch[None]})[0][0]
        np.testing.assert_allclose(got, want, atol=1e-4)
        np.testing.assert_array_equal(got, session.run(["face"], {"sketch": sketch[None]})[0][0])
        assert -1.0 <= got.min() and got.max() <= 1.0

    info = read_sidecar(model)
    raw = json.loads((tmp_path / "face.json").read_text())
    assert set(raw) == set(ModelInfo.__dataclass_fields__)
    assert (info.size, info.ngf, info.steps, step) == (64, 8, STEPS, STEPS)
    assert (info.input_name, info.output_name, info.layout, info.channels) == ("sketch", "face", "NHWC", "RGB")
    assert info.value_range == [-1.0, 1.0] and info.precision == "fp32"
    manifest = json.loads((tiny_dataset / "manifest.json").read_text())
    assert info.context == manifest["options"]["context"]
    points = np.asarray(json.loads((tiny_dataset / "train" / "landmarks.json").read_text())["points"])
    np.testing.assert_allclose(info.template_array(), points.mean(axis=0), atol=1e-3)
    assert info.pupils is manifest["options"]["pupils"] is True
    for pupil, eye_slice in zip(info.template_pupils_array(), EYES):  # the mean gaze, inside the mean eyes
        assert cv2.pointPolygonTest(info.template_array()[eye_slice].reshape(-1, 1, 2), tuple(map(float, pupil)), False) > 0
    shapes = info.shapes()  # the train split's shapes, aligned on the template
    fitted = ShapeSpace.fit(np.stack([align(p, points.mean(axis=0)) for p in points]))
    assert len(shapes.components) == len(fitted.components)
    np.testing.assert_allclose(shapes.deviations, fitted.deviations, atol=1e-3)
    np.testing.assert_allclose(shapes.mean, fitted.mean, atol=1e-3)
    np.testing.assert_allclose(shapes.mean, info.template_array(), atol=0.5)
    assert re.fullmatch(r"[0-9a-f]{64}", info.dataset_fingerprint)
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", info.created)


def test_fp16_export_keeps_float32_io(tiny_run, tmp_path):
    report = export(tiny_run, tmp_path / "half.onnx", ExportConfig(fp16=True))
    assert report.precision == "fp16" and 0.0 < report.max_error < 0.05
    session = ort.InferenceSession(str(tmp_path / "half.onnx"), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].type == "tensor(float)" and session.get_outputs()[0].type == "tensor(float)"
    assert read_sidecar(tmp_path / "half.onnx").precision == "fp16"


def test_failed_parity_leaves_no_model(tiny_run, tmp_path):
    with pytest.raises(Face2FaceError, match="parity"):
        export(tiny_run, tmp_path / "bad.onnx", ExportConfig(tolerance=-1.0))  # impossible bound
    assert list(tmp_path.iterdir()) == []


def test_export_needs_a_trained_run(tmp_path):
    with pytest.raises(Face2FaceError, match="config.json"):
        export(tmp_path, tmp_path / "x.onnx")

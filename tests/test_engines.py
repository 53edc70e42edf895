"""Generator engines on a real exported model: the exact phase split of the decoder, OpenVINO
against onnxruntime, the int8 copy and its calibration, and how the engine is chosen."""

import json
import shutil

import cv2
import numpy as np
import onnx
import pytest

from conftest import IMAGES, copy_reference
from face2face.cli import main
from face2face.errors import Face2FaceError
from face2face.files import file_sha256
from face2face.modelfile import sidecar_path
from face2face.runtime.generator import Generator, choose_engine
from face2face.runtime.openvino_engine import core, cpu_capabilities, int8_path
from face2face.runtime.phases import split_transposed_convolutions
from face2face.train.evaluate import EvaluateConfig, evaluate, psnr
from face2face.train import quantize as quantize_module
from face2face.train.pairs import as_input
from face2face.train.prepare import read_landmarks
from face2face.train.quantize import face_weights, weighted_psnr
from face2face.train.references import farthest_points


def _test_sketches(dataset) -> list[tuple[np.ndarray, np.ndarray]]:
    """(sketch, reference) of every test pair: the generator's whole input."""
    return [(cv2.imread(str(p)), cv2.imread(str(p.parent.parent / "reference" / p.name)))
            for p in sorted((dataset / "test" / "input").glob("*.png"))]


def _psnr_against(generator: Generator, reference: Generator, sketches: list[tuple[np.ndarray, ...]]) -> float:
    """The lowest PSNR (dB) of ``generator``'s outputs against ``reference``'s."""
    return min(psnr(generator(*s) / 255.0, reference(*s) / 255.0) for s in sketches)


@pytest.fixture(scope="module")
def fp32(tiny_model) -> Generator:
    return Generator(tiny_model, provider="cpu")


def test_phase_split_is_the_same_function_on_a_real_model(tiny_model, tiny_dataset):
    original, rewritten = core().read_model(str(tiny_model)), core().read_model(str(tiny_model))
    transposed = [op.get_type_name() for op in original.get_ordered_ops()].count("ConvolutionBackpropData")
    assert transposed == 6  # 64 px: six upsamplings
    assert split_transposed_convolutions(rewritten) == transposed
    assert "ConvolutionBackpropData" not in [op.get_type_name() for op in rewritten.get_ordered_ops()]
    fp32 = {"INFERENCE_PRECISION_HINT": "f32"}
    original, rewritten = (core().compile_model(m, "CPU", fp32) for m in (original, rewritten))
    for sketch in _test_sketches(tiny_dataset):
        x = as_input(sketch)
        a, b = original(x)[0], rewritten(x)[0]
        assert np.abs(a).max() > 0.1  # a real output, not a constant
        assert np.abs(a - b).max() <= 1e-5


def test_openvino_fp32_gives_onnxruntime_s_faces(tiny_model, tiny_dataset, fp32):
    generator = Generator(tiny_model, provider="openvino", precision="fp32")
    assert (generator.provider, generator.precision) == ("OpenVINO CPU", "fp32")
    for sketch in _test_sketches(tiny_dataset):
        assert np.abs(generator(*sketch).astype(int) - fp32(*sketch)).max() <= 1


def test_default_precision_is_bf16_only_where_the_cpu_has_it(tiny_model, tiny_dataset, fp32):
    generator = Generator(tiny_model)
    if "BF16" in cpu_capabilities():
        assert generator.precision == "bf16" and "bf16 skipped" not in generator.choice.message()
        assert _psnr_against(generator, fp32, _test_sketches(tiny_dataset)) >= 40.0
    else:
        assert generator.precision == "fp32" and "bf16 skipped: this CPU has no native bf16" in generator.choice.message()
        with pytest.raises(Face2FaceError, match="--precision bf16: this CPU has no native bf16"):
            Generator(tiny_model, precision="bf16")


def test_int8_copy_is_calibrated_on_the_training_sketches_and_tied_to_its_model(tiny_model, tiny_dataset, fp32,
                                                                                tmp_path, capsys):
    model = tmp_path / "m.onnx"
    shutil.copy(tiny_model, model)
    shutil.copy(sidecar_path(tiny_model), sidecar_path(model))
    copy_reference(tiny_model, tmp_path)
    with pytest.raises(Face2FaceError, match=r"no int8 copy .*face2face quantize"):
        Generator(model, precision="int8")
    assert main(["quantize", str(model), str(tiny_dataset), "--sketches", "16"]) == 0
    out = capsys.readouterr().out
    assert "calibrated on 16 training sketches" in out and "on 8 held-out sketches" in out
    assert out.count("\n") == 3  # the summary alone: NNCF's progress bar is not output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.int8.bin", "m.int8.xml", "m.json", "m.onnx",
                                                          "tiny.reference"]
    generator = Generator(model, precision="int8")
    assert (generator.provider, generator.precision) == ("OpenVINO CPU", "int8")
    worst = _psnr_against(generator, fp32, _test_sketches(tiny_dataset))
    assert worst >= 30.0
    report = evaluate(model, tiny_dataset, EvaluateConfig(precision="int8"))
    assert report["precision"] == "int8" and report["psnr_vs_fp32_min"] == pytest.approx(worst, abs=0.01)
    guard = float(out.split("whole crop ")[1].split(" min")[0])  # what quantize measured and recorded
    assert guard == pytest.approx(worst, abs=0.05)
    face = float(out.split("face region ")[1].split(" min")[0])
    names, points, _ = read_landmarks(tiny_dataset / "test")
    weights = [face_weights(p, generator.info.size) for p in points]  # the frame layout's paste weights
    assert all(0.0 < w.mean() < 0.9 and w.max() == pytest.approx(1.0) for w in weights)
    faces = [weighted_psnr(generator(*s), fp32(*s), w) for s, w in zip(_test_sketches(tiny_dataset), weights)]
    assert face == pytest.approx(min(faces), abs=0.05)
    float_precision = "fp32" if "BF16" not in cpu_capabilities() else "bf16"
    for layout, figure, region in (("face", guard, "the whole crop"), ("frame", face, "the face the frame layout shows")):
        auto = Generator(model, layout=layout)  # the copy runs by default where it held the 40 dB guard over what shows
        assert auto.precision == ("int8" if figure >= 40.0 else float_precision)
        said = f"its copy is {figure:.1f} dB from fp32 at worst on {region}"
        assert said in auto.choice.message()  # the start-up line names the figure that decided

    proto = onnx.load(str(model))  # the model changes (e.g. exported again): its int8 copy is stale
    proto.graph.initializer[0].raw_data = bytes(len(proto.graph.initializer[0].raw_data))
    onnx.save(proto, str(model))
    info = json.loads(sidecar_path(model).read_text())
    sidecar_path(model).write_text(json.dumps({**info, "model_sha256": file_sha256(model)}))  # as export writes it
    with pytest.raises(Face2FaceError, match="calibrated for another version .* again"):
        Generator(model, precision="int8")
    assert int8_path(model).is_file()

    int8_path(model).write_text('<?xml version="1.0"?><net name="cut"')  # a copy cut short: not an IR
    with pytest.raises(Face2FaceError, match=r"m\.int8\.xml: unreadable int8 copy .*quantize"):
        Generator(model, precision="int8")
    assert "int8 skipped: " in Generator(model).choice.message()  # auto runs without it, one line


def test_the_face_region_figure_weighs_what_the_frame_layout_shows():
    photo = cv2.imread(str(IMAGES / "lp_d19.jpg"))[:256, :256]
    weights = np.zeros((256, 256), np.float32)
    weights[64:192, 64:192] = 1.0  # a quarter of the crop shows
    changed = photo.copy()
    changed[:32] = np.clip(changed[:32].astype(int) + 40, 0, 255)  # a planted change outside it
    assert weighted_psnr(photo, changed, weights) == pytest.approx(10 * np.log10(255**2 / 1e-12))  # unseen
    assert weighted_psnr(photo, changed) < 30.0
    shifted = photo.astype(int)
    shifted[64:192, 64:192] += 4  # inside: 4 grey levels everywhere, a quarter of the crop
    shifted = np.clip(shifted, 0, 255).astype(np.uint8)
    inside = (shifted.astype(int) - photo)[64:192, 64:192]
    assert weighted_psnr(photo, shifted, weights) == pytest.approx(10 * np.log10(255**2 / np.mean(inside**2)))
    assert weighted_psnr(photo, shifted) == pytest.approx(weighted_psnr(photo, shifted, weights) + 10 * np.log10(4))


def test_calibration_takes_the_sketches_that_span_the_range():
    line = np.arange(11.0)[:, None]  # the mean first, then the ends, then between
    assert farthest_points(line, 3) == [5, 0, 10]
    assert farthest_points(line, 5) == [5, 0, 10, 2, 7]
    assert sorted(farthest_points(line, 20)) == list(range(11))


def test_a_copy_under_its_guard_keeps_the_layers_that_help_in_fp32(tiny_model, tiny_dataset, tmp_path, monkeypatch):
    model = tmp_path / "m.onnx"
    shutil.copy(tiny_model, model)
    shutil.copy(sidecar_path(tiny_model), sidecar_path(model))
    copy_reference(tiny_model, tmp_path)
    plain = quantize_module.quantize(model, tiny_dataset, 16)
    assert plain.fp32_layers == []  # it held the guard: every layer in int8
    monkeypatch.setattr(quantize_module, "GUARD_DB", 150.0)  # a guard no int8 copy holds
    monkeypatch.setattr(quantize_module, "KEEP_GAIN_DB", -np.inf)  # and every layer tried counts as a help
    monkeypatch.setattr(quantize_module, "MAX_KEPT", 2)
    kept = quantize_module.quantize(model, tiny_dataset, 16)
    assert kept.fp32_layers == ["layer 1 of 12 (input)", "layer 12 of 12 (output)"]  # the output layer, then the input's
    ir = core().read_model(str(int8_path(model)))
    assert str(ir.get_rt_info(quantize_module.KEPT_KEY).astype(str)) == "; ".join(kept.fp32_layers)
    convolutions = [op for op in ir.get_ordered_ops() if op.get_type_name() == "Convolution"]
    float_weights = [op for op in convolutions if op.input_value(1).get_node().get_type_name() == "Constant"]  # not int8
    assert len(float_weights) == 1 + 4  # the input layer's convolution and the output layer's four phases
    assert float_weights[0] is convolutions[0] and float_weights[1:] == convolutions[-4:]
    generator = Generator(model, precision="int8")
    faces = [weighted_psnr(generator(*s), Generator(model, provider="cpu")(*s)) for s in _test_sketches(tiny_dataset)]
    assert min(faces) == pytest.approx(kept.crop.min, abs=0.05)  # the figures recorded are the copy's


def test_engine_choice_says_why_faster_engines_were_skipped():
    no_gpu = "no NVIDIA GPU"
    no_copy = "no calibrated copy (`face2face quantize`)"
    auto = choose_engine("auto", "auto", no_gpu, "", native_bf16=False, int8_reason=no_copy)
    assert (auto.engine, auto.precision) == ("openvino", "fp32")
    assert auto.message() == ("generator runs on OpenVINO CPU, fp32 (CUDA skipped: no NVIDIA GPU; "
                              "bf16 skipped: this CPU has no native bf16 (AMX or AVX-512 BF16); "
                              "int8 skipped: no calibrated copy (`face2face quantize`))")
    amx = choose_engine("auto", "auto", no_gpu, "", native_bf16=True, int8_reason="no calibrated copy")
    assert (amx.engine, amx.precision) == ("openvino", "bf16") and "int8 skipped: no calibrated copy" in amx.message()
    assert choose_engine("auto", "auto", no_gpu, "", native_bf16=True, int8_reason="").precision == "int8"
    assert choose_engine("auto", "auto", "", "", native_bf16=True, int8_reason="").engine == "cuda"
    assert choose_engine("auto", "int8", "", "", False, "").engine == "openvino"  # int8 is OpenVINO's
    fallback = choose_engine("auto", "auto", no_gpu, "OpenVINO is not installed", False, "")
    assert (fallback.engine, fallback.precision) == ("cpu", "fp32") and "OpenVINO skipped" in fallback.message()
    assert choose_engine("cpu", "auto", no_gpu, "", True, "", file_precision="fp16").precision == "fp16"
    for request, match in [(("cuda", "auto", no_gpu, ""), "--provider cuda: CUDA is not usable: no NVIDIA GPU"),
                           (("cpu", "int8", no_gpu, ""), "runs on OpenVINO only"),
                           (("openvino", "auto", no_gpu, "OpenVINO is not installed"), "not installed"),
                           (("auto", "bf16", no_gpu, ""), "no native bf16")]:
        with pytest.raises(Face2FaceError, match=match):
            choose_engine(*request, native_bf16=False, int8_reason=no_copy)

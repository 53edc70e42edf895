"""`evaluate` on real data with onnxruntime: metrics, JSON fields, grid; AKD, sharpness, detail
match and checkerboard on known outputs."""

from __future__ import annotations

import json

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from face2face.errors import Face2FaceError
from face2face.modelfile import ModelInfo, write_sidecar
from face2face.runtime.background import face_outline
from face2face.train.evaluate import FullFrames, detail_match, detail_responses, evaluate, fine_detail, psnr, sharpness, ssim
from face2face.train.prepare import PrepareConfig, prepare

from conftest import VIDEOS

FIELDS = {"model", "data", "split", "detector", "model_steps", "model_size", "model_ngf", "provider", "precision",
          "psnr_vs_fp32", "psnr_vs_fp32_min", "pairs",
          "l1", "psnr", "ssim", "face_l1", "face_ssim", "sharpness", "detail_match", "checkerboard", "checkerboard_real",
          "frame_psnr", "frame_ssim", "frame_sharpness", "frame_detail_match", "frame_pairs", "face_rate", "faces_found", "photo_faces_found", "akd", "akd_pairs",
          "identity", "pupil_error_px", "pupil_error_p90_px", "pupil_eyes", "model_pupils", "ssim_mode", "seconds",
          "per_pair", "config", "peak_memory_gb"}


def test_ssim_and_psnr_behave():
    rng = np.random.default_rng(0)
    a = cv2.GaussianBlur(rng.uniform(0, 1, (64, 64, 3)), (7, 7), 2)
    noisy = np.clip(a + rng.normal(0, 0.05, a.shape), 0, 1)
    assert ssim(a, a) == pytest.approx(1.0)
    assert 0.0 < ssim(a, noisy) < 0.99 and ssim(a, noisy) == pytest.approx(ssim(noisy, a))
    assert psnr(a, noisy) == pytest.approx(10 * np.log10(1 / np.mean((a - noisy) ** 2)))
    assert ssim(a, np.clip(a + rng.normal(0, 0.2, a.shape), 0, 1)) < ssim(a, noisy)


def test_evaluate_a_trained_model(tiny_model, tiny_dataset, tmp_path, analyzer):
    report = evaluate(tiny_model, tiny_dataset, json_path=tmp_path / "r.json", grid_path=tmp_path / "g.png",
                      analyzer=analyzer)
    saved = json.loads((tmp_path / "r.json").read_text())
    assert set(saved) == FIELDS and saved["pairs"] == report["pairs"] == 8
    assert 0.0 < saved["l1"] < 0.5 and 5.0 < saved["psnr"] < 40.0 and -1.0 < saved["ssim"] < 1.0
    assert 0.0 < saved["face_l1"] < 0.5 and -1.0 < saved["face_ssim"] < 1.0
    assert 0.0 < saved["sharpness"] < 2.0 and saved["checkerboard"] > 0.0 and saved["checkerboard_real"] > 0.0
    assert 0.0 < saved["frame_sharpness"] < 2.0
    assert -1.0 <= saved["detail_match"] < 1.0 and -1.0 <= saved["frame_detail_match"] < 1.0
    assert all(-1.0 <= p["detail_match"] <= 1.0 for p in saved["per_pair"])
    assert 0.0 <= saved["face_rate"] <= 1.0 and saved["photo_faces_found"] >= 6
    assert saved["akd"] is None or saved["akd"] >= 0.0
    assert len(saved["per_pair"]) == 8 and saved["model_steps"] > 0
    assert saved["provider"] == "OpenVINO CPU"  # the default engine on a machine without CUDA
    assert saved["psnr_vs_fp32_min"] >= 40.0  # checked against onnxruntime fp32, frame by frame
    assert saved["frame_pairs"] == 8 and saved["frame_psnr"] > saved["psnr"]  # the face in its own frame
    grid = cv2.imread(str(tmp_path / "g.png"))
    assert grid.shape == (8 * 64, 4 * 64, 3)  # sketch | reference | output | photo
    first = sorted((tiny_dataset / "test" / "reference").glob("*.png"))[0]
    np.testing.assert_array_equal(grid[:64, 64:128], cv2.imread(str(first)))  # the reference live builds


def _constant_model(path, image_bgr: np.ndarray) -> None:
    """An ONNX 'generator' that always returns one real photo (sketch * 0 + photo); its sidecar says ngf 1."""
    photo = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB).astype(np.float32)[None] / 127.5 - 1.0
    size = photo.shape[1]
    graph = helper.make_graph(
        [helper.make_node("Mul", ["sketch", "zero"], ["blank"]), helper.make_node("Add", ["blank", "photo"], ["face"])],
        "constant", [helper.make_tensor_value_info("sketch", TensorProto.FLOAT, [1, size, size, 3])],
        [helper.make_tensor_value_info("face", TensorProto.FLOAT, [1, size, size, 3])],
        [numpy_helper.from_array(np.zeros((1,), np.float32), "zero"), numpy_helper.from_array(photo, "photo")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    write_sidecar(path, ModelInfo(size=size, ngf=1, steps=0, template=np.zeros((68, 2)).tolist()))


def test_akd_is_zero_on_the_real_photo_and_grows_with_misplacement(tiny_dataset, tmp_path, analyzer):
    names = sorted(p.stem for p in (tiny_dataset / "test" / "target").glob("*.png"))
    first = cv2.imread(str(tiny_dataset / "test" / "target" / f"{names[0]}.png"))
    _constant_model(tmp_path / "const.onnx", first)
    report = evaluate(tmp_path / "const.onnx", tiny_dataset, analyzer=analyzer)
    pair = report["per_pair"][0]
    assert pair["face_found"] and pair["l1"] == pytest.approx(0.0, abs=1e-3) and pair["akd"] == pytest.approx(0.0, abs=1e-3)
    assert pair["identity"] == pytest.approx(0.0, abs=1e-3)  # the photo itself: the same person
    assert max(p["identity"] for p in report["per_pair"] if p["identity"] is not None) > pair["identity"]
    assert report["face_rate"] == 1.0 and report["akd_pairs"] == report["photo_faces_found"]
    assert pair["face_l1"] == pytest.approx(0.0, abs=1e-3) and pair["face_ssim"] == pytest.approx(1.0, abs=1e-3)
    assert pair["sharpness"] == pytest.approx(1.0, abs=1e-3) and pair["detail_match"] == pytest.approx(1.0, abs=1e-3)
    assert pair["checkerboard"] == pytest.approx(pair["checkerboard_real"], abs=1e-3)
    assert pair["frame_sharpness"] < 0.9  # a 64 px crop enlarged into the frame is softer than the frame
    assert pair["frame_detail_match"] < 0.9  # and shows less of the frame's own detail
    shifted = np.roll(first, 6, axis=1)  # the same face 6 px to the right
    _constant_model(tmp_path / "shift.onnx", shifted)
    moved = evaluate(tmp_path / "shift.onnx", tiny_dataset, analyzer=analyzer)["per_pair"][0]
    assert moved["akd"] is not None and 3.0 < moved["akd"] < 9.0


def test_face_figures_see_only_the_face(tiny_dataset, tmp_path, analyzer):
    folder = tiny_dataset / "test"
    names = sorted(p.stem for p in (folder / "target").glob("*.png"))
    photo = cv2.imread(str(folder / "target" / f"{names[0]}.png"))
    nose = json.loads((folder / "landmarks.json").read_text())["points"][0][30]  # the nose tip, crop px
    corner = photo.copy()
    corner[-12:, :12] = 0  # the bottom-left corner: shoulder or background, never the face
    _constant_model(tmp_path / "corner.onnx", corner)
    pair = evaluate(tmp_path / "corner.onnx", tiny_dataset, analyzer=analyzer)["per_pair"][0]
    assert pair["l1"] > 0.005 and pair["ssim"] < 0.99
    assert pair["face_l1"] == pytest.approx(0.0, abs=1e-3) and pair["face_ssim"] == pytest.approx(1.0, abs=1e-3)
    x, y = (int(round(v)) for v in nose)
    on_nose = photo.copy()
    on_nose[y - 3:y + 3, x - 3:x + 3] = 0  # a black square on the nose tip
    _constant_model(tmp_path / "nose.onnx", on_nose)
    pair = evaluate(tmp_path / "nose.onnx", tiny_dataset, analyzer=analyzer)["per_pair"][0]
    assert pair["face_l1"] > 2 * pair["l1"] > 0.0 and pair["face_ssim"] < pair["ssim"] < 1.0


@pytest.fixture(scope="module")
def full_size(tmp_path_factory):
    """A full-size (256 px) dataset of 10 real pairs from lp_d19: irises and fine detail are a few
    px wide, too small at 64."""
    data = tmp_path_factory.mktemp("full") / "d19"
    prepare([str(VIDEOS / "lp_d19.mp4")], data, PrepareConfig(max_pairs=10, test_fraction=0.3))
    return data


def test_sharpness_falls_with_blur_and_leaves_the_checkerboard_apart(full_size):
    folder = full_size / "test"
    names, points = (json.loads((folder / "landmarks.json").read_text())[key] for key in ("names", "points"))
    for name, landmarks in zip(names, points):
        photo = cv2.imread(str(folder / "target" / f"{name}.png"))
        outline = face_outline(np.asarray(landmarks))
        detail, checker = fine_detail(photo, outline)
        assert detail > 0.0 and sharpness(detail, detail) == 1.0  # the photo itself
        blurred = fine_detail(cv2.GaussianBlur(photo, (0, 0), 1.5), outline)
        assert sharpness(blurred[0], detail) < 0.7 and blurred[1] < checker
        y, x = np.mgrid[: photo.shape[0], : photo.shape[1]]
        plant = lambda pattern: fine_detail(np.clip(photo + 3.0 * pattern[..., None], 0, 255).astype(np.uint8), outline)  # noqa: E731
        board = plant((-1.0) ** (x + y))  # a 2-px checkerboard, +-3 grey levels: RMS 3
        assert board[1] == pytest.approx(np.hypot(3.0, checker), abs=0.3) and board[1] > 4 * checker
        assert sharpness(board[0], detail) == pytest.approx(1.0, abs=0.01)  # the band-pass leaves it out
        for stripes in (plant((-1.0) ** x), plant((-1.0) ** y)):  # the 2-px period along one axis
            assert sharpness(stripes[0], detail) == pytest.approx(1.0, abs=0.01)
            assert stripes[1] == pytest.approx(checker, abs=0.01)  # not a checkerboard
    with pytest.raises(Face2FaceError, match="too small"):
        fine_detail(photo, np.array([[100, 100], [104, 100], [102, 104]], np.float32))


def test_detail_match_rewards_the_photos_detail_not_invented_texture(full_size):
    folder = full_size / "test"
    names, points = (json.loads((folder / "landmarks.json").read_text())[key] for key in ("names", "points"))
    rng = np.random.default_rng(0)
    for name, landmarks in zip(names, points):
        photo = cv2.imread(str(folder / "target" / f"{name}.png"))
        outline = face_outline(np.asarray(landmarks))
        real = detail_responses(photo, outline)
        score = lambda image: (sharpness(detail_responses(image, outline).amplitude, real.amplitude),  # noqa: E731
                               detail_match(detail_responses(image, outline), real))
        assert score(photo) == (1.0, 1.0)  # the photo itself
        blur_sharpness, blur_match = score(cv2.GaussianBlur(photo, (0, 0), 1.5))
        assert blur_match < 0.8 and blur_sharpness < 0.7
        # invented texture: blotches a few px across (grey noise, sigma 32 blurred by 1.5 px: about 6
        # grey levels RMS), which the band-pass passes as readily as real detail
        texture = cv2.GaussianBlur(rng.normal(0.0, 32.0, photo.shape[:2]), (0, 0), 1.5)[..., None]
        add = lambda image: np.clip(image + texture, 0, 255).astype(np.uint8)  # noqa: E731
        textured_sharpness, textured_match = score(add(photo))
        assert textured_sharpness > 1.1 and textured_match < 0.9  # sharper by the energy, yet less of the photo
        smeared_sharpness, smeared_match = score(add(cv2.GaussianBlur(photo, (0, 0), 1.5)))
        assert smeared_sharpness > blur_sharpness and smeared_match < blur_match  # texture does not make up for it
        flat = np.full_like(photo, int(photo.mean()))
        assert score(add(flat))[0] > 0.5 and abs(score(add(flat))[1]) < 0.1  # texture alone: none of the detail
        assert score(flat) == pytest.approx((0.0, 0.0), abs=1e-3)  # no detail at all
        y, x = np.mgrid[: photo.shape[0], : photo.shape[1]]
        for pattern in ((-1.0) ** (x + y), (-1.0) ** x, (-1.0) ** y):  # a 2-px checkerboard and stripes, +-3 levels
            assert score(np.clip(photo + 3.0 * pattern[..., None], 0, 255).astype(np.uint8))[1] == pytest.approx(1.0, abs=0.01)
    assert detail_match(real, real) == 1.0
    with pytest.raises(ValueError, match="different pixels"):
        detail_match(detail_responses(photo, outline + (8, 0)), real)  # the outline moved: other pixels


def test_pupil_error_is_zero_on_the_real_photo_and_follows_a_shifted_iris(full_size, tmp_path, analyzer):
    data = full_size  # irises are a few px wide at 64
    names = sorted(p.stem for p in (data / "test" / "target").glob("*.png"))
    first = cv2.imread(str(data / "test" / "target" / f"{names[0]}.png"))
    _constant_model(tmp_path / "const.onnx", first)
    report = evaluate(tmp_path / "const.onnx", data, analyzer=analyzer)
    errors = report["per_pair"][0]["pupil_errors"]
    assert [e for e in errors if e is not None] == [0.0, 0.0]  # both pupils, exactly where the photo has them
    assert report["pupil_eyes"] >= 4 and report["pupil_error_p90_px"] >= report["pupil_error_px"] > 0.0
    _constant_model(tmp_path / "shift.onnx", np.roll(first, 4, axis=1))  # the eyes 4 px to the right
    moved = evaluate(tmp_path / "shift.onnx", data, analyzer=analyzer)["per_pair"][0]["pupil_errors"]
    assert all(e is not None and 2.0 < e < 6.0 for e in moved)


def test_a_real_crop_pasted_into_its_own_frame_keeps_the_frame_s_detail(full_size):
    folder = full_size / "test"
    names, points = (json.loads((folder / "landmarks.json").read_text())[key] for key in ("names", "points"))
    frames = FullFrames(full_size, folder)
    scores = [frames.score(name, cv2.imread(str(folder / "target" / f"{name}.png")), np.asarray(landmarks))
              for name, landmarks in zip(names, points)]
    frames.close()
    # The 256 px crop is enlarged about 2.5x: bicubic keeps most of the frame's fine detail (bilinear: about 0.77).
    for frame_psnr, _, frame_sharpness, frame_match in scores:
        assert frame_psnr > 38.0 and frame_sharpness > 0.85 and frame_match > 0.75

"""The target's own pixels for the generator: the piecewise-affine warp, the choice and blend of
crops, the rules that keep training from copying its answer, and train/live agreement."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import VIDEOS
from face2face.errors import Face2FaceError
from face2face.modelfile import read_sidecar
from face2face.reference import EXCLUDE_SECONDS, PiecewiseAffine, ReferenceBank, load_bank, save_bank, triangulation
from face2face.runtime.background import face_outline
from face2face.train.evaluate import outline_mask
from face2face.train.prepare import read_landmarks


def _real_crop(folder: Path, index: int = 0) -> tuple[np.ndarray, np.ndarray]:
    names, points, _ = read_landmarks(folder)
    return cv2.imread(str(folder / "target" / f"{names[index]}.png")), points[index]


def test_warp_onto_its_own_landmarks_is_the_photo(tiny_dataset):
    photo, points = _real_crop(tiny_dataset / "train")
    warper = PiecewiseAffine(triangulation(points, photo.shape[0]), photo.shape[0])
    warper.set_destination(points)
    warped = warper.warp(photo, warper.triangles_of(points))
    assert np.abs(warped.astype(int) - photo.astype(int)).max() <= 1  # interpolation rounding only


def test_a_planted_shift_comes_back(tiny_dataset):
    """Landmarks moved by (3, 2) px, the border held: inside the face the warp is that shift."""
    photo, points = _real_crop(tiny_dataset / "train")
    size = photo.shape[0]
    warper = PiecewiseAffine(triangulation(points, size), size)
    warper.set_destination(points + np.float32([3, 2]))
    warped = warper.warp(photo, warper.triangles_of(points))
    shifted = cv2.warpAffine(photo, np.float64([[1, 0, 3], [0, 1, 2]]), (size, size), borderMode=cv2.BORDER_REPLICATE)
    inside = outline_mask(face_outline(points + np.float32([3, 2])), (size, size), inset=2)
    assert inside.sum() > 500
    assert np.abs(warped.astype(int) - shifted.astype(int))[inside].mean() < 1.0
    assert np.abs(photo.astype(int) - shifted.astype(int))[inside].mean() > 3.0  # the shift is visible


def test_the_maps_are_exact_inside_the_face(tiny_dataset):
    """Landmarks scaled by 1.1 about the face's centre: inside the face every pixel reads the
    photo at the exact inverse of that scaling (the coarse maps' enlargement loses nothing)."""
    photo, points = _real_crop(tiny_dataset / "train")
    size = photo.shape[0]
    centre = points.mean(axis=0)
    moved = (points - centre) * 1.1 + centre
    warper = PiecewiseAffine(triangulation(points, size), size)
    warper.set_destination(moved)
    map_x, map_y = warper.maps(warper.triangles_of(points))
    ys, xs = np.mgrid[:size, :size].astype(np.float64)
    # around the nose, where every triangle has landmarks for corners (none of the crop's fixed border)
    inside = outline_mask(face_outline(moved), (size, size), inset=2) & (np.hypot(xs - centre[0], ys - centre[1]) < size / 6)
    assert inside.sum() > 300
    assert np.abs(map_x - ((xs - centre[0]) / 1.1 + centre[0]))[inside].max() < 0.01
    assert np.abs(map_y - ((ys - centre[1]) / 1.1 + centre[1]))[inside].max() < 0.01


def _bank(data: Path, count: int = 6) -> ReferenceBank:
    names, points, _ = read_landmarks(data / "train")
    picks = np.linspace(0, len(names) - 1, count).round().astype(int)
    images = np.stack([cv2.imread(str(data / "train" / "target" / f"{names[i]}.png")) for i in picks])
    return ReferenceBank(images, points[picks], [names[i] for i in picks], points.mean(axis=0))


def test_nearest_takes_the_crop_of_that_shape_and_blends_continuously(tiny_dataset):
    bank = _bank(tiny_dataset)
    take, weights = bank.nearest(bank.points[3])
    assert take[0] == 3 and weights[0] > weights[1] and weights.sum() == pytest.approx(1.0)
    allowed = np.ones(len(bank), bool)
    allowed[3] = False
    assert 3 not in bank.nearest(bank.points[3], allowed)[0]
    with pytest.raises(Face2FaceError, match="excluded"):
        bank.nearest(bank.points[3], np.zeros(len(bank), bool))
    # From one crop's shape to another's: each crop's weight moves a little at each small step (no
    # jump when the nearest crop changes), and the blend ends on the other crop.
    previous = None
    for t in np.linspace(0.0, 1.0, 201):
        take, weights = bank.nearest((1 - t) * bank.points[0] + t * bank.points[5])
        dense = np.zeros(len(bank))
        dense[take] = weights
        if previous is not None:
            assert np.abs(dense - previous).max() < 0.1
        previous = dense
    assert take[0] == 5


def test_the_blend_in_the_heavier_crop_s_geometry_is_each_crop_warped_on_its_own(tiny_dataset):
    """``build`` warps the other crop onto the heavier one's landmarks, blends there and warps once:
    the same reference, to interpolation's rounding, as the two crops warped apart and blended; and
    what it keeps between calls changes nothing."""
    bank = _bank(tiny_dataset)
    points = 0.6 * bank.points[2] + 0.4 * bank.points[3]
    (a, b), (wa, wb) = bank.nearest(points)
    apart = wa * bank.warped(a, points).astype(float) + wb * bank.warped(b, points).astype(float)
    built = bank.build(points).copy()
    inside = outline_mask(face_outline(points), built.shape[:2], inset=2)
    assert wb > 0.2 and np.abs(bank.warped(a, points).astype(int) - bank.warped(b, points))[inside].mean() > 1.5
    assert np.abs(built - apart)[inside].mean() < 0.6  # the heavier crop alone: about 1
    bank.build(bank.points[5])  # another pair in between
    np.testing.assert_array_equal(bank.build(points), built)


def test_in_a_stream_the_blend_follows_each_frame_with_its_time_constant():
    from face2face.reference import RESTART_SECONDS, STEADY_SECONDS, SteadyBlend

    steady = SteadyBlend(6)
    take, weights = steady(np.array([0, 1]), np.float32([0.75, 0.25]), 10.0)
    assert list(take) == [0, 1] and np.allclose(weights, [0.75, 0.25])  # the first frame: its own blend
    take, weights = steady(np.array([0, 1]), np.float32([0.75, 0.25]), 10.0 + STEADY_SECONDS / 5)
    assert list(take) == [0, 1] and np.allclose(weights, [0.75, 0.25])  # a still face: unchanged
    # the face jumps to other crops' shape: one time constant later, 1 - 1/e of the way there
    take, weights = steady(np.array([4, 5]), np.float32([1.0, 0.0]), 10.0 + 6 * STEADY_SECONDS / 5)
    share = 1 - np.exp(-1)
    assert list(take) == [4, 0] and np.allclose(weights, np.float32([share, 0.75 / np.e]) / (share + 0.75 / np.e))
    take, weights = steady(np.array([2, 3]), np.float32([0.6, 0.4]), 20.0)  # the face lost a while: restart
    assert 20.0 - 10.0 > RESTART_SECONDS and list(take) == [2, 3] and np.allclose(weights, [0.6, 0.4])


def test_bank_round_trip(tiny_dataset, tmp_path):
    bank = _bank(tiny_dataset)
    save_bank(bank, tmp_path / "bank")
    again = load_bank(tmp_path / "bank")
    assert again.names == bank.names
    np.testing.assert_array_equal(again.images, bank.images)
    np.testing.assert_array_equal(again.build(bank.points[1]), bank.build(bank.points[1]))
    (tmp_path / "bank" / f"{bank.names[2]}.png").unlink()
    with pytest.raises(Face2FaceError, match="missing or unreadable reference crop"):
        load_bank(tmp_path / "bank")


@pytest.fixture(scope="module")
def long_dataset(tmp_path_factory) -> Path:
    """lp_d19 at 64 px, every 3rd frame: 8 s of video, so the one-second rules bite."""
    from face2face.train.prepare import PrepareConfig, prepare
    from face2face.train.references import ensure_references

    out = tmp_path_factory.mktemp("data") / "d19_long"
    prepare([str(VIDEOS / "lp_d19.mp4")], out, PrepareConfig(size=64, every=3))
    ensure_references(out)
    return out


def test_no_pair_copies_its_own_photo_or_its_neighbours(long_dataset):
    from face2face.train.references import BANK_FOLDER, allowed_for, frame_of

    bank = load_bank(long_dataset / BANK_FOLDER)
    fps = json.loads((long_dataset / "manifest.json").read_text())["sources"][0]["fps"]
    test_names, test_points, _ = read_landmarks(long_dataset / "test")
    first_test = min(frame_of(n)[1] for n in test_names)
    bank_frames = [frame_of(n)[1] for n in bank.names]
    train_names, train_points, _ = read_landmarks(long_dataset / "train")
    assert set(bank.names) <= set(train_names)  # test pairs take references only from the train split
    assert max(bank_frames) < first_test - EXCLUDE_SECONDS * fps  # nor the second before the split
    checked = 0
    for i in range(0, len(train_names), 5):
        allowed = allowed_for(bank, train_names[i], [fps])
        frame = frame_of(train_names[i])[1]
        assert all(abs(f - frame) >= EXCLUDE_SECONDS * fps for f, ok in zip(bank_frames, allowed) if ok)
        written = cv2.imread(str(long_dataset / "train" / "reference" / f"{train_names[i]}.png"))
        np.testing.assert_array_equal(written, bank.build(train_points[i], allowed=allowed))
        checked += 1
    assert checked >= 10
    # A test pair's reference is what live builds for the same landmarks from the whole bank.
    written = cv2.imread(str(long_dataset / "test" / "reference" / f"{test_names[3]}.png"))
    np.testing.assert_array_equal(written, bank.build(test_points[3]))


def test_a_swapped_reference_shows_another_crop_s_parts_and_never_a_neighbour_s(long_dataset):
    """``--swap-parts``: each train pair's swapped reference is its reference outside the mouth and
    eyes and an allowed crop, warped onto its landmarks, inside them; the same crop every time."""
    from face2face.train.pairs import SWAP_FOLDER
    from face2face.train.references import BANK_FOLDER, allowed_for, ensure_swaps, frame_of, parts_mask, swap_crop

    ensure_swaps(long_dataset)
    bank = load_bank(long_dataset / BANK_FOLDER)
    fps = [json.loads((long_dataset / "manifest.json").read_text())["sources"][0]["fps"]]
    names, points, _ = read_landmarks(long_dataset / "train")
    crops, changed = set(), 0
    for i in range(0, len(names), 5):
        crop = swap_crop(bank, names[i], fps)
        assert crop == swap_crop(bank, names[i], fps) and allowed_for(bank, names[i], fps)[crop]
        assert abs(frame_of(bank.names[crop])[1] - frame_of(names[i])[1]) >= EXCLUDE_SECONDS * fps[0]
        crops.add(crop)
        swapped = cv2.imread(str(long_dataset / "train" / SWAP_FOLDER / f"{names[i]}.png")).astype(int)
        reference = cv2.imread(str(long_dataset / "train" / "reference" / f"{names[i]}.png")).astype(int)
        mask = parts_mask(points[i], bank.size)
        other = bank.warped(crop, points[i]).astype(int)
        assert np.abs(swapped - (reference * (1 - mask) + other * mask)).max() <= 1  # the other crop's parts, feathered
        assert np.abs(swapped - reference)[mask[..., 0] == 0].max() == 0  # around them: its own reference
        assert 0.02 < (mask > 0.5).mean() < 0.25  # the mouth and the eyes, not the face
        changed += np.abs(swapped - reference)[mask[..., 0] > 0.5].mean() > 2
    assert len(crops) > 3 and changed > len(range(0, len(names), 5)) // 2  # drawn, not one crop for all


def test_training_takes_the_swapped_reference_at_its_rate_and_nothing_else_changes(long_dataset):
    from face2face.train.data import make_dataset
    from face2face.train.pairs import check_split
    from face2face.train.references import ensure_swaps

    ensure_swaps(long_dataset)
    split = check_split(long_dataset, "train", reference=True)
    count = 60
    plain = list(make_dataset(split, 1, True, seed=3).take(count))
    swapped = list(make_dataset(split, 1, True, seed=3, swap=0.5).take(count))
    took = []
    for (a, photo_a), (b, photo_b) in zip(plain, swapped):
        np.testing.assert_array_equal(photo_a, photo_b)  # the same pair, jittered the same way
        np.testing.assert_array_equal(a[..., :3], b[..., :3])  # the same sketch
        took.append(not np.array_equal(a[..., 3:], b[..., 3:]))
    assert 0.3 * count < sum(took) < 0.7 * count  # about half of the references swapped
    again = list(make_dataset(split, 1, True, seed=3, swap=0.5).take(count))
    assert all(np.array_equal(x[0], y[0]) for x, y in zip(swapped, again))  # seeded
    evaluated = next(iter(make_dataset(split, 1, False, swap=0.5)))[0]
    np.testing.assert_array_equal(evaluated, next(iter(make_dataset(split, 1, False)))[0])  # training only


def test_a_stream_steadies_the_blend_and_training_s_reference_is_the_frame_s_own(long_dataset):
    from face2face.reference import SteadyBlend
    from face2face.train.references import BANK_FOLDER

    bank = load_bank(long_dataset / BANK_FOLDER)
    names, points, _ = read_landmarks(long_dataset / "test")
    first_take = set(bank.nearest(points[0])[0])
    other = next(i for i in range(len(names)) if not first_take & set(bank.nearest(points[i])[0]))
    own = [bank.build(points[i]) for i in (0, other)]
    steady = SteadyBlend(len(bank))
    np.testing.assert_array_equal(bank.build(points[0], steady=steady, t=0.0), own[0])  # the first frame: its own
    second = bank.build(points[other], steady=steady, t=1 / 30)
    assert np.abs(second.astype(int) - own[1]).mean() > 2  # the next: still mostly the first frame's crops
    np.testing.assert_array_equal(bank.build(points[other]), own[1])  # training's and evaluate's: the frame's own


def test_the_reference_helps(long_dataset):
    """Against the photo, inside the face: the warped nearest crops beat the bank's most typical
    crop warped the same way, on every second test pair."""
    from face2face.train.evaluate import face_figures, ssim_map
    from face2face.train.references import BANK_FOLDER

    bank = load_bank(long_dataset / BANK_FOLDER)
    names, points, _ = read_landmarks(long_dataset / "test")
    nearest_l1, one_l1 = [], []
    typical = int(np.argmin(((bank.shapes - bank.shapes.mean(axis=0)) ** 2).sum(axis=1)))
    for i in range(0, len(names), 2):
        photo = cv2.imread(str(long_dataset / "test" / "target" / f"{names[i]}.png")) / 255.0
        mask = outline_mask(face_outline(points[i]), photo.shape[:2])
        bank.warper.set_destination(points[i])
        one = bank.warper.warp(bank.images[typical], bank.warper.triangles_of(bank.points[typical])) / 255.0
        near = bank.build(points[i]) / 255.0
        nearest_l1.append(face_figures(np.abs(near - photo), ssim_map(near, photo), mask)[0])
        one_l1.append(face_figures(np.abs(one - photo), ssim_map(one, photo), mask)[0])
    assert np.mean(nearest_l1) < np.mean(one_l1)


def test_training_and_live_build_the_same_reference(tiny_model, tiny_dataset):
    """The dataset's reference for a test pair (what training and the held-back scores read) is the
    one the runtime builds from the exported model's bank for the same landmarks."""
    from face2face.runtime.generator import Generator

    info = read_sidecar(tiny_model)
    assert (info.input_channels, info.reference) == (6, "tiny.reference")
    generator = Generator(tiny_model, provider="cpu", announce=False)
    names, points, _ = read_landmarks(tiny_dataset / "test")
    for i in (0, len(names) - 1):
        written = cv2.imread(str(tiny_dataset / "test" / "reference" / f"{names[i]}.png"))
        np.testing.assert_array_equal(generator.reference(points[i]), written)


def test_the_generator_reads_the_reference(tiny_model, tiny_dataset):
    """The same sketch with another reference gives another face (the input is used), the same
    reference the same face."""
    from face2face.runtime.generator import Generator

    generator = Generator(tiny_model, provider="cpu", announce=False)
    names, points, _ = read_landmarks(tiny_dataset / "test")
    sketch = cv2.imread(str(tiny_dataset / "test" / "input" / f"{names[0]}.png"))
    own = generator(sketch, generator.reference(points[0])).copy()
    np.testing.assert_array_equal(own, generator(sketch, generator.reference(points[0])))
    other = generator(sketch, np.full_like(sketch, 128)).copy()
    assert np.abs(own.astype(int) - other.astype(int)).mean() > 1.0
    np.testing.assert_array_equal(generator(sketch), generator(sketch, generator.neutral_reference))


def test_a_sketch_only_model_still_runs(tiny_dataset, tmp_path, analyzer):
    """Models made before references (and `train --reference none`): 3 channels, no bank, the live
    loop's reference stage empty; the sidecar fields they lack read as such."""
    from face2face.runtime.generator import Generator
    from face2face.runtime.pipeline import STAGES, Puppeteer, PuppetConfig
    from face2face.train.export import export
    from face2face.train.trainer import TrainConfig, train

    train(tiny_dataset, tmp_path / "run", TrainConfig(steps=4, ngf=8, ndf=8, reference="none", holdout=0.0))
    model = tmp_path / "old.onnx"
    export(tmp_path / "run", model)
    raw = json.loads(model.with_suffix(".json").read_text())
    assert (raw["input_channels"], raw["reference"]) == (3, "")
    for key in ("input_channels", "reference"):  # as a sidecar written before them
        del raw[key]
    model.with_suffix(".json").write_text(json.dumps(raw))
    generator = Generator(model, provider="cpu", announce=False)
    assert generator.bank is None and generator.reference(np.zeros((68, 2), np.float32)) is None
    puppet = Puppeteer(generator, analyzer, PuppetConfig(width=64, height=64))
    frame = cv2.imread(str(VIDEOS.parent / "images" / "lp_d19.jpg"))
    row = np.zeros(len(STAGES))
    out = puppet.process(frame, 0.0, row)
    assert out.shape == (64, 64, 3) and puppet.points is not None
    assert row[STAGES.index("reference")] < 1e-4 < row[STAGES.index("generate")]


def test_sidecar_checks_the_reference_fields(tiny_model, tmp_path):
    import shutil

    for path in tiny_model.parent.glob(f"{tiny_model.stem}*"):
        (shutil.copytree if path.is_dir() else shutil.copy)(path, tmp_path / path.name)
    model = tmp_path / tiny_model.name
    raw = json.loads(model.with_suffix(".json").read_text())
    model.with_suffix(".json").write_text(json.dumps({**raw, "reference": ""}))
    with pytest.raises(Face2FaceError, match="input_channels 6 with reference ''"):
        read_sidecar(model)
    model.with_suffix(".json").write_text(json.dumps(raw))
    shutil.rmtree(tmp_path / "tiny.reference")
    from face2face.runtime.generator import Generator

    with pytest.raises(Face2FaceError, match="tiny.reference/bank.json: unreadable reference bank"):
        Generator(model, provider="cpu", announce=False)


def test_the_mask_copies_the_reference_where_it_is_on():
    """``--blend``: the face is the reference where the mask is on, the drawn face where it is off,
    and a resize-convolution generator exports to the same function."""
    import keras

    from face2face.train import pix2pix

    generator = pix2pix.build_generator(64, 8, upsample="resize", channels=6, blend=True)
    assert pix2pix.blends(generator) and not pix2pix.blends(pix2pix.build_generator(64, 8, channels=6))
    x = np.random.default_rng(0).uniform(-1, 1, (2, 64, 64, 6)).astype(np.float32)
    last = generator.get_layer("up_out")
    drawn = keras.Model(generator.input, last.output)
    for on, expected in ((40.0, x[..., 3:6]), (-40.0, None)):
        bias = last.bias.numpy()
        bias[3] = on
        last.bias.assign(bias)
        out = np.asarray(generator(x, training=False))
        want = expected if expected is not None else np.tanh(np.asarray(drawn(x, training=False))[..., :3])
        np.testing.assert_allclose(out, want, atol=1e-5)
    np.testing.assert_allclose(np.asarray(pix2pix.as_transposed(generator)(x, training=False)),
                               np.asarray(generator(x, training=False)), atol=1e-5)
    with pytest.raises(ValueError, match="need the reference"):
        pix2pix.build_generator(64, 8, blend=True)


def test_a_blending_model_trains_exports_and_keeps_its_level(tiny_dataset, tmp_path):
    from face2face.runtime.generator import Generator
    from face2face.train.pairs import check_split
    from face2face.train.export import export, load_generator
    from face2face.train.holdout import split_holdout
    from face2face.train.level import OUTPUT_LAYER, FaceLevel
    from face2face.train.trainer import TrainConfig, train

    train(tiny_dataset, tmp_path / "run", TrainConfig(steps=6, ngf=8, ndf=8, blend=True, checkpoint_every=3))
    report = export(tmp_path / "run", tmp_path / "m.onnx")
    assert report.max_error <= 1e-4  # the ONNX graph blends as TensorFlow does
    generator, _, _, _ = load_generator(tmp_path / "run")
    level = FaceLevel(split_holdout(check_split(tiny_dataset, "train", reference=True), 0.05)[0])
    assert np.abs(level.fit(generator)).max() < 0.05  # exported at its level: nothing to add
    bias = generator.get_layer(OUTPUT_LAYER).bias
    fitted = bias.numpy()
    bias.assign(fitted - np.float32([0.3, 0.2, 0.25, 0.0]))  # the drawn part darker, the mask as it was
    assert (level.fit(generator) > 0).all()
    np.testing.assert_allclose(bias.numpy(), fitted, atol=5e-3)
    names, points, _ = read_landmarks(tiny_dataset / "test")
    onnx_generator = Generator(tmp_path / "m.onnx", provider="cpu", announce=False)
    sketch = cv2.imread(str(tiny_dataset / "test" / "input" / f"{names[0]}.png"))
    assert onnx_generator(sketch, onnx_generator.reference(points[0])).shape == (64, 64, 3)


def test_a_residual_generator_starts_as_its_reference():
    """``--residual``: the face is ``clip(reference + correction)``, the correction zero before training,
    and a resize-convolution generator exports to the same function."""
    from face2face.train import pix2pix

    generator = pix2pix.build_generator(64, 8, upsample="resize", channels=6, residual=True)
    assert pix2pix.adds_reference(generator) and not pix2pix.adds_reference(pix2pix.build_generator(64, 8, channels=6))
    x = np.random.default_rng(0).uniform(-1, 1, (2, 64, 64, 6)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(generator(x, training=False)), x[..., 3:6])
    last = generator.get_layer("up_out")
    last.bias.assign(np.float32([0.5, 0.0, -0.5]))
    out = np.asarray(generator(x, training=False))
    np.testing.assert_allclose(out, np.clip(x[..., 3:6] + np.float32([0.5, 0.0, -0.5]), -1, 1), atol=1e-6)
    np.testing.assert_allclose(np.asarray(pix2pix.as_transposed(generator)(x, training=False)), out, atol=1e-5)
    with pytest.raises(ValueError, match="need the reference"):
        pix2pix.build_generator(64, 8, residual=True)


def test_a_smoothed_correction_is_the_correction_blurred():
    """``--smooth-correction``: the correction passes a fixed Gaussian before it is added: a point
    spreads into the Gaussian's taps and keeps its sum, a constant stays itself up to the edges, and
    the exported (transposed) generator computes the same."""
    from face2face.train import pix2pix

    add = pix2pix.AddReference(1.5)
    taps = pix2pix.gaussian_taps(1.5)
    assert len(taps) == 11 and taps.sum() == pytest.approx(1.0) and taps[5] == taps.max()
    reference = np.random.default_rng(1).uniform(-0.5, 0.5, (1, 32, 32, 6)).astype(np.float32)
    point = np.zeros((1, 32, 32, 3), np.float32)
    point[0, 12, 20, 1] = 0.4
    spread = np.asarray(add(point, reference)) - reference[..., 3:6]
    np.testing.assert_allclose(spread[0, 7:18, 15:26, 1], 0.4 * np.outer(taps, taps), atol=1e-6)
    assert spread[..., 1].sum() == pytest.approx(0.4, abs=1e-5) and np.abs(spread[..., [0, 2]]).max() < 1e-6
    constant = np.asarray(add(np.full_like(point, 0.25), reference)) - reference[..., 3:6]
    np.testing.assert_allclose(constant, 0.25, atol=1e-6)
    generator = pix2pix.build_generator(64, 8, upsample="resize", channels=6, residual=True, smooth=1.5)
    last = generator.get_layer("up_out")
    last.set_weights([np.random.default_rng(2).normal(0, 0.05, w.shape).astype(np.float32) for w in last.get_weights()])
    x = np.random.default_rng(0).uniform(-1, 1, (1, 64, 64, 6)).astype(np.float32)
    plain = pix2pix.build_generator(64, 8, upsample="resize", channels=6, residual=True)
    plain.set_weights(generator.get_weights())
    out = np.asarray(generator(x, training=False))
    assert np.abs(out - np.asarray(plain(x, training=False))).mean() > 1e-3  # the blur is there
    exported = pix2pix.as_transposed(generator)
    assert pix2pix.correction_smooth(exported) == 1.5
    np.testing.assert_allclose(np.asarray(exported(x, training=False)), out, atol=1e-5)
    with pytest.raises(ValueError, match="needs residual"):
        pix2pix.build_generator(64, 8, channels=6, smooth=1.5)


def test_a_residual_model_trains_exports_and_keeps_its_level(tiny_dataset, tmp_path):
    from face2face.runtime.generator import Generator
    from face2face.train.export import export, load_generator
    from face2face.train.holdout import split_holdout
    from face2face.train.level import OUTPUT_LAYER, FaceLevel
    from face2face.train.pairs import check_split
    from face2face.train.trainer import TrainConfig, train

    data = tmp_path / "data"
    shutil.copytree(tiny_dataset, data)
    train(data, tmp_path / "run", TrainConfig(steps=6, ngf=8, ndf=8, residual=True, smooth_correction=1.5, swap_parts=0.5,
                                              checkpoint_every=3))
    assert (data / "train" / "reference_swap" / "swaps.json").is_file()  # written before training read them
    report = export(tmp_path / "run", tmp_path / "m.onnx")
    assert report.max_error <= 1e-4  # the ONNX graph blurs, adds and clips as TensorFlow does
    generator, _, _, _ = load_generator(tmp_path / "run")
    level = FaceLevel(split_holdout(check_split(data, "train", reference=True), 0.05)[0])
    assert np.abs(level.fit(generator)).max() < 0.05  # exported at its level: nothing to add
    bias = generator.get_layer(OUTPUT_LAYER).bias
    fitted = bias.numpy()
    bias.assign(fitted - np.float32([0.1, 0.05, 0.0]))  # a face 12.75 / 6.4 / 0 levels too dark
    lightened = level.fit(generator)
    np.testing.assert_allclose(lightened, [12.75, 6.375, 0.0], atol=0.5)
    np.testing.assert_allclose(bias.numpy(), fitted, atol=2e-3)
    names, points, _ = read_landmarks(tiny_dataset / "test")
    onnx_generator = Generator(tmp_path / "m.onnx", provider="cpu", announce=False)
    sketch = cv2.imread(str(tiny_dataset / "test" / "input" / f"{names[0]}.png"))
    face = onnx_generator(sketch, onnx_generator.reference(points[0]))
    assert face.shape == (64, 64, 3)


def test_a_run_made_before_the_residual_resumes_as_it_was(tiny_dataset, tmp_path):
    """A run whose config.json predates ``residual`` drew the whole face: resumed with the default, it
    goes on drawing it (its checkpoints hold that generator and its discriminator)."""
    from face2face.train import pix2pix
    from face2face.train.export import load_generator
    from face2face.train.trainer import TrainConfig, train

    run = tmp_path / "run"
    config = TrainConfig(steps=3, ngf=8, ndf=8, residual=False, holdout=0.0, sample_every=1000)
    train(tiny_dataset, run, config)
    doc = json.loads((run / "config.json").read_text())
    del doc["options"]["residual"]
    (run / "config.json").write_text(json.dumps(doc))
    result = train(tiny_dataset, run, TrainConfig(**{**config.__dict__, "residual": None, "steps": 5, "resume": True}))
    assert result.step == 5
    assert not pix2pix.adds_reference(load_generator(run)[0])

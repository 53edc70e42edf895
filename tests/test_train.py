"""pix2pix networks, the data pipeline, the trainer (overfit, resume, signals, settling) on real data."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from face2face.errors import Face2FaceError  # noqa: E402
from face2face.modelfile import read_sidecar  # noqa: E402
from face2face.runtime.openvino_engine import native_bf16  # noqa: E402
from face2face.sketch import draw_sketch  # noqa: E402
from face2face.train import pix2pix  # noqa: E402
from face2face.train.data import jitter, make_dataset, warp  # noqa: E402
from face2face.train.pairs import check_split  # noqa: E402
from face2face.train.threads import training_threads  # noqa: E402
from face2face.train.trainer import TrainConfig, build, make_checkpoint, settle, train  # noqa: E402


def _params(model) -> int:
    return sum(int(np.prod(v.shape)) for v in model.trainable_variables)


def test_full_size_networks_have_the_papers_size_and_shapes():
    g = pix2pix.build_generator(256, 64)
    d = pix2pix.build_discriminator(256, 64)
    assert abs(_params(g) - 54.41e6) < 0.05e6  # the paper's unet_256: 54.4 M
    assert abs(_params(d) - 2.7687e6) < 0.001e6  # 70x70 PatchGAN: 2.77 M
    assert g.output_shape == (None, 256, 256, 3)
    assert d.output_shape == (None, 30, 30, 1)
    downs = [layer for layer in g.layers if layer.name.startswith("down") and not layer.name.endswith("_bn")]
    assert [layer.filters for layer in downs] == [64, 128, 256, 512, 512, 512, 512, 512]
    assert sum(isinstance(layer, pix2pix.Dropout) for layer in g.layers) == 3
    assert g.layers[-1].output.shape[1:] == (256, 256, 3)


@pytest.mark.parametrize("size,depth", [(64, 6), (128, 7), (512, 9)])
def test_generator_depth_follows_size(size, depth):
    g = pix2pix.build_generator(size, 4)
    assert pix2pix.generator_depth(size) == depth
    assert sum(layer.name.startswith("down") and not layer.name.endswith("_bn") for layer in g.layers) == depth
    assert g.output_shape == (None, size, size, 3)
    assert pix2pix.build_discriminator(size, 4).output_shape == (None, size // 8 - 2, size // 8 - 2, 1)


def test_jitter_is_identical_on_both_images_and_seeded():
    x = tf.random.stateless_uniform((64, 64, 3), (1, 2), -1, 1)
    a, b = jitter(x, x, tf.constant([3, 4], tf.int64), 64)
    assert a.shape == (64, 64, 3)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    again, _ = jitter(x, x, tf.constant([3, 4], tf.int64), 64)
    np.testing.assert_array_equal(a.numpy(), again.numpy())


def _sketch(tiny_dataset, size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """A real face's landmarks scaled to ``size`` and its RGB sketch in [-1, 1]."""
    points = np.asarray(json.loads((tiny_dataset / "train" / "landmarks.json").read_text())["points"][0])
    points = points * size / 64
    return points, draw_sketch(points, size)[..., ::-1].astype(np.float32) / 127.5 - 1.0


def test_warp_moves_sketch_and_photo_together_within_its_bounds(tiny_dataset):
    _, sketch = _sketch(tiny_dataset, 64)
    photo = 0.5 * sketch + 0.4  # a grey background, which the photo's reflection keeps
    seed = tf.constant([3, 4], tf.int64)
    a, b = (t.numpy() for t in warp(tf.constant(sketch), tf.constant(photo), seed, 64))
    np.testing.assert_array_equal(a, warp(tf.constant(sketch), tf.constant(photo), seed, 64)[0].numpy())
    assert not np.allclose(a, sketch, atol=0.1)  # moved
    filled = (a.max(axis=-1) == -1.0) & (b.min(axis=-1) > -0.2)  # the sketch's black fill
    assert filled.any()
    np.testing.assert_allclose(b[~filled], 0.5 * a[~filled] + 0.4, atol=1e-5)  # the same transform
    # A similarity of at most 10% zoom: the strokes' area changes by at most (1.1)^2, plus blur.
    area = lambda image: (image.max(axis=-1) > 0).sum()  # noqa: E731
    assert 0.7 < area(a) / area(sketch) < 1.4


def test_parts_mask_covers_eyes_and_lips_and_nothing_else(tiny_dataset):
    points, sketch = _sketch(tiny_dataset)
    mask = pix2pix.parts_mask(tf.constant(sketch[None])).numpy()[0, ..., 0]
    at = lambda i: mask[int(round(points[i, 1])), int(round(points[i, 0]))]  # noqa: E731
    assert all(at(i) == 1 for i in range(36, 68))  # eye corners and lids, lips
    inner = points[60:68].mean(axis=0).round().astype(int)
    assert mask[inner[1], inner[0]] == 1  # inside the mouth
    assert all(at(i) == 0 for i in (0, 8, 16, 19, 24, 30))  # jaw, chin, brows, nose tip
    assert 0.03 < mask.mean() < 0.25


def test_mirrored_sketch_is_the_sketch_of_the_mirrored_face(tiny_dataset):
    points, _ = _sketch(tiny_dataset, 64)
    mirrored = points.copy()
    mirrored[:, 0] = 63 - mirrored[:, 0]  # cv2 draws with pixel centres at integer coordinates
    a = draw_sketch(points, 64)[:, ::-1].astype(int)
    b = draw_sketch(mirrored, 64).astype(int)
    # Same colours on both sides: only anti-aliasing rounding differs (a colour swap would not).
    assert np.abs(a - b).mean() < 0.05 * a.mean()


def test_pipeline_is_reproducible_and_in_range(tiny_dataset):
    split = check_split(tiny_dataset, "train")
    first = [s.numpy() for s, _ in make_dataset(split, 2, True, seed=5).take(3)]
    second = [s.numpy() for s, _ in make_dataset(split, 2, True, seed=5).take(3)]
    other = [s.numpy() for s, _ in make_dataset(split, 2, True, seed=6).take(3)]
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, c) for a, c in zip(first, other))
    assert first[0].shape == (2, 64, 64, 3) and first[0].min() >= -1.0 and first[0].max() <= 1.0


def _subset(src, dst, names):
    for split in ("train", "test"):
        for kind in ("input", "target"):
            (dst / split / kind).mkdir(parents=True)
            for name in names:
                shutil.copy(src / "train" / kind / f"{name}.png", dst / split / kind / f"{name}.png")
    shutil.copy(src / "train" / "landmarks.json", dst / "train" / "landmarks.json")
    shutil.copy(src / "manifest.json", dst / "manifest.json")


@pytest.mark.parametrize("options", [{"feature_matching": 0.0}, {"parts_weight": 4.0, "warp": True},
                                     {"detail_weight": 100.0, "lambda_l1": 50.0}, {"residual": True}],
                         ids=["paper", "feature-matching+parts+warp", "detail+l1-weight", "residual"])
def test_losses_fall_when_a_few_pairs_are_overfitted(tiny_dataset, tmp_path, options):
    names = check_split(tiny_dataset, "train").names[:4]
    data = tmp_path / "four"
    _subset(tiny_dataset, data, names)
    history = []
    train(data, tmp_path / "run", TrainConfig(steps=120, ngf=16, ndf=16, settle_fraction=0.0,
                                              learning_rate=1e-3, sample_every=1000, **{"residual": False, **options}),
          progress=lambda step, total, losses: history.append(losses))
    assert ("G_FM" in history[0]) == ("feature_matching" not in options)  # on by default
    assert ("G_detail" in history[0]) == ("detail_weight" in options)
    early = {k: np.mean([h[k] for h in history[:10]]) for k in history[0]}
    late = {k: np.mean([h[k] for h in history[-10:]]) for k in history[0]}
    # a residual generator starts from the reference, already close: its L1 has less to lose
    fall = 0.85 if options.get("residual") else 0.6
    assert late["G_L1"] < fall * early["G_L1"], (early, late)
    # The generator's objective falls; the adversarial terms trade places and need not fall.
    assert late["G_GAN"] + 100 * late["G_L1"] < (fall + 0.1) * (early["G_GAN"] + 100 * early["G_L1"]), (early, late)
    if "G_detail" in late:
        assert late["G_detail"] < 0.7 * early["G_detail"], (early, late)
    assert all(np.isfinite(v) for h in history for v in h.values())


def test_local_detail_measures_how_much_fine_detail_not_where(tiny_dataset):
    from face2face.train.pix2pix import DETAIL_CELL, local_detail

    folder = tiny_dataset / "train" / "target"
    photo = cv2.imread(str(sorted(folder.glob("*.png"))[0]))[..., ::-1].astype(np.float32) / 127.5 - 1.0
    blurred = cv2.GaussianBlur(photo, (0, 0), 1.5)
    shifted = np.roll(photo, 2, axis=1)  # the same detail 2 px aside
    detail = {k: local_detail(tf.constant(v[None])).numpy() for k, v in
              (("photo", photo), ("blurred", blurred), ("shifted", shifted))}
    assert detail["photo"].shape == (1, photo.shape[0] // DETAIL_CELL, photo.shape[1] // DETAIL_CELL, 1)
    assert detail["blurred"].mean() < 0.6 * detail["photo"].mean()
    gap = {k: np.abs(detail[k] - detail["photo"]).mean() for k in ("blurred", "shifted")}
    pixels = {k: np.abs(v - photo).mean() for k, v in (("blurred", blurred), ("shifted", shifted))}
    assert pixels["shifted"] > pixels["blurred"]  # per pixel the shift is the larger error
    assert gap["shifted"] < 0.3 * gap["blurred"]  # by the amount of detail it is the smaller


def test_bf16_trains_and_exports_a_float32_model(tiny_dataset, tmp_path, caplog, monkeypatch):
    from face2face.train.export import export

    names = check_split(tiny_dataset, "train").names[:4]
    data = tmp_path / "four"
    _subset(tiny_dataset, data, names)
    history, compute = [], []
    original = pix2pix.build_generator

    def spy(*args, **kwargs):
        generator = original(*args, **kwargs)
        compute.append(generator.get_layer("up_out").output.dtype)  # the last convolution's output
        return generator

    monkeypatch.setattr(pix2pix, "build_generator", spy)
    # a generator that draws the whole face, whose L1 has far to fall (a residual one starts near its answer)
    train(data, tmp_path / "run", TrainConfig(steps=120, ngf=8, ndf=8, settle_fraction=0.2, precision="bf16",
                                              learning_rate=1e-3, sample_every=1000, residual=False),
          progress=lambda step, total, losses: history.append(losses))
    monkeypatch.undo()
    assert compute == ["bfloat16"] and keras.mixed_precision.global_policy().name == "float32"  # restored
    assert all(np.isfinite(v) for h in history for v in h.values())
    assert np.mean([h["G_L1"] for h in history[-5:]]) < 0.8 * np.mean([h["G_L1"] for h in history[:5]])
    if not native_bf16():
        assert "runs emulated" in caplog.text
    report = export(tmp_path / "run", tmp_path / "bf16.onnx")
    assert report.precision == "fp32" and report.max_error <= 1e-4  # float32 weights: an ordinary model


def _checkerboard(image: np.ndarray) -> float:
    """RMS of the [1, -2, 1] x [1, -2, 1] filter (the 2-pixel period) inside a 2-px border."""
    kernel = np.outer([1, -2, 1], [1, -2, 1]).astype(np.float32)
    rows, cols = image.shape[:2]
    out = sum(kernel[i, j] * image[i:rows - 2 + i, j:cols - 2 + j] for i in range(3) for j in range(3))
    return float(np.sqrt(np.mean(out[1:-1, 1:-1] ** 2)))


def test_resize_conv_is_nearest_upsampling_then_a_3x3_convolution_without_checkerboard():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 8, 8, 5)).astype(np.float32)
    layer = pix2pix.ResizeConv(4, use_bias=True)
    layer.build(x.shape)
    layer.kernel3.assign(rng.normal(size=(3, 3, 4, 5)).astype(np.float32))
    layer.bias.assign(rng.normal(size=4).astype(np.float32))
    conv = keras.layers.Conv2D(4, 3, padding="same")
    upsampled = keras.layers.UpSampling2D(2, interpolation="nearest")(x)
    conv.build(upsampled.shape)
    conv.set_weights([np.transpose(layer.kernel3.numpy(), (0, 1, 3, 2)), layer.bias.numpy()])
    np.testing.assert_allclose(layer(x).numpy(), conv(upsampled).numpy(), atol=1e-5)
    # A flat input gives a flat output; a free 4x4 transposed kernel gives the 2-pixel checkerboard.
    flat = np.ones((1, 8, 8, 5), np.float32)
    free = keras.layers.Conv2DTranspose(4, 4, 2, "same", kernel_initializer="random_normal")
    assert _checkerboard(layer(flat).numpy()[0]) < 1e-5 < 1e-2 < _checkerboard(free(flat).numpy()[0])


def test_a_resize_conv_generator_exports_as_the_papers_graph(tiny_dataset, tmp_path):
    import onnx

    from face2face.train.export import export

    generator = pix2pix.build_generator(64, 8, upsample="resize")
    sketch = np.random.default_rng(1).uniform(-1, 1, (2, 64, 64, 3)).astype(np.float32)
    plain = pix2pix.as_transposed(generator)
    assert not any(isinstance(layer, pix2pix.ResizeConv) for layer in plain.layers)
    np.testing.assert_allclose(plain(sketch, training=False), generator(sketch, training=False), atol=1e-5)
    assert _params(generator) < _params(plain)  # 3x3 kernels where the paper has 4x4
    config = TrainConfig(steps=20, ngf=8, ndf=8, upsample="resize", checkpoint_every=10, sample_every=1000)
    train(tiny_dataset, tmp_path / "run", config)
    report = export(tmp_path / "run", tmp_path / "resize.onnx")
    assert report.max_error <= 1e-4 and report.steps in (10, 20)
    ops = {node.op_type for node in onnx.load(tmp_path / "resize.onnx").graph.node}
    assert "ConvTranspose" in ops and "Resize" not in ops and "Einsum" not in ops
    with pytest.raises(Face2FaceError, match="cannot resume with upsample transpose"):
        train(tiny_dataset, tmp_path / "run", TrainConfig(**{**config.__dict__, "upsample": "transpose",
                                                             "steps": 30, "resume": True}))


def test_lr_decay_holds_the_rate_then_falls_linearly_to_zero():
    model = build(TrainConfig(ngf=8, ndf=8, lr_decay=0.5), 64, 1, total_steps=100)
    rates = []
    for step in (0, 50, 75, 100, 120):
        model.g_optimizer.iterations.assign(step)
        rates.append(float(model.g_optimizer.learning_rate))
    assert rates == pytest.approx([2e-4, 2e-4, 1e-4, 0.0, 0.0], abs=1e-9)
    assert float(build(TrainConfig(ngf=8, ndf=8), 64, 1, 100).d_optimizer.learning_rate) == pytest.approx(2e-4)


def test_fused_adam_makes_kerass_adam_updates_and_slots():
    rng = np.random.default_rng(0)
    start = [rng.normal(size=shape).astype("float32") for shape in [(4, 4, 3, 8), (8,), (300,)]]
    grads = [[tf.constant(rng.normal(size=w.shape).astype("float32")) for w in start] for _ in range(20)]
    results = []
    for kind in (keras.optimizers.Adam, pix2pix.FusedAdam):
        weights = [keras.Variable(w) for w in start]
        optimizer = kind(pix2pix.LinearDecay(4e-4, 20, 0.5), beta_1=0.5, beta_2=0.999)

        @tf.function
        def apply(g):
            optimizer.apply_gradients(zip(g, weights))  # noqa: B023 (called within this iteration)

        for g in grads:  # through the decay to a rate of 0
            apply(g)
        results.append([v.numpy() for v in weights + optimizer._momentums + optimizer._velocities])
    keras_adam, fused = results
    assert max(np.abs(a - w).max() for a, w in zip(fused, start)) > 1e-3  # the weights moved
    for a, b in zip(keras_adam, fused):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    assert isinstance(build(TrainConfig(ngf=8, ndf=8), 64, 1, 10).g_optimizer, pix2pix.FusedAdam)


def test_resume_continues_at_the_saved_step_with_the_same_optimizer_state(tiny_dataset, tmp_path, caplog):
    run = tmp_path / "run"
    config = TrainConfig(steps=6, ngf=8, ndf=8, settle_fraction=0.0, sample_every=1000)
    train(tiny_dataset, run, config)
    saved = tf.train.load_checkpoint(str(run / "checkpoints" / "ckpt-6"))
    assert saved.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == 6
    # What the trainer restores: both optimisers' iterations and Adam moments, exactly.
    model = build(config, 64, 1, 6)
    ckpt, step, _ = make_checkpoint(model)
    ckpt.restore(str(run / "checkpoints" / "ckpt-6")).assert_existing_objects_matched()
    assert int(step.numpy()) == 6
    for name, optimizer in (("g_optimizer", model.g_optimizer), ("d_optimizer", model.d_optimizer)):
        assert int(optimizer.iterations.numpy()) == 6
        moments = [v for v in optimizer.variables if len(v.shape) == 4]
        assert moments and any(np.abs(v.numpy()).max() > 0 for v in moments)
        compared = 0
        for i, v in enumerate(optimizer.variables):  # iterations is stored once, under _iterations
            key = f"{name}/_variables/{i}/.ATTRIBUTES/VARIABLE_VALUE"
            if saved.has_tensor(key):
                np.testing.assert_array_equal(v.numpy(), saved.get_tensor(key))
                compared += 1
        assert compared >= 2 * len(moments) // 2 + len(moments)  # every first and second moment
    with pytest.raises(Face2FaceError, match="--resume"):
        train(tiny_dataset, run, config)
    # Resumed with another loss (same networks): a warning names the change, and the run goes on.
    result = train(tiny_dataset, run, TrainConfig(**{**config.__dict__, "steps": 9, "resume": True,
                                                     "feature_matching": 0.0}))
    assert "resuming with feature_matching 0.0; the run so far was trained with 10.0" in caplog.text
    assert result.step == 9
    after = tf.train.load_checkpoint(result.checkpoint)
    assert after.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == 9
    assert after.get_tensor("g_optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE") == 9
    assert after.get_tensor("d_optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE") == 9


# SIGTERM's run also sets TensorFlow's threads itself, which training then leaves as they are (train/threads.py)
@pytest.mark.parametrize("signum,environ", [(signal.SIGINT, {}), (signal.SIGTERM, {"TF_NUM_INTEROP_THREADS": "1"})],
                         ids=["SIGINT", "SIGTERM"])
def test_interrupted_run_leaves_a_loadable_checkpoint_and_names_its_threads(tiny_dataset, tmp_path, signum, environ):
    run = tmp_path / "run"
    cmd = [sys.executable, "-c", "import sys; from face2face.cli import main; sys.exit(main())",
           "train", str(tiny_dataset), "-o", str(run), "--steps", "100000", "--ngf", "8", "--ndf", "8",
           "--checkpoint-every", "100000", "--sample-every", "3"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **environ})
    deadline = time.monotonic() + 120
    while not (run / "samples" / "step_0000003.png").exists():  # it is stepping
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.2)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, err
    assert "checkpoint" in out and "Traceback" not in err
    from face2face.train.export import load_generator

    generator, _, step, path = load_generator(run)
    assert step >= 3 and path.endswith(f"ckpt-{step}")
    assert generator.output_shape == (None, 64, 64, 3)
    two_cores = len(os.sched_getaffinity(0)) == 2 and not environ
    assert json.loads((run / "config.json").read_text())["resolved"]["threads"] == ([1, 2] if two_cores else [0, 0])


def test_settling_re_estimates_statistics_and_matches_the_exported_graph(tiny_dataset):
    split = check_split(tiny_dataset, "train")
    g = pix2pix.build_generator(64, 8)
    settle(g, split)
    bn = pix2pix.batch_norms(g)[0]
    probe = tf.keras.Model(g.inputs, bn.input)
    feats = np.concatenate([probe(s, training=True).numpy() for s, _ in make_dataset(split, 1, False)])
    np.testing.assert_allclose(bn.moving_mean.numpy(), feats.mean(axis=(0, 1, 2)), rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.numpy(), feats.var(axis=(0, 1, 2)), rtol=1e-3, atol=1e-6)
    x = next(iter(make_dataset(split, 1, False)))[0]
    # Settled training graph == exported graph: frozen statistics, no dropout, deterministic.
    np.testing.assert_array_equal(g(x, training=True).numpy(), g(x, training=False).numpy())
    pix2pix.set_inference_normalization(g, False)
    assert not np.allclose(g(x, training=True).numpy(), g(x, training=False).numpy(), atol=1e-3)


def test_training_writes_config_samples_and_logs(tiny_run):
    doc = json.loads((tiny_run / "config.json").read_text())
    assert doc["options"]["ngf"] == 8 and doc["resolved"]["total_steps"] == 30
    assert doc["changed"]["steps"] == 30 and "batch_size" not in doc["changed"]
    assert doc["resolved"]["settle_steps"] == 3
    assert sorted(p.name for p in (tiny_run / "samples").glob("*.png")) == ["step_0000015.png", "step_0000030.png"]
    assert any((tiny_run / "logs").iterdir())
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(tiny_run / "checkpoints")))
    assert reader.get_tensor("settled/.ATTRIBUTES/VARIABLE_VALUE")


def test_training_on_two_cores_runs_one_thread_per_op_and_two_ops_at_once():
    # what a real `face2face train` then runs with: test_interrupted_run_leaves_a_loadable_checkpoint_and_names_its_threads
    assert training_threads(2, False, {}) == (1, 2)
    assert training_threads(2, True, {}) is None  # a GPU: TensorFlow's choice
    assert training_threads(8, False, {}) is None  # not measured there
    assert training_threads(2, False, {"TF_NUM_INTRAOP_THREADS": "2"}) is None  # the user's own


def _broken(tiny_dataset, tmp_path, kind):
    data = tmp_path / "data"
    shutil.copytree(tiny_dataset, data)
    name = check_split(tiny_dataset, "train").names[0]
    if kind == "no manifest":
        (data / "manifest.json").unlink()
    elif kind == "empty":
        shutil.rmtree(data / "train")
    elif kind == "input without target":
        (data / "train" / "target" / f"{name}.png").unlink()
    elif kind == "mixed sizes":
        import cv2

        path = data / "train" / "target" / f"{name}.png"
        cv2.imwrite(str(path), cv2.resize(cv2.imread(str(path)), (32, 32)))
    return data


@pytest.mark.parametrize("kind", ["missing", "no manifest", "empty", "input without target", "mixed sizes"])
def test_bad_dataset_folders_get_a_one_line_error_before_training(tiny_dataset, tmp_path, kind, capsys):
    data = tmp_path / "nowhere" if kind == "missing" else _broken(tiny_dataset, tmp_path, kind)
    with pytest.raises(Face2FaceError) as info:
        train(data, tmp_path / "run", TrainConfig(steps=2, ngf=8, ndf=8))
    assert "\n" not in str(info.value)
    assert not (tmp_path / "run").exists()
    from face2face.cli import main

    assert main(["train", str(data), "-o", str(tmp_path / "run2"), "--steps", "2"]) == 1
    assert capsys.readouterr().err.count("\n") == 1


def _latest_step(run) -> int:
    return int(tf.train.latest_checkpoint(str(run / "checkpoints")).rsplit("-", 1)[1])


def test_sigkill_loses_at_most_one_checkpoint_interval_and_resume_finishes_the_run(tiny_dataset, tmp_path, capsys):
    from face2face.cli import main

    run, err = tmp_path / "run", tmp_path / "train.err"
    args = ["train", str(tiny_dataset), "-o", str(run), "--steps", "30", "--ngf", "8", "--ndf", "8",
            "--checkpoint-every", "10", "--sample-every", "1000", "--settle-fraction", "0", "--ema", "0.9"]
    with open(err, "wb") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "face2face", *args], stdout=subprocess.DEVNULL, stderr=stderr)
    shown = 0  # the last step the progress bar showed
    deadline = time.monotonic() + 120
    try:
        while shown < 13:  # past the checkpoint at step 10, before the next
            assert proc.poll() is None and time.monotonic() < deadline, err.read_text()[-2000:]
            shown = max([shown] + [int(n) for n in re.findall(r"\| (\d+)/30 \[", err.read_text())])
            time.sleep(0.02)
        proc.kill()
    finally:
        proc.kill()
        proc.wait()
    kept = _latest_step(run)
    assert 10 <= kept and shown - kept <= 10, (shown, kept)  # lost at most --checkpoint-every steps
    assert json.loads((run / "config.json").read_text())["resolved"]["total_steps"] == 30

    assert main(args + ["--resume"]) == 0  # the command again (in this process: TensorFlow is loaded already)
    done = capsys.readouterr()
    assert f"resumed {run / 'checkpoints' / f'ckpt-{kept}'} at step {kept}" in done.err
    assert "trained 30 steps" in done.out and _latest_step(run) == 30
    assert re.search(r"handed over: the weight average of step \d+, .*--last the weights of step 30", done.out)
    saved = tf.train.load_checkpoint(str(run / "checkpoints" / "ckpt-30"))
    assert saved.get_tensor("average/count/.ATTRIBUTES/VARIABLE_VALUE") == 30  # the average resumed too
    assert json.loads((run / "config.json").read_text())["options"]["resume"] is True
    scalars = [(e.step, v.tag) for f in sorted((run / "logs").iterdir())
               for e in tf.compat.v1.train.summary_iterator(str(f)) for v in e.summary.value]
    assert scalars.count((30, "loss/G_L1")) == 1  # every events file reads to its end


def test_an_unreadable_latest_checkpoint_falls_back_to_the_previous_one_or_stops_naming_it(
        tiny_dataset, tmp_path, capsys):
    from face2face.cli import main

    run = tmp_path / "run"
    args = ["train", str(tiny_dataset), "-o", str(run), "--ngf", "8", "--ndf", "8", "--checkpoint-every", "5",
            "--sample-every", "1000", "--settle-fraction", "0", "-q"]
    assert main(args + ["--steps", "15"]) == 0
    capsys.readouterr()

    def truncate(step: int) -> str:
        data = run / "checkpoints" / f"ckpt-{step}.data-00000-of-00001"
        data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
        return str(data.with_name(f"ckpt-{step}"))

    bad = truncate(15)
    assert main(args + ["--steps", "20", "--resume"]) == 0
    warning = capsys.readouterr().err.splitlines()
    assert len(warning) == 1 and f"{bad} is unreadable" in warning[0] and warning[0].endswith("ckpt-10 instead")
    assert _latest_step(run) == 20
    reader = tf.train.load_checkpoint(str(run / "checkpoints" / "ckpt-20"))
    assert reader.get_tensor("g_optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE") == 20  # 10 + 10 steps

    newest = truncate(20)
    model = tmp_path / "m.onnx"
    assert main(["export", str(run), "-o", str(model), "--last", "-q"]) == 0  # export falls back the same way
    warning = capsys.readouterr().err.splitlines()
    assert len(warning) == 1 and f"{newest} is unreadable" in warning[0] and warning[0].endswith("ckpt-15 instead")
    assert read_sidecar(model).steps == 15
    for step in (10, 15):  # every checkpoint the manager keeps
        truncate(step)
    assert main(args + ["--steps", "25", "--resume"]) == 1
    error = capsys.readouterr().err.splitlines()
    assert len(error) == 1 and error[0].startswith(f"face2face: error: {newest}: unreadable checkpoint"), error

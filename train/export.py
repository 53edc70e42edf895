"""Trained run -> ONNX generator + sidecar, checked against TensorFlow on real sketches.

The exported graph is the generator in inference mode (``training=False``): batch norm uses its
moving statistics (tf2onnx folds it into the convolutions) and dropout is off, so the model is
deterministic. Input ``sketch`` and output ``face``: ``float32 [1, size, size, 3]``, NHWC, RGB,
values in [-1, 1].
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import onnx
from onnx import numpy_helper
import onnxruntime as ort
import tensorflow as tf
import tf2onnx

from face2face.console import plural
from face2face.coverage import ranges
from face2face.errors import Face2FaceError
from face2face.files import file_sha256
from face2face.geometry import align
from face2face.modelfile import ModelInfo, sidecar_path, write_sidecar
from face2face.runtime.phases import prune_initializers
from face2face.pupils import from_eye_coordinates, to_eye_coordinates
from face2face.shapes import ShapeSpace
from face2face.train import pix2pix
from face2face.train.background import write_background
from face2face.train.pairs import check_split, dataset_fingerprint, read_inputs, spread
from face2face.train.references import write_model_bank
from face2face.train.holdout import split_holdout
from face2face.train.level import OUTPUT_LAYER, FaceLevel
from face2face.train.options import BEST, CHECKPOINTS, read_run_config
from face2face.train.trainer import restore
from face2face.train.prepare import dataset_features, read_landmarks, read_manifest

log = logging.getLogger(__name__)

INPUT_NAME = "sketch"
OUTPUT_NAME = "face"
FP32_TOLERANCE = 1e-4


@dataclass(frozen=True)
class ExportConfig:
    """How a run becomes an ONNX file."""

    fp16: bool = False  # float16 weights and compute; inputs and outputs stay float32
    opset: int = 17  # ONNX opset
    parity_images: int = 8  # test sketches for the ONNX-vs-TensorFlow check
    tolerance: float = FP32_TOLERANCE  # max |ONNX - TF| allowed for fp32
    last: bool = False  # the last weights, not the best on the held-back pairs (``face2face.train.holdout``)


@dataclass
class ExportReport:
    """What ``export`` wrote and measured."""

    model: str
    sidecar: str
    precision: str
    max_error: float  # max |ONNX - TF(training=False)| over the parity sketches
    parity_images: int
    steps: int
    seconds: float
    level: tuple[float, float, float]  # grey levels (RGB) the face's level fit lightened the train faces by
    level_pairs: int  # train pairs it was fitted on (``face2face.train.level``)

    def summary(self) -> str:
        """One line: precision, parity with TensorFlow, the face's level and time taken."""
        sketches = plural(self.parity_images, "test sketch", "test sketches")
        return (f"weights of step {self.steps}, {self.precision}, max |ONNX - TF| = {self.max_error:.2e} on "
                f"{sketches}; face level fitted on {plural(self.level_pairs, 'train pair')}: "
                f"{' / '.join(f'{v:+.1f}' for v in self.level)} grey levels (R / G / B); "
                f"exported in {self.seconds:.1f} s")


def load_generator(run_dir: str | Path, last: bool = False) -> tuple[tf.keras.Model, dict, int, str]:
    """The run's generator: (model, run config, step, checkpoint path). Its best weights on the
    held-back pairs where the run kept them (``RUN/best``), else (or with ``last``) its latest."""
    run = Path(run_dir)
    config = read_run_config(run)
    if tf.train.latest_checkpoint(str(run / CHECKPOINTS)) is None:
        raise Face2FaceError(f"{run}: no checkpoint in {run / CHECKPOINTS}; train first")
    folder = run / BEST if not last and tf.train.latest_checkpoint(str(run / BEST)) else run / CHECKPOINTS
    # float32 whatever the process trains in (quickstart exports while a bf16 run goes on)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        generator = pix2pix.build_generator(config["resolved"]["size"], config["options"]["ngf"],
                                            upsample=config["options"].get("upsample", "transpose"),
                                            channels=6 if uses_reference(config) else 3,
                                            blend=config["options"].get("blend", False),
                                            residual=config["options"].get("residual", False),
                                            smooth=config["options"].get("smooth_correction", 0.0))
        step = tf.Variable(0, dtype=tf.int64)
        used = restore(tf.train.Checkpoint(generator=generator, step=step), folder, partial=True)
        generator = pix2pix.as_transposed(generator)  # the graph exported is the paper's either way
    finally:
        keras.mixed_precision.set_global_policy(previous)
    return generator, config, int(step.numpy()), used


def uses_reference(run_config: dict) -> bool:
    """Whether a run's generator reads a reference besides the sketch (runs made before: no)."""
    return run_config["options"].get("reference", "none") == "bank"


def export(run_dir: str | Path, model_path: str | Path, config: ExportConfig = ExportConfig()) -> ExportReport:
    """Export the run's generator; fails (and leaves no model file) if parity does not hold."""
    started = time.perf_counter()
    model_path = Path(model_path)
    if model_path.suffix != ".onnx":
        raise Face2FaceError(f"{model_path}: the model file must end in .onnx")
    generator, run_config, steps, checkpoint = load_generator(run_dir, config.last)
    data = Path(run_config["data"])
    size = run_config["resolved"]["size"]
    holdout = run_config["options"].get("holdout", 0.0)
    with_reference = uses_reference(run_config)
    trained_on = split_holdout(check_split(data, "train", check_sizes=False, reference=with_reference), holdout)[0]
    # converted first, while the process is small (the conversion is export's peak of memory), and
    # the fitted level then written into the converted graph's output bias
    bias = generator.get_layer(OUTPUT_LAYER).bias
    unfitted = bias.numpy().copy()
    proto = to_onnx(generator, size, config.opset, generator.input_shape[-1])
    gc.collect()  # the conversion's garbage: 1.4 GB at ngf 32
    level = FaceLevel(trained_on)
    lightened = level.fit(generator)
    if not replace_initializer(proto, unfitted, bias.numpy()):  # not found as it was: convert again
        proto = to_onnx(generator, size, config.opset, generator.input_shape[-1])
    sketches = parity_inputs(data, config.parity_images, size, with_reference)
    reference = np.asarray(generator(sketches, training=False), dtype=np.float32)

    model_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = model_path.with_name(f".{model_path.name}.part")
    try:
        precision, fallback = "fp32", ""
        if config.fp16:
            fallback = f"{model_path.stem}.fp32.onnx"
            onnx.save(proto, str(model_path.with_name(fallback)))  # used where fp16 misbehaves
            proto = to_fp16(proto)
            precision = "fp16"
        onnx.save(proto, str(tmp))
        max_error = float(np.abs(run_onnx(tmp, sketches) - reference).max())
        if precision == "fp32" and not max_error <= config.tolerance:
            raise Face2FaceError(f"export parity failed: max |ONNX - TensorFlow| = {max_error:.3g} > "
                                 f"{config.tolerance:g} on {len(sketches)} test sketches; no model written")
        info = model_info(data, size, run_config["options"]["ngf"], steps, precision)
        info.fallback = fallback
        if with_reference:
            info.input_channels = 6
            info.reference = write_model_bank(data, model_path).name
        clip = write_background(data, model_path)  # before the old model is touched: the swap below is brief
        info.background = clip.name if clip else ""
        info.model_sha256 = file_sha256(tmp)
        sidecar_path(model_path).unlink(missing_ok=True)  # the sidecar, written last, marks a finished export
        os.replace(tmp, model_path)
    finally:
        tmp.unlink(missing_ok=True)
    sidecar = write_sidecar(model_path, info)
    seconds = time.perf_counter() - started
    log.debug("exported %s (step %d)", checkpoint, steps)
    return ExportReport(str(model_path), str(sidecar), precision, max_error, len(sketches), steps, seconds,
                        tuple(float(v) for v in lightened), level.pairs)


def to_onnx(generator: tf.keras.Model, size: int, opset: int = 17, channels: int = 3) -> onnx.ModelProto:
    """The generator in inference mode as ONNX, static ``[1, size, size, channels]`` input named
    sketch (the sketch, then the reference where ``channels`` is 6) and ``[1, size, size, 3]``
    output named face."""
    spec = (tf.TensorSpec((1, size, size, channels), tf.float32, name=INPUT_NAME),)

    @tf.function(input_signature=spec, autograph=False)
    def infer(sketch):
        return {OUTPUT_NAME: generator(sketch, training=False)}

    # tf2onnx deep-copies the whole graph, weights and all, before each of its optimizers unless this
    # variable is set (to any value: it compares the variable's name); without the copies the
    # conversion's peak memory is 0.6 GB lower at ngf 32, and an optimizer that fails stops the export
    with _environment(TF2ONNX_CATCH_ERRORS="FALSE"):
        proto, _ = tf2onnx.convert.from_function(infer, input_signature=spec, opset=opset)
    _rename_io(proto)
    fold_into_conv_transpose(proto)
    return proto


def replace_initializer(proto: onnx.ModelProto, old: np.ndarray, new: np.ndarray) -> bool:
    """Set the one float initializer of ``proto`` whose values are exactly ``old`` to ``new`` (same
    shape); False, untouched, where none or several are."""
    found = [t for t in proto.graph.initializer if t.data_type == onnx.TensorProto.FLOAT
             and int(np.prod(t.dims)) == old.size and np.array_equal(numpy_helper.to_array(t).reshape(-1), old.reshape(-1))]
    if len(found) != 1:
        return False
    found[0].CopyFrom(numpy_helper.from_array(new.astype(np.float32).reshape(tuple(found[0].dims)), found[0].name))
    return True


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    """Environment variables set for the duration of a block, then as they were."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def fold_into_conv_transpose(proto: onnx.ModelProto) -> int:
    """Fold each ``ConvTranspose -> Mul(c) -> Add(c)`` chain (the decoder's frozen batch norms,
    which tf2onnx folds into plain convolutions but not into transposed ones) into the
    ConvTranspose's weights and bias; returns how many were folded. Exact up to rounding."""
    graph = proto.graph
    constants = {t.name: t for t in graph.initializer}
    users: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)

    def only_user(name: str, op: str) -> onnx.NodeProto | None:
        found = users.get(name, [])
        return found[0] if len(found) == 1 and found[0].op_type == op else None

    def per_channel(node: onnx.NodeProto, other: str, channels: int) -> np.ndarray | None:
        name = next(n for n in node.input if n != other)
        if name not in constants or tuple(constants[name].dims) not in ((1, channels, 1, 1), (channels, 1, 1)):
            return None
        return numpy_helper.to_array(constants[name]).reshape(-1)

    folded = []
    for conv in graph.node:
        grouped = any(a.name == "group" and a.i != 1 for a in conv.attribute)
        if conv.op_type != "ConvTranspose" or grouped or conv.input[1] not in constants:
            continue
        weight = numpy_helper.to_array(constants[conv.input[1]])  # (C_in, C_out / groups, kh, kw)
        mul = only_user(conv.output[0], "Mul")
        add = mul and only_user(mul.output[0], "Add")
        scale = mul and per_channel(mul, conv.output[0], weight.shape[1])
        shift = add and per_channel(add, mul.output[0], weight.shape[1])
        if scale is None or shift is None:
            continue
        bias = numpy_helper.to_array(constants[conv.input[2]]) if len(conv.input) > 2 else 0.0
        names = (f"{conv.output[0]}/folded_weight", f"{conv.output[0]}/folded_bias")
        graph.initializer.extend([
            numpy_helper.from_array((weight * scale[None, :, None, None]).astype(np.float32), names[0]),
            numpy_helper.from_array((bias * scale + shift).astype(np.float32), names[1])])
        conv.input[:] = [conv.input[0], *names]
        conv.output[0] = add.output[0]
        folded += [mul, add]
    for node in folded:
        graph.node.remove(node)
    prune_initializers(graph)
    return len(folded) // 2


def to_fp16(proto: onnx.ModelProto) -> onnx.ModelProto:
    """float16 weights and compute with float32 inputs and outputs."""
    try:
        from onnxconverter_common.float16 import convert_float_to_float16
    except ImportError:  # onnxruntime ships the same converter
        from onnxruntime.transformers.float16 import convert_float_to_float16
    return convert_float_to_float16(proto, keep_io_types=True)


def run_onnx(path: str | Path, sketches: np.ndarray) -> np.ndarray:
    """Run an exported generator image by image on the CPU: ``[N, s, s, 3]`` -> ``[N, s, s, 3]``."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate([session.run([OUTPUT_NAME], {INPUT_NAME: s[None]})[0] for s in sketches])


def model_info(data: Path, size: int, ngf: int, steps: int, precision: str) -> ModelInfo:
    """The sidecar's content: contract, landmark template and range of face shapes of the train
    split, dataset fingerprint."""
    manifest = read_manifest(data)
    _, points, pupils = read_landmarks(data / "train")
    if not len(points):
        raise Face2FaceError(f"{data}/train/landmarks.json: no pairs")
    template = points.astype(np.float64).mean(axis=0)
    covered = ranges(dataset_features(data))
    template_pupils = None
    gaze = np.stack([to_eye_coordinates(p, q) for p, q in zip(pupils, points)])  # (N, 2 eyes, uv)
    if np.isfinite(gaze).all(axis=2).any(axis=0).all():  # each eye seen open at least once
        template_pupils = np.round(from_eye_coordinates(np.nanmean(gaze, axis=0), template), 3).tolist()
    return ModelInfo(
        size=size, ngf=ngf, steps=steps, template=np.round(template, 3).tolist(),
        shape_space=ShapeSpace.fit(np.stack([align(p, template) for p in points])).to_json(),
        context=float(manifest.get("options", {}).get("context", 1.0)),
        pupils=bool(manifest.get("options", {}).get("pupils", False)), template_pupils=template_pupils,
        normalization="batch-moving-average", precision=precision,
        coverage=[None if np.isnan(r).any() else np.round(r, 4).tolist() for r in covered],
        dataset_fingerprint=dataset_fingerprint(data),
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )


def parity_inputs(data: Path, count: int, size: int, reference: bool) -> np.ndarray:
    """``count`` generator inputs (``as_input``) evenly spread over the test split (the train split
    where there is no test split)."""
    try:
        split = check_split(data, "test", check_sizes=False, reference=reference)
    except Face2FaceError:
        split = check_split(data, "train", check_sizes=False, reference=reference)
    if split.size != size:
        raise Face2FaceError(f"{data}: crops of {split.size} px for a model of {size} px; is it the model's dataset?")
    return read_inputs(split, spread(count, len(split.names)))


def _rename_io(proto: onnx.ModelProto) -> None:
    """Name the graph's single input ``sketch`` and output ``face`` (tf2onnx adds suffixes)."""
    graph = proto.graph
    renames = {graph.input[0].name: INPUT_NAME, graph.output[0].name: OUTPUT_NAME}
    for value in (graph.input[0], graph.output[0]):
        value.name = renames[value.name]
    for node in graph.node:
        node.input[:] = [renames.get(n, n) for n in node.input]
        node.output[:] = [renames.get(n, n) for n in node.output]

"""An int8 copy of an exported generator for OpenVINO, calibrated by NNCF on the model's own
training sketches: ``MODEL.onnx`` -> ``MODEL.int8.xml`` + ``MODEL.int8.bin`` beside it.

The copy is made from the phase-split graph (``face2face.runtime.phases``), so every convolution
of the decoder is quantized, and it records the sha256 of the ONNX file it came from: the runtime
refuses a copy made for another version of the model.

Calibration takes the train sketches that span the target's range (farthest-point samples of
their 68 crop landmarks: the widest mouth, closed eyes, the head's turns, not the first frames).
The quality guard scores the copy against fp32 on held-out test sketches twice: over the whole
crop (what the ``face`` and ``side-by-side`` layouts show) and over the face region the ``frame``
layout pastes, weighted as it pastes it; each figure is recorded in the copy and the runtime reads
the one for the layout in use. Where the face figure misses the guard, the layers nearest the
output (and the first) are kept in fp32, one at a time, while that helps.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from face2face.errors import Face2FaceError
from face2face.memory import peak_gb
from face2face.modelfile import read_sidecar
from face2face.runtime.background import FacePaster, face_outline
from face2face.runtime.generator import EngineChoice, Generator
from face2face.runtime.openvino_engine import (GUARD_DB, GUARD_KEYS, SOURCE_KEY, OpenVinoEngine, file_sha256, int8_path,
                                               read_phase_model)
from face2face.train.pairs import as_input, check_split, dataset_fingerprint, read_images, spread
from face2face.train.prepare import read_landmarks
from face2face.train.references import ensure_references, farthest_points

log = logging.getLogger(__name__)

HELD_OUT = 50  # test sketches the int8 copy is checked on against fp32
KEPT_KEY = ["face2face", "fp32_layers"]  # rt_info: the convolutions the copy keeps in fp32 ("" for none)
MAX_KEPT = 3  # layers that may be kept in fp32 before a copy is left under its guard
KEEP_GAIN_DB = 0.5  # a layer stays in fp32 only where that raises the face region's lowest figure this much


@dataclass(frozen=True)
class Spread:
    """PSNR (dB) of int8 against fp32 over the held-out sketches: lowest, 10th percentile, mean."""

    min: float
    p10: float
    mean: float

    @classmethod
    def of(cls, scores: np.ndarray) -> "Spread":
        return cls(*(round(float(v), 2) for v in (scores.min(), np.percentile(scores, 10), scores.mean())))

    def text(self) -> str:
        return f"{self.min:.1f} min, {self.p10:.1f} p10, {self.mean:.1f} mean"


@dataclass(frozen=True)
class QuantizeReport:
    """What ``quantize`` wrote."""

    model: str  # the int8 IR (.xml)
    sketches: int  # calibration sketches used
    held_out: int  # test sketches the quality guard was measured on
    crop: Spread  # int8 against fp32 over the whole crop
    face: Spread  # over the face region the frame layout shows
    seconds: float
    fp32_layers: list[str] = field(default_factory=list)  # layers kept in fp32 (``layer_name``)
    peak_memory_gb: float | None = None  # this process's peak resident memory

    def default_for(self, region: str) -> bool:
        """Whether the copy held its guard over ``region`` (crop | face), so that ``--precision auto`` runs it."""
        return getattr(self, region).min >= GUARD_DB

    def summary(self) -> str:
        """Two lines: the spread of both figures and where the copy runs by default."""
        if self.default_for("crop"):
            use = "runs by default in every layout"
        elif self.default_for("face"):
            use = "runs by default in the frame layout (face and side-by-side: only with --precision int8)"
        else:
            use = "runs only with --precision int8"
        kept = f"; {len(self.fp32_layers)} layer(s) kept in fp32: {', '.join(self.fp32_layers)}" if self.fp32_layers else ""
        memory = f"; peak memory {self.peak_memory_gb:.1f} GB" if self.peak_memory_gb is not None else ""
        return (f"int8 against fp32 on {self.held_out} held-out sketches, dB: face region {self.face.text()}; "
                f"whole crop {self.crop.text()}{kept}\n{use} (guard {GUARD_DB:.0f} dB at worst){memory}")


def face_weights(points: np.ndarray, size: int) -> np.ndarray:
    """``float32 (size, size)``: how much of each generated pixel the frame layout shows for a face
    with crop landmarks ``points``: its paste weights (``FacePaster``), 1 on the face, feathered to 0."""
    small = FacePaster().weights(size, [face_outline(points)])
    return cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR)


def weighted_psnr(a: np.ndarray, b: np.ndarray, weights: np.ndarray | None = None) -> float:
    """PSNR (dB) of two uint8 images, over pixels weighted by ``weights`` (all equally when None)."""
    error = (a.astype(np.float64) - b.astype(np.float64)) ** 2
    if weights is not None:
        error = error * weights[..., None] / max(float(weights.mean()), 1e-12)
    mse = max(float(error.mean()), 1e-12)
    return 10.0 * math.log10(255.0**2 / mse)


def held_out_psnr(model: Path, quantized, inputs: list[tuple[np.ndarray, ...]],
                  weights: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """PSNR (dB) of the quantized model's faces against onnxruntime fp32's, per input ((sketch,)
    or (sketch, reference)): over the whole crop, and weighted by ``weights`` (the face region)."""
    fp32 = Generator(model, provider="cpu", warmup=0, announce=False)
    int8 = Generator(model, engine=(OpenVinoEngine(quantized, "int8"), EngineChoice("openvino", "int8")), warmup=0,
                     announce=False)
    crop, face = [], []
    for images, weight in zip(inputs, weights):
        ours, theirs = int8(*images).copy(), fp32(*images)
        crop.append(weighted_psnr(ours, theirs))
        face.append(weighted_psnr(ours, theirs, weight))
    return np.array(crop), np.array(face)


def layer_groups(ov_model) -> list[list[str]]:
    """The model's convolutions by layer, input to output: convolutions reading the same tensor
    (a decoder layer's phase convolutions, each behind its own padding) form one."""
    groups: dict[str, list[str]] = {}
    for op in ov_model.get_ordered_ops():
        if op.get_type_name() not in ("Convolution", "GroupConvolution", "ConvolutionBackpropData"):
            continue
        source = op.input_value(0).get_node()
        while source.get_type_name() == "Pad":
            source = source.input_value(0).get_node()
        groups.setdefault(source.get_friendly_name(), []).append(op.get_friendly_name())
    return list(groups.values())


def layer_name(groups: list[list[str]], layer: int) -> str:
    """A layer as the user reads it: its place from the input, and what it is."""
    what = "output" if layer == len(groups) - 1 else "input" if layer == 0 else f"{len(groups[layer])} convolutions"
    return f"layer {layer + 1} of {len(groups)} ({what})"


def suspects(layers: int) -> list[int]:
    """The layers whose int8 error shows most in the output, most likely first: the output layer,
    the first (it reads the photo-like reference), then the decoder's from the end back."""
    return [layers - 1, *range(layers - 1)[:1], *range(layers - 2, 0, -1)][:MAX_KEPT]


def quantize(model: str | Path, data: str | Path, count: int = 100) -> QuantizeReport:
    """Calibrate and write the int8 copy of ``model`` (atomically: a partial copy is never left in place)."""
    import nncf
    import openvino as ov

    started = time.perf_counter()
    model = Path(model)
    if not model.is_file():
        raise Face2FaceError(f"{model}: model file not found")
    if count < 1:
        raise Face2FaceError(f"--sketches {count}: need at least 1 calibration sketch")
    info = read_sidecar(model)
    if info.dataset_fingerprint and info.dataset_fingerprint != dataset_fingerprint(data):
        log.warning("%s is not the dataset %s was trained on; calibrating on it anyway", data, model.name)
    reference = info.input_channels == 6
    if reference:
        ensure_references(data)  # a dataset prepared again since training has none yet
    train, test = (check_split(data, name, check_sizes=False, reference=reference) for name in ("train", "test"))
    if train.size != info.size:
        raise Face2FaceError(f"{data}: crops of {train.size} px for a model of {info.size} px; is it the model's dataset?")
    sketches = [as_input(images) for images in read_images(train, calibration_picks(train, count))]
    picks = spread(HELD_OUT, len(test.names))
    held_out = read_images(test, picks)
    points = dict(zip(*read_landmarks(test.root / test.name)[:2]))
    weights = [face_weights(points[test.names[i]], info.size) for i in picks]

    def calibrate(kept: list[int]):
        """The copy with the layers ``kept`` (indices into ``layer_groups``) in fp32, and its scores."""
        phases = read_phase_model(model)  # its new nodes are named afresh at each read: names from this one
        groups = layer_groups(phases)
        ignored = nncf.IgnoredScope(names=[name for i in kept for name in groups[i]]) if kept else None
        # NNCF draws its progress bar on stdout: progress goes to stderr here, and nowhere under --quiet
        with contextlib.redirect_stdout(sys.stderr if log.isEnabledFor(logging.INFO) else io.StringIO()):
            quantized = nncf.quantize(phases, nncf.Dataset(sketches), subset_size=len(sketches),
                                      preset=nncf.QuantizationPreset.PERFORMANCE, ignored_scope=ignored)
        return quantized, held_out_psnr(model, quantized, held_out, weights)

    kept: list[int] = []
    quantized, (crop, face) = calibrate(kept)
    groups = layer_groups(read_phase_model(model))
    for layer in suspects(len(groups)):  # the suspects in fp32, one at a time, each kept where it helps
        if face.min() >= GUARD_DB:
            break
        log.info("int8 face region %.1f dB from fp32 at worst: trying %s in fp32", face.min(), layer_name(groups, layer))
        better, (better_crop, better_face) = calibrate(kept + [layer])
        if better_face.min() > face.min() + KEEP_GAIN_DB:
            kept, quantized, crop, face = kept + [layer], better, better_crop, better_face
    quantized.set_rt_info(file_sha256(model), SOURCE_KEY)
    for region, scores in (("crop", crop), ("face", face)):
        quantized.set_rt_info(f"{scores.min():.2f}", GUARD_KEYS[region])
    layers = [layer_name(groups, layer) for layer in sorted(kept)]
    quantized.set_rt_info("; ".join(layers), KEPT_KEY)
    target = int8_path(model)
    tmp = target.with_name(f".{target.stem}.part.xml")
    try:
        ov.save_model(quantized, str(tmp), compress_to_fp16=False)
        target.unlink(missing_ok=True)  # an old .xml never meets the new .bin
        os.replace(tmp.with_suffix(".bin"), target.with_suffix(".bin"))
        os.replace(tmp, target)  # last: the .xml is what the runtime looks for
    finally:
        tmp.unlink(missing_ok=True)
        tmp.with_suffix(".bin").unlink(missing_ok=True)
    report = QuantizeReport(str(target), len(sketches), len(held_out), Spread.of(crop), Spread.of(face),
                            round(time.perf_counter() - started, 1), layers, peak_gb())
    if not report.default_for("face"):
        log.warning("%s: int8 output is %.1f dB from fp32 on the face of a held-out sketch (guard %.0f dB): it runs "
                    "only with --precision int8", target.name, report.face.min, GUARD_DB)
    return report


def calibration_picks(split, count: int) -> list[int]:
    """Indices of ``count`` train pairs spanning the target's range: farthest-point samples of their
    crop landmarks (pose and expression together), in split order."""
    names, points, _ = read_landmarks(split.root / split.name)
    where = {n: i for i, n in enumerate(names)}
    missing = [n for n in split.names if n not in where]
    if missing:
        raise Face2FaceError(f"{split.root / split.name}/landmarks.json: no landmarks for pair {missing[0]}")
    shapes = np.stack([points[where[n]] for n in split.names]).reshape(len(split.names), -1) / split.size
    return sorted(farthest_points(shapes, count))

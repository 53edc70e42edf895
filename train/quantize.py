"""An int8 copy of an exported generator for OpenVINO, calibrated by NNCF on the model's own
training sketches: ``MODEL.onnx`` -> ``MODEL.int8.xml`` + ``MODEL.int8.bin`` beside it.

The copy is made from the phase-split graph (``face2face.runtime.phases``), so every convolution
of the decoder is quantized, and it records the sha256 of the ONNX file it came from: the runtime
refuses a copy made for another version of the model.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from face2face.errors import Face2FaceError
from face2face.modelfile import read_sidecar
from face2face.runtime.openvino_engine import SOURCE_KEY, file_sha256, int8_path, read_phase_model
from face2face.train.data import check_split
from face2face.train.export import dataset_fingerprint

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QuantizeReport:
    """What ``quantize`` wrote."""

    model: str  # the int8 IR (.xml)
    sketches: int  # calibration sketches used
    seconds: float


def calibration_sketches(data: str | Path, count: int, size: int) -> list[np.ndarray]:
    """``count`` training sketches evenly spread over the train split, as ``float32 [1, s, s, 3]`` RGB in [-1, 1]."""
    split = check_split(data, "train", check_sizes=False)
    paths = split.inputs()
    picks = np.linspace(0, len(paths) - 1, min(count, len(paths))).round().astype(int)
    sketches = []
    for i in picks:
        image = cv2.imread(paths[i], cv2.IMREAD_COLOR)
        if image is None or image.shape != (size, size, 3):
            raise Face2FaceError(f"{paths[i]}: not a {size}x{size} sketch; is {data} the model's dataset?")
        sketches.append((cv2.cvtColor(image, cv2.COLOR_BGR2RGB).astype(np.float32) / 127.5 - 1.0)[None])
    return sketches


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
    sketches = calibration_sketches(data, count, info.size)
    quantized = nncf.quantize(read_phase_model(model), nncf.Dataset(sketches), subset_size=len(sketches),
                              preset=nncf.QuantizationPreset.PERFORMANCE)
    quantized.set_rt_info(file_sha256(model), SOURCE_KEY)
    target = int8_path(model)
    tmp = target.with_name(f".{target.stem}.part.xml")
    try:
        ov.save_model(quantized, str(tmp), compress_to_fp16=False)
        os.replace(tmp.with_suffix(".bin"), target.with_suffix(".bin"))
        os.replace(tmp, target)  # last: the .xml is what the runtime looks for
    finally:
        tmp.unlink(missing_ok=True)
        tmp.with_suffix(".bin").unlink(missing_ok=True)
    seconds = time.perf_counter() - started
    log.info("int8 copy %s calibrated on %d training sketches in %.1f s", target, len(sketches), seconds)
    return QuantizeReport(str(target), len(sketches), seconds)

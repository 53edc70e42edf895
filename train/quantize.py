"""An int8 copy of an exported generator for OpenVINO, calibrated by NNCF on the model's own
training sketches: ``MODEL.onnx`` -> ``MODEL.int8.xml`` + ``MODEL.int8.bin`` beside it.

The copy is made from the phase-split graph (``face2face.runtime.phases``), so every convolution
of the decoder is quantized, and it records the sha256 of the ONNX file it came from: the runtime
refuses a copy made for another version of the model.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from face2face.errors import Face2FaceError
from face2face.modelfile import read_sidecar
from face2face.runtime.generator import EngineChoice, Generator
from face2face.runtime.openvino_engine import (GUARD_DB, GUARD_KEY, SOURCE_KEY, OpenVinoEngine, file_sha256, int8_path,
                                               read_phase_model)
from face2face.train.data import as_input
from face2face.train.export import dataset_fingerprint, read_sketches
from face2face.train.references import ensure_references

log = logging.getLogger(__name__)

HELD_OUT = 50  # test sketches the int8 copy is checked on against fp32


@dataclass(frozen=True)
class QuantizeReport:
    """What ``quantize`` wrote."""

    model: str  # the int8 IR (.xml)
    sketches: int  # calibration sketches used
    held_out: int  # test sketches the quality guard was measured on
    psnr_vs_fp32_min: float  # lowest PSNR (dB) of the int8 output against fp32's over them
    psnr_vs_fp32_mean: float
    seconds: float

    @property
    def default(self) -> bool:
        """Whether the copy held its guard, so that ``--precision auto`` runs it."""
        return self.psnr_vs_fp32_min >= GUARD_DB


def held_out_psnr(model: Path, quantized, sketches: list[tuple[np.ndarray, ...]]) -> np.ndarray:
    """PSNR (dB) of the quantized model's faces against onnxruntime fp32's, per input
    ((sketch,) or (sketch, reference))."""
    from face2face.train.evaluate import psnr

    fp32 = Generator(model, provider="cpu", warmup=0, announce=False)
    int8 = Generator(model, engine=(OpenVinoEngine(quantized, "int8"), EngineChoice("openvino", "int8")), warmup=0,
                     announce=False)
    return np.array([psnr(int8(*s) / 255.0, fp32(*s) / 255.0) for s in sketches])


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
    sketches = read_sketches(data, "train", count, info.size, reference)
    # NNCF draws its progress bar on stdout: progress goes to stderr here, and nowhere under --quiet
    with contextlib.redirect_stdout(sys.stderr if log.isEnabledFor(logging.INFO) else io.StringIO()):
        quantized = nncf.quantize(read_phase_model(model), nncf.Dataset(sketches, as_input),
                                  subset_size=len(sketches), preset=nncf.QuantizationPreset.PERFORMANCE)
    held_out = read_sketches(data, "test", HELD_OUT, info.size, reference)
    scores = held_out_psnr(model, quantized, held_out)
    quantized.set_rt_info(file_sha256(model), SOURCE_KEY)
    quantized.set_rt_info(f"{scores.min():.2f}", GUARD_KEY)
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
    report = QuantizeReport(str(target), len(sketches), len(held_out), round(float(scores.min()), 2),
                            round(float(scores.mean()), 2), round(time.perf_counter() - started, 1))
    if not report.default:
        log.warning("%s: int8 output is %.1f dB from fp32 on a held-out sketch (guard %.0f dB): it runs only "
                    "with --precision int8", target.name, report.psnr_vs_fp32_min, GUARD_DB)
    return report

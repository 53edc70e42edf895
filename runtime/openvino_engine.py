"""The generator on OpenVINO's CPU plugin: the decoder split into phase convolutions, in fp32,
bf16 (on CPUs with native bf16: AMX or AVX-512 BF16) or int8 (an NNCF-calibrated copy beside
the model, made by ``face2face quantize``)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from face2face.errors import Face2FaceError
from face2face.files import file_sha256
from face2face.runtime.phases import split_transposed_convolutions

INT8_SUFFIX = ".int8.xml"
SOURCE_KEY = ["face2face", "source_sha256"]  # rt_info of an int8 model: sha256 of the ONNX it came from
# rt_info of an int8 model: its lowest PSNR (dB) against fp32 on held-out sketches, over the pixels a
# layout shows: "crop" the whole crop (face and side-by-side layouts), "face" the face region the frame
# layout pastes, weighted as it pastes them (copies made before the second figure carry the first only)
GUARD_KEYS = {"crop": ["face2face", "psnr_vs_fp32_min"], "face": ["face2face", "psnr_vs_fp32_face_min"]}
REGIONS = {"crop": "the whole crop", "face": "the face the frame layout shows"}
GUARD_DB = 40.0  # an int8 copy at least this close to fp32 on every held-out sketch runs by default
OV_PRECISION = {"fp32": "f32", "bf16": "bf16"}


def openvino_missing() -> str:
    """Why OpenVINO cannot run here, or "" when it can."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        return "OpenVINO is not installed (pip install openvino)"
    return ""


NO_BF16 = "this CPU has no native bf16 (AMX or AVX-512 BF16)"


def native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AMX or AVX-512 BF16), as OpenVINO sees it."""
    return not openvino_missing() and "BF16" in cpu_capabilities()


@lru_cache(maxsize=1)
def core():
    """The process's one OpenVINO runtime core (imported on first use)."""
    import openvino as ov

    return ov.Core()


@lru_cache(maxsize=1)
def cpu_capabilities() -> frozenset[str]:
    """OpenVINO's view of the CPU: e.g. {"FP32", "BF16", "INT8"}; BF16 only where it is native."""
    return frozenset(core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def cpu_name() -> str:
    """The CPU as OpenVINO names it."""
    return str(core().get_property("CPU", "FULL_DEVICE_NAME")).strip()


def int8_path(model: str | os.PathLike) -> Path:
    """Where the int8 copy of ``MODEL.onnx`` lives: ``MODEL.int8.xml`` (+ ``.bin``)."""
    path = Path(model)
    return path.with_name(path.stem + INT8_SUFFIX)


def read_phase_model(model: str | os.PathLike):
    """The exported ONNX generator as an OpenVINO model, its transposed convolutions split into phases."""
    try:
        ov_model = core().read_model(str(model))
    except RuntimeError as exc:  # OpenVINO's message ends with what is wrong, or with the formats it tried
        last = [line.strip() for line in str(exc).splitlines() if line.strip()][-1]
        reason = "no format OpenVINO reads" if last.startswith("Unable to read the model") else last[:160]
        raise Face2FaceError(f"{model}: not a loadable ONNX model ({reason})") from None
    split_transposed_convolutions(ov_model)
    return ov_model


def read_int8_model(model: str | os.PathLike):
    """The calibrated int8 copy beside ``model``, checked to come from this very ONNX file."""
    path = int8_path(model)
    if not path.is_file() or not path.with_suffix(".bin").is_file():
        raise Face2FaceError(f"{model}: no int8 copy ({path.name}) beside it; make one with "
                             f"`face2face quantize {model} DATASET` (the model's training data)")
    try:
        ov_model = core().read_model(str(path))
    except RuntimeError as exc:  # OpenVINO's own error for a file that is not an IR
        raise Face2FaceError(f"{path}: unreadable int8 copy ({str(exc).strip().splitlines()[-1].strip()}); run "
                             f"`face2face quantize {model} DATASET` again") from None
    source = ov_model.get_rt_info(SOURCE_KEY).astype(str) if ov_model.has_rt_info(SOURCE_KEY) else ""
    if source != file_sha256(model):
        raise Face2FaceError(f"{path}: calibrated for another version of {Path(model).name}; run "
                             f"`face2face quantize {model} DATASET` again")
    return ov_model


def int8_is_current(model: str | os.PathLike) -> bool:
    """Whether ``model`` has an int8 copy made from its present bytes."""
    try:
        read_int8_model(model)
    except Face2FaceError:
        return False
    return True


def int8_guard(ov_model, region: str = "crop") -> tuple[float | None, str]:
    """(the lowest PSNR (dB) against fp32 that ``face2face quantize`` measured for an int8 copy over
    ``region``, the region it is of): a copy made before the face figure answers with the whole crop's."""
    for name in dict.fromkeys((region, "crop")):
        if ov_model.has_rt_info(GUARD_KEYS[name]):
            return float(ov_model.get_rt_info(GUARD_KEYS[name]).astype(str)), name
    return None, region


def int8_verdict(model: str | os.PathLike, region: str = "crop") -> tuple[str, str]:
    """(why the int8 copy of ``model`` does not run by default, "" when it does; the figure that
    decided) for a layout showing ``region`` (``REGIONS``)."""
    if not int8_path(model).is_file():
        return "no calibrated copy (`face2face quantize`)", ""
    try:
        guard, region = int8_guard(read_int8_model(model), region)
    except Face2FaceError as exc:
        return str(exc).split("; ")[0], ""
    if guard is None:
        return "its copy has no quality guard", ""
    figure = f"its copy is {guard:.1f} dB from fp32 at worst on {REGIONS[region]}"
    return (f"{figure}, under the {GUARD_DB:.0f} dB guard" if guard < GUARD_DB else "", figure)


class OpenVinoEngine:
    """Runs a generator on OpenVINO's CPU plugin: ``run(x)`` for ``float32 [1, s, s, 3]`` in [-1, 1].

    Inputs and outputs are bound once to our own buffers (no per-call allocation); the returned
    array is reused by the next call.
    """

    def __init__(self, ov_model, precision: str, threads: int | None = None, name: str = "the model") -> None:
        import openvino as ov

        compute = precision
        if precision == "int8":  # the layers left in float
            compute = "bf16" if "BF16" in cpu_capabilities() else "fp32"
        config = {
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1,
            "INFERENCE_NUM_THREADS": threads or (os.cpu_count() or 1),
            "INFERENCE_PRECISION_HINT": OV_PRECISION[compute],
        }
        try:
            self.compiled = core().compile_model(ov_model, "CPU", config)
        except RuntimeError as exc:
            raise Face2FaceError(f"{name}: OpenVINO cannot compile it ({str(exc).splitlines()[0][:160]})") from None
        self.precision = precision
        inputs, outputs = self.compiled.inputs, self.compiled.outputs
        self.input_shapes = [list(p.get_partial_shape().to_shape()) if p.get_partial_shape().is_static else []
                             for p in inputs]
        self.output_shapes = [list(p.get_partial_shape().to_shape()) if p.get_partial_shape().is_static else []
                              for p in outputs]
        self._request = self.compiled.create_infer_request()
        self._input = self._output = None
        self._ov = ov

    @classmethod
    def open(cls, model: str | os.PathLike, precision: str, threads: int | None = None) -> "OpenVinoEngine":
        """The engine for an exported ``MODEL.onnx``: its phase-split graph, or its int8 copy."""
        ov_model = read_int8_model(model) if precision == "int8" else read_phase_model(model)
        return cls(ov_model, precision, threads, name=str(model))

    def bind(self, x: np.ndarray, y: np.ndarray) -> None:
        """Read inputs from ``x`` and write outputs to ``y`` (both float32, kept alive by the caller)."""
        self._request.set_input_tensor(self._ov.Tensor(x, shared_memory=True))
        self._request.set_output_tensor(self._ov.Tensor(y, shared_memory=True))
        self._input, self._output = x, y

    def run(self) -> np.ndarray:
        """One inference from the bound input into the bound output."""
        self._request.infer()
        return self._output

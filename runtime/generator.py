"""The exported pix2pix generator on onnxruntime: sketch (uint8 BGR) -> face (uint8 BGR)."""

from __future__ import annotations

import ctypes
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import onnxruntime as ort

from face2face.errors import Face2FaceError
from face2face.modelfile import ModelInfo, read_sidecar

log = logging.getLogger(__name__)

Provider = Literal["auto", "cuda", "cpu"]
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


@dataclass(frozen=True)
class ProviderChoice:
    """Which execution provider runs, and why CUDA did not, if it did not."""

    provider: str
    reason: str = ""  # empty when the requested provider runs

    def message(self) -> str:
        """The one line logged at start-up."""
        name = "CUDA" if self.provider == CUDA else "CPU"
        return f"generator runs on {name}" + (f" ({self.reason})" if self.reason else "")


def cuda_unavailable_reason(available: list[str]) -> str:
    """Why CUDA cannot run here, or "" when it may (checked without onnxruntime's noisy log)."""
    if CUDA not in available:
        return "this onnxruntime build has no CUDA support; install onnxruntime-gpu"
    library = Path(ort.__file__).parent / "capi" / "libonnxruntime_providers_cuda.so"
    if library.exists():
        try:
            ctypes.CDLL(str(library))
        except OSError as exc:
            missing = str(exc).split(":")[0]
            return f"CUDA libraries not found ({missing}); install the CUDA and cuDNN versions onnxruntime-gpu needs"
    if os.name == "posix" and not Path("/proc/driver/nvidia").exists() and library.exists():
        return "no NVIDIA GPU driver found"
    return ""


def choose_provider(requested: Provider, available: list[str]) -> ProviderChoice:
    """The provider to try for a request: pure except for probing CUDA's libraries."""
    if requested == "cpu":
        return ProviderChoice(CPU)
    reason = cuda_unavailable_reason(available)
    if reason:
        if requested == "cuda":
            raise Face2FaceError(f"--provider cuda: CUDA is not usable: {reason}; use --provider cpu")
        return ProviderChoice(CPU, f"CUDA skipped: {reason}")
    return ProviderChoice(CUDA)


def session_options(threads: int | None = None) -> ort.SessionOptions:
    """Options for low-latency single-image inference."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads or (os.cpu_count() or 1)
    options.log_severity_level = 3
    # Idle worker threads sleep instead of spinning: the capture thread and the tracker share
    # the cores (measured: +1.5 fps through the live loop on 2 cores).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def open_session(model: str | os.PathLike, provider: Provider = "auto", threads: int | None = None):
    """An onnxruntime session on the best usable provider, and the choice made."""
    path = Path(model)
    if not path.is_file():
        raise Face2FaceError(f"{model}: model file not found")
    choice = choose_provider(provider, ort.get_available_providers())
    providers = [choice.provider, CPU] if choice.provider == CUDA else [CPU]
    ort.set_default_logger_severity(4)  # our own line explains a CUDA fallback
    try:
        session = ort.InferenceSession(str(path), session_options(threads), providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types for bad files
        raise Face2FaceError(f"{model}: not a loadable ONNX model ({str(exc).splitlines()[0][:160]})") from None
    finally:
        ort.set_default_logger_severity(2)
    if session.get_providers()[0] != choice.provider:
        choice = ProviderChoice(CPU, "CUDA skipped: onnxruntime could not start it on this machine")
        if provider == "cuda":
            raise Face2FaceError("--provider cuda: onnxruntime could not start CUDA; use --provider cpu")
    return session, choice


class Generator:
    """Owns the onnxruntime session of an exported face2face generator.

    ``generator(sketch)`` maps a ``size x size x 3 uint8 BGR`` sketch to a face of the same
    shape. Buffers are allocated once; the returned array is reused by the next call (copy it
    to keep it). An injected ``session`` (any object with onnxruntime's interface) replaces
    the real one, e.g. in tests.
    """

    def __init__(
        self,
        model: str | os.PathLike,
        provider: Provider = "auto",
        threads: int | None = None,
        session=None,
        warmup: int = 2,
    ) -> None:
        self.info: ModelInfo = read_sidecar(model)
        self.model = Path(model)
        self._provider_request, self._threads = provider, threads
        if session is None:
            session, choice = open_session(model, provider, threads)
        else:
            choice = ProviderChoice(session.get_providers()[0])
        log.info(choice.message())
        self._start(session, choice.provider)
        for _ in range(warmup):
            self(np.zeros((self.info.size, self.info.size, 3), np.uint8))

    def _start(self, session, provider: str) -> None:
        """Adopt a session: check its contract, make the buffers and the I/O binding."""
        self.session = session
        self.provider = provider
        self._check_contract()
        size = self.info.size
        self._rgb = np.empty((size, size, 3), np.uint8)
        self._to_unit = np.linspace(-1.0, 1.0, 256, dtype=np.float32)  # uint8 -> [-1, 1]
        self._input = np.empty((1, size, size, 3), np.float32)
        self._output = np.empty((1, size, size, 3), self._output_dtype)
        self._face = np.empty((size, size, 3), np.uint8)
        self._binding = self._bind()
        self._check_finite = self.info.precision == "fp16" and bool(self.info.fallback)

    def _fall_back_to_fp32(self) -> None:
        """Replace an fp16 session whose outputs turned non-finite by the fp32 model beside it."""
        path = self.model.with_name(self.info.fallback)
        log.warning("fp16 generator gave non-finite outputs; switching to %s", path.name)
        session, choice = open_session(path, self._provider_request, self._threads)
        self.info.precision = "fp32"
        self._start(session, choice.provider)

    def _check_contract(self) -> None:
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        size = self.info.size
        if len(inputs) != 1 or len(outputs) != 1:
            raise Face2FaceError(f"model has {len(inputs)} inputs and {len(outputs)} outputs; a face2face generator has 1 and 1")
        want = [1, size, size, 3]
        for kind, arg in (("input", inputs[0]), ("output", outputs[0])):
            if list(arg.shape) != want:
                raise Face2FaceError(f"model {kind} shape {list(arg.shape)} != {want} from its sidecar")
        types = {"tensor(float)": np.float32, "tensor(float16)": np.float16}
        if inputs[0].type not in types or outputs[0].type not in types:
            raise Face2FaceError(f"model input/output types {inputs[0].type}/{outputs[0].type} are not float")
        self._input_name, self._output_name = inputs[0].name, outputs[0].name
        self._input_dtype = types[inputs[0].type]
        self._output_dtype = types[outputs[0].type]

    def _bind(self):
        """I/O binding onto our own buffers (no per-call allocation), when the session has it."""
        if not hasattr(self.session, "io_binding") or self._input_dtype != np.float32:
            return None
        binding = self.session.io_binding()
        binding.bind_input(self._input_name, "cpu", 0, np.float32, list(self._input.shape), self._input.ctypes.data)
        binding.bind_output(self._output_name, "cpu", 0, self._output_dtype, list(self._output.shape), self._output.ctypes.data)
        return binding

    def _run(self) -> np.ndarray:
        if self._binding is not None:
            self.session.run_with_iobinding(self._binding)
            return self._output
        return self.session.run([self._output_name], {self._input_name: self._input.astype(self._input_dtype)})[0]

    def __call__(self, sketch: np.ndarray) -> np.ndarray:
        cv2.cvtColor(sketch, cv2.COLOR_BGR2RGB, dst=self._rgb)
        np.take(self._to_unit, self._rgb, out=self._input[0])
        output = self._run()
        if self._check_finite and not np.isfinite(output).all():
            self._fall_back_to_fp32()
            output = self._run()
        # tanh output in [-1, 1] -> [0, 255]; convertScaleAbs saturates and rounds to uint8
        cv2.convertScaleAbs(output[0].astype(np.float32, copy=False), self._face, alpha=127.5, beta=127.5)
        cv2.cvtColor(self._face, cv2.COLOR_RGB2BGR, dst=self._face)
        return self._face

"""The exported pix2pix generator: sketch (uint8 BGR) -> face (uint8 BGR), on the fastest engine here.

Engines: onnxruntime with CUDA on NVIDIA GPUs; OpenVINO on the CPU, where it runs the convolutions
on the CPU's matrix units (bf16 where the CPU has native bf16, optional int8); onnxruntime's CPU
provider, in fp32, where OpenVINO is missing.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import logging
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import onnxruntime as ort

from face2face.errors import Face2FaceError
from face2face.modelfile import ModelInfo, check_describes, read_sidecar
from face2face.reference import ReferenceBank, SteadyBlend, load_bank
from face2face.runtime.openvino_engine import NO_BF16, OpenVinoEngine, cpu_capabilities, int8_verdict, openvino_missing

log = logging.getLogger(__name__)

Provider = Literal["auto", "cuda", "openvino", "cpu"]
Precision = Literal["auto", "fp32", "bf16", "int8"]
PROVIDERS = ("auto", "cuda", "openvino", "cpu")
PRECISIONS = ("auto", "fp32", "bf16", "int8")
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
ENGINE_NAMES = {"cuda": "onnxruntime CUDA", "openvino": "OpenVINO CPU", "cpu": "onnxruntime CPU"}


@dataclass(frozen=True)
class EngineChoice:
    """Which engine runs the generator, in which precision, and why faster ones were skipped."""

    engine: str  # cuda | openvino | cpu
    precision: str  # fp32 | bf16 | int8; the model file's own (fp32 or fp16) on onnxruntime
    skipped: tuple[str, ...] = ()
    basis: str = ""  # what decided for the precision that runs (an int8 copy's guard figure)

    def message(self) -> str:
        """The one line logged at start-up."""
        why = f" ({'; '.join(filter(None, (self.basis, *self.skipped)))})" if self.basis or self.skipped else ""
        return f"generator runs on {ENGINE_NAMES[self.engine]}, {self.precision}{why}"


_SWAP_RB_PAIR = [0, 2, 1, 1, 2, 0, 3, 5, 4, 4, 5, 3]  # cv2.mixChannels: two BGR images -> one RGB+RGB image
NVIDIA_DRIVER = Path("/proc/driver/nvidia")  # present on Linux while NVIDIA's kernel driver is loaded


def nvidia_driver_loaded() -> bool:
    """Whether NVIDIA's kernel driver is loaded here (Linux), i.e. an NVIDIA GPU is present."""
    return NVIDIA_DRIVER.exists()


def cuda_unavailable_reason(available: list[str]) -> str:
    """Why CUDA cannot run here, or "" when it may (checked without onnxruntime's noisy log)."""
    if CUDA not in available:
        return "this onnxruntime build has no CUDA support"
    if os.name == "posix" and not nvidia_driver_loaded():
        return "no NVIDIA GPU"
    preload_cuda_libraries()
    library = Path(ort.__file__).parent / "capi" / "libonnxruntime_providers_cuda.so"
    if library.exists():
        try:
            ctypes.CDLL(str(library))
        except OSError as exc:
            missing = str(exc).split(":")[0]
            return f'CUDA libraries not found ({missing}); pip install "face2face[cuda]" adds them'
    return ""


def preload_cuda_libraries() -> None:
    """Load the CUDA and cuDNN libraries that pip installs (the ``cuda`` extra), where this
    onnxruntime can; it prints what it misses, which ``cuda_unavailable_reason`` says instead."""
    preload = getattr(ort, "preload_dlls", None)  # onnxruntime 1.21+
    if preload is None:
        return
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            preload()
        except (OSError, RuntimeError) as exc:
            log.debug("onnxruntime.preload_dlls: %s", exc)


def choose_engine(provider: Provider, precision: Precision, cuda_reason: str, openvino_reason: str,
                  native_bf16: bool, int8_reason: str, file_precision: str = "fp32", int8_basis: str = "") -> EngineChoice:
    """The engine and precision for a request, given what this machine and model have (pure).

    ``auto``: CUDA where it works; else OpenVINO in int8 where the model has a calibrated copy that
    held its quality guard, else in bf16 where the CPU has native bf16, else in fp32; else
    onnxruntime's CPU provider. Each ``*_reason`` is why that path cannot run ("" when it can);
    ``int8_basis`` the int8 copy's figure that allows it, which the start-up line then names.
    """
    float_only = precision in ("auto", "fp32")
    if provider in ("cuda", "cpu") and not float_only:
        raise Face2FaceError(f"--precision {precision} runs on OpenVINO only; use --provider openvino or auto")
    if provider == "cpu":
        return EngineChoice("cpu", file_precision)
    if provider == "cuda":
        if cuda_reason:
            raise Face2FaceError(f"--provider cuda: CUDA is not usable: {cuda_reason}; use --provider auto")
        return EngineChoice("cuda", file_precision)
    skipped = []
    if provider == "auto" and float_only:
        if not cuda_reason:
            return EngineChoice("cuda", file_precision)
        skipped.append(f"CUDA skipped: {cuda_reason}")
    if openvino_reason:
        if provider == "openvino" or not float_only:
            raise Face2FaceError(f"--provider openvino / --precision {precision}: {openvino_reason}")
        return EngineChoice("cpu", file_precision, (*skipped, f"OpenVINO skipped: {openvino_reason}"))
    if precision == "bf16" and not native_bf16:
        raise Face2FaceError(f"--precision bf16: {NO_BF16}; use --precision fp32 or int8")
    if precision == "auto":
        precision = "int8" if not int8_reason else "bf16" if native_bf16 else "fp32"
        if precision == "fp32":
            skipped.append(f"bf16 skipped: {NO_BF16}")
        if int8_reason:
            skipped.append(f"int8 skipped: {int8_reason}")
        else:
            return EngineChoice("openvino", precision, tuple(skipped), int8_basis)
    return EngineChoice("openvino", precision, tuple(skipped))


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


def open_session(model: str | os.PathLike, cuda: bool, threads: int | None = None) -> ort.InferenceSession:
    """An onnxruntime session on CUDA (with CPU behind it) or on the CPU alone."""
    providers = [CUDA, CPU] if cuda else [CPU]
    ort.set_default_logger_severity(4)  # our own line explains a CUDA fallback
    try:
        session = ort.InferenceSession(str(model), session_options(threads), providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types for bad files
        raise Face2FaceError(f"{model}: not a loadable ONNX model ({str(exc).splitlines()[0][:160]})") from None
    finally:
        ort.set_default_logger_severity(2)
    return session


class OrtEngine:
    """Runs a generator on an onnxruntime session, with I/O binding onto our own buffers."""

    def __init__(self, session) -> None:
        self.session = session
        types = {"tensor(float)": np.float32, "tensor(float16)": np.float16}
        inputs, outputs = session.get_inputs(), session.get_outputs()
        if any(arg.type not in types for arg in (*inputs, *outputs)):
            raise Face2FaceError(f"model input/output types {[a.type for a in (*inputs, *outputs)]} are not float")
        self.input_shapes = [list(arg.shape) for arg in inputs]
        self.output_shapes = [list(arg.shape) for arg in outputs]
        self._names = inputs[0].name, outputs[0].name
        self._dtypes = types[inputs[0].type], types[outputs[0].type]
        self._binding = self._input = self._output = None

    def bind(self, x: np.ndarray, y: np.ndarray) -> None:
        """Read inputs from ``x`` and write outputs to ``y`` (float32, kept alive by the caller)."""
        self._input, self._output = x, y
        if not hasattr(self.session, "io_binding") or self._dtypes != (np.float32, np.float32):
            return
        binding = self.session.io_binding()
        binding.bind_input(self._names[0], "cpu", 0, np.float32, list(x.shape), x.ctypes.data)
        binding.bind_output(self._names[1], "cpu", 0, np.float32, list(y.shape), y.ctypes.data)
        self._binding = binding

    def run(self) -> np.ndarray:
        """One inference from the bound input; the bound output, or a new array without binding."""
        if self._binding is not None:
            self.session.run_with_iobinding(self._binding)
            return self._output
        feed = {self._names[0]: self._input.astype(self._dtypes[0])}
        return self.session.run([self._names[1]], feed)[0].astype(np.float32, copy=False)


def open_engine(model: str | os.PathLike, provider: Provider = "auto", precision: Precision = "auto",
                threads: int | None = None, file_precision: str = "fp32",
                shown: str = "crop") -> tuple[OrtEngine | OpenVinoEngine, EngineChoice]:
    """The engine a request gets on this machine, and the choice made (with its reasons); ``shown``:
    the part of the generator's output the layout shows (``openvino_engine.REGIONS``), which an
    int8 copy's guard is read for."""
    path = Path(model)
    if not path.is_file():
        raise Face2FaceError(f"{model}: model file not found")
    cuda_reason = "" if provider in ("auto", "cuda") and precision in ("auto", "fp32") else "not requested"
    if not cuda_reason:
        cuda_reason = cuda_unavailable_reason(ort.get_available_providers())
    openvino_reason = openvino_missing() if provider in ("auto", "openvino") else "not requested"
    native_bf16 = not openvino_reason and "BF16" in cpu_capabilities()
    int8_reason, int8_basis = int8_verdict(path, shown) if not openvino_reason and precision == "auto" else ("not requested", "")
    choice = choose_engine(provider, precision, cuda_reason, openvino_reason, native_bf16, int8_reason, file_precision,
                           int8_basis)
    if choice.engine == "openvino":
        return OpenVinoEngine.open(path, choice.precision, threads), choice
    session = open_session(path, choice.engine == "cuda", threads)
    if choice.engine == "cuda" and session.get_providers()[0] != CUDA:
        if provider == "cuda":
            raise Face2FaceError("--provider cuda: onnxruntime could not start CUDA; use --provider auto")
        # CUDA looked usable but did not start: the CPU engines, with that reason
        engine, fallback = open_engine(path, "openvino" if not openvino_reason else "cpu", precision, threads,
                                       file_precision, shown)
        return engine, EngineChoice(fallback.engine, fallback.precision,
                                    ("CUDA skipped: onnxruntime could not start it on this machine", *fallback.skipped),
                                    fallback.basis)
    return OrtEngine(session), choice


class Generator:
    """Owns the inference engine of an exported face2face generator.

    ``generator(sketch, reference)`` maps a ``size x size x 3 uint8 BGR`` sketch (and, for a model
    that reads the target's own pixels, the reference ``generator.reference(points)`` builds for
    the sketch's landmarks; the neutral face's when left out) to a face of the same shape.
    Buffers are allocated once; the returned arrays are reused by the next call (copy them to
    keep them). An injected ``engine`` (with its ``EngineChoice``) replaces the choice made here.
    ``layout`` is the output layout it serves: an int8 copy runs by default where its guard holds
    over what that layout shows of the face (``shown``).
    """

    def __init__(
        self,
        model: str | os.PathLike,
        provider: Provider = "auto",
        precision: Precision = "auto",
        threads: int | None = None,
        engine: tuple[OrtEngine | OpenVinoEngine, EngineChoice] | None = None,
        warmup: int = 2,
        announce: bool = True,
        layout: str = "face",
    ) -> None:
        self.info: ModelInfo = read_sidecar(model)
        check_describes(model, self.info)
        self.model = Path(model)
        self.layout = layout
        self._request = provider, precision, threads
        self._running: Future | None = None  # a run started by ``submit``
        self.started = 0.0  # when ``submit`` last started a run (``perf_counter``)
        self._worker: ThreadPoolExecutor | None = None  # the thread ``submit`` runs on, made at its first call
        engine, self.choice = engine or open_engine(model, provider, precision, threads, self.info.precision, self.shown)
        self._start(engine)
        self.bank: ReferenceBank | None = None  # the target's crops the references are built from
        if self.info.reference:
            self.bank = load_bank(self.model.with_name(self.info.reference))
            if self.bank.size != self.info.size:
                raise Face2FaceError(f"{self.model.with_name(self.info.reference)}: crops of {self.bank.size} px "
                                     f"for a model of {self.info.size} px; export the model again")
        if announce:  # the one start-up line, once the model is known to fit
            log.info(self.choice.message())
        self._reference = np.empty((self.info.size, self.info.size, 3), np.uint8)
        self._steady = None if self.bank is None else SteadyBlend(len(self.bank))
        self.neutral_reference = None if self.bank is None else self.reference(self.info.template_array()).copy()
        for _ in range(warmup):
            self(np.zeros((self.info.size, self.info.size, 3), np.uint8))

    def reference(self, points: np.ndarray, t: float | None = None, out: np.ndarray | None = None) -> np.ndarray | None:
        """The reference for a sketch of crop landmarks ``points`` (``face2face.reference``), or None
        for a model that reads the sketch alone; written into ``out`` (else a buffer of the
        generator's, reused by the next call). With ``t``, the time (s) of a frame in a stream,
        its blend is steadied over the stream's frames (``SteadyBlend``); without, it is the
        frame's own, as in training."""
        if self.bank is None:
            return None
        return self.bank.build(points, out=self._reference if out is None else out,
                               steady=None if t is None else self._steady, t=t or 0.0)

    def reopen(self, model: str | Path | None = None) -> "Generator":
        """A new generator on the model file's present contents (or on another ``model``) with this
        one's request (provider, precision, threads): the engine is chosen again as at start (an
        int8 copy made from other bytes is passed over), warmed up with one inference, and not announced."""
        return Generator(model or self.model, *self._request, warmup=1, announce=False, layout=self.layout)

    @property
    def shown(self) -> str:
        """What the layout shows of the output (``openvino_engine.REGIONS``): the face region where
        the frame layout pastes it into the target's clip, else the whole crop."""
        return "face" if self.layout == "frame" and self.info.background else "crop"

    @property
    def threads(self) -> int:
        """The threads the engine runs on."""
        return self._request[2] or (os.cpu_count() or 1)

    @property
    def provider(self) -> str:
        """The engine that runs, e.g. "OpenVINO CPU"."""
        return ENGINE_NAMES[self.choice.engine]

    @property
    def precision(self) -> str:
        """The precision it runs in."""
        return self.choice.precision

    def _start(self, engine) -> None:
        """Adopt an engine: check its contract against the sidecar and bind the buffers."""
        size, channels = self.info.size, self.info.input_channels
        if len(engine.input_shapes) != 1 or len(engine.output_shapes) != 1:
            raise Face2FaceError(f"model has {len(engine.input_shapes)} inputs and {len(engine.output_shapes)} "
                                 "outputs; a face2face generator has 1 and 1")
        for kind, shape, want in (("input", engine.input_shapes[0], [1, size, size, channels]),
                                  ("output", engine.output_shapes[0], [1, size, size, 3])):
            if list(shape) != want:
                raise Face2FaceError(f"model {kind} shape {list(shape)} != {want} from its sidecar")
        self.engine = engine
        self._rgb = np.empty((size, size, channels), np.uint8)
        self._to_unit = np.linspace(-1.0, 1.0, 256, dtype=np.float32)  # uint8 -> [-1, 1]
        self._input = np.empty((1, size, size, channels), np.float32)
        self._output = np.empty((1, size, size, 3), np.float32)
        self._face = np.empty((size, size, 3), np.uint8)
        engine.bind(self._input, self._output)
        self._check_finite = self.info.precision == "fp16" and bool(self.info.fallback)

    def _fall_back_to_fp32(self) -> None:
        """Replace an fp16 model whose outputs turned non-finite by the fp32 model beside it."""
        path = self.model.with_name(self.info.fallback)
        log.warning("fp16 generator gave non-finite outputs; switching to %s", path.name)
        engine, self.choice = open_engine(path, *self._request, file_precision="fp32")
        self.info.precision = "fp32"
        loaded = self._input
        self._start(engine)
        np.copyto(self._input, loaded)  # the input it failed on, for the fp32 model's run

    def __call__(self, sketch: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
        self._load(sketch, reference)
        return self._face_from(self.engine.run())

    def submit(self, sketch: np.ndarray, reference: np.ndarray | None = None, wait: bool = False) -> None:
        """Start generating the face for ``sketch`` (and its ``reference``) on the generator's own
        thread, which the engine's run leaves to itself (it releases Python's lock): the caller
        goes on with other work, and ``result()`` waits for the face. Both images are read before
        this returns; the face of the previous run stays valid until ``result()``. With ``wait``
        the run happens here, on the caller's thread (a loop in turn: no hand-over to pay for)."""
        if self._running is not None:
            raise RuntimeError("submit() before result() of the previous run")
        self._load(sketch, reference)
        self.started = time.perf_counter()
        if wait:
            self._running = Future()
            self._running.set_result(self._timed_run())
            return
        if self._worker is None:
            self._worker = ThreadPoolExecutor(1, thread_name_prefix="generator")
        self._running = self._worker.submit(self._timed_run)

    def result(self) -> tuple[np.ndarray, float]:
        """The face of the last ``submit`` (the buffer ``__call__`` returns, reused by the next run)
        and the seconds its run took on the generator's thread."""
        running, self._running = self._running, None
        output, seconds = running.result()
        return self._face_from(output), seconds

    def _timed_run(self) -> tuple[np.ndarray, float]:
        started = time.perf_counter()
        output = self.engine.run()
        return output, time.perf_counter() - started

    def _load(self, sketch: np.ndarray, reference: np.ndarray | None) -> None:
        """The sketch (and reference) as the engine's input: RGB in [-1, 1]."""
        if self.bank is None:
            cv2.cvtColor(sketch, cv2.COLOR_BGR2RGB, dst=self._rgb)
        else:  # both BGR -> RGB into one 6-channel image
            cv2.mixChannels([sketch, self.neutral_reference if reference is None else reference], [self._rgb], _SWAP_RB_PAIR)
        cv2.LUT(self._rgb, self._to_unit, dst=self._input[0])

    def _face_from(self, output: np.ndarray) -> np.ndarray:
        """The engine's output as a face (uint8 BGR, the generator's buffer)."""
        if self._check_finite and not np.isfinite(output).all():
            self._fall_back_to_fp32()
            output = self.engine.run()
        # tanh output in [-1, 1] -> [0, 255]; convertScaleAbs saturates and rounds to uint8
        cv2.convertScaleAbs(output[0], self._face, alpha=127.5, beta=127.5)
        cv2.cvtColor(self._face, cv2.COLOR_RGB2BGR, dst=self._face)
        return self._face

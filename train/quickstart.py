"""`face2face quickstart`: prepare -> train -> export (+ int8 copy) -> evaluate in one resumable command.

Each stage leaves a marker of completion (the dataset manifest, the run's final checkpoint, the
model's sidecar and its int8 copy's source hash, the evaluation JSON); running again skips what
is done and resumes training from its last checkpoint.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from face2face.progress import report as report_progress
from face2face.console import Counter, plural, ticker
from face2face.errors import Face2FaceError
from face2face.files import write_atomic
from face2face.memory import peak_gb, run_apart
from face2face.runtime.openvino_engine import native_bf16
from face2face.train.options import BEST, CHECKPOINTS, CONFIG, TrainConfig, read_run_config
from face2face.video import VideoSource

log = logging.getLogger(__name__)

# Training defaults per kind of hardware (docs/experiments.md): on CPUs a 30-minute recipe measured
# against the earlier 94-minute one: the narrower discriminator, the paper's decaying rate over the
# last half, resize-convolutions. Its length is the 30 minutes in steps: 3,600 on a 2-core AVX2 CPU
# in fp32, at twice the paper's rate (4e-4: a closer face in the short run), 10,800 where the CPU
# has bf16 natively (AMX, AVX-512 BF16: the same learning, about 3x the steps/s; a better face than
# 3,600 steps there), at the paper's rate. A bigger model on a GPU (not measured).
_CPU = {"ngf": 32, "ndf": 32, "lr_decay": 0.5, "upsample": "resize", "reference": "bank", "residual": True,
        "swap_parts": 0.6}
DEFAULTS = {
    "cpu": {**_CPU, "steps": 3600, "precision": "fp32", "learning_rate": 4e-4},
    "cpu-bf16": {**_CPU, "steps": 10800, "precision": "bf16", "learning_rate": 2e-4},
    "gpu": {"ngf": 64, "ndf": 64, "steps": 40000, "precision": "fp32", "lr_decay": 0.0, "upsample": "transpose",
            "learning_rate": 2e-4, "reference": "bank", "residual": True, "swap_parts": 0.6},
}
# What a run keeps when quickstart resumes it, and the value in runs made before the option existed.
KEPT = {"ndf": 64, "precision": "fp32", "lr_decay": 0.0, "upsample": "transpose", "learning_rate": 2e-4,
        "reference": "none", "residual": False, "swap_parts": 0.0}
# Seconds per training step of each kind's defaults at 256 px, batch 1, on 2-core CPUs: an AMD EPYC
# with AVX2 only (scripts/train_speed.py); in bf16, whole runs with their held-back scores on an AMD
# EPYC with AVX-512 BF16 (0.136) and the step alone on an Intel Xeon with AMX (0.12). The GPU figure
# is a conservative guess for a mid-range card, not a measurement. Other widths scale by their work.
SECONDS_PER_STEP = {"cpu": 0.5, "cpu-bf16": 0.13, "gpu": 0.04}
FIRST_MODEL_SECONDS = 300.0  # training time before quickstart exports a first model to drive (EarlyModels)
EXPORT_SHARE = 0.5  # early models take at most this share of training's time (EarlyModels)
MIN_PAIRS = 24  # usable frames below which quickstart refuses a target (int8 and the shape space need a spread)
PREPARE_FPS = 30.0  # frames/s of `prepare` with the SSD detector on a 2-core CPU


@dataclass(frozen=True)
class QuickstartConfig:
    """Options of the one-command path; None = chosen by the hardware found."""

    steps: int | None = None
    ngf: int | None = None
    every: int = 1  # keep every N-th frame of the target video
    size: int = 256  # crop and generator size, px
    detector: str = "ssd"
    pupils: bool = True  # pupils in the sketches (gaze follows the driver)
    first_model_seconds: float = FIRST_MODEL_SECONDS  # training time before the first model to drive


@dataclass(frozen=True)
class Done:
    """What earlier runs of quickstart in the same folder finished."""

    dataset: bool = False
    steps: int = 0  # training steps in the latest checkpoint
    exported: bool = False  # the model (and its int8 copy) come from the final checkpoint
    evaluated: bool = False


@dataclass(frozen=True)
class Plan:
    """What quickstart will do and how long it expects to take."""

    device: str  # cpu | cpu-bf16 | gpu (DEFAULTS)
    ngf: int
    ndf: int
    precision: str
    steps: int
    frames: int  # frames of the video that prepare reads
    lr_decay: float
    upsample: str
    seconds_per_step: float
    learning_rate: float
    reference: str = "bank"  # TrainConfig.reference
    residual: bool = True  # TrainConfig.residual
    swap_parts: float = 0.0  # TrainConfig.swap_parts

    def seconds(self, done: Done = Done()) -> float:
        """The expected time of what is not done yet."""
        train_pairs, test_pairs = 0.8 * self.frames, 0.2 * self.frames
        seconds = 0.0 if done.dataset else self.frames / PREPARE_FPS
        if done.steps < self.steps:  # + settling: a forward pass per train pair, ~1/3 of a step
            seconds += (self.steps - done.steps + train_pairs / 3) * self.seconds_per_step
        seconds += 0.0 if done.exported else 40.0  # export and int8 copy
        seconds += 0.0 if done.evaluated else 10.0 + 0.3 * test_pairs
        return seconds

    def describe(self, done: Done = Done()) -> str:
        """One line for the user before anything starts: the stages left and their expected time."""
        stages = [] if done.dataset else [f"{plural(self.frames, 'frame')} -> dataset"]
        if done.steps < self.steps:
            resuming = f" (resuming at step {done.steps})" if done.steps else ""
            stages.append(f"{self.steps} training steps at ngf {self.ngf}, ndf {self.ndf}, {self.precision} on "
                          f"{self.device.split('-')[0].upper()}{resuming}")
        stages += [] if done.exported else ["export (+ int8 copy)"]
        stages += [] if done.evaluated else ["evaluate"]
        if not stages:
            return "plan: every stage is already done; its results follow"
        minutes = self.seconds(done) / 60
        expected = f"about {minutes:.0f} min" if minutes >= 1 else "under a minute"
        return f"plan: {', '.join(stages)}; expected {expected}"


def check_config(config: QuickstartConfig) -> None:
    """A one-line error for options that cannot work."""
    for name in ("steps", "ngf", "every", "size"):
        value = getattr(config, name)
        if value is not None and value < 1:
            raise Face2FaceError(f"--{name} must be at least 1, got {value}")


def make_plan(video: str, config: QuickstartConfig, gpu: bool, bf16: bool = False,
              trained: dict | None = None) -> Plan:
    """Choose steps, widths and precision for the hardware (``bf16``: the CPU has it natively),
    keeping those a run already ``trained`` with (its ``config.json`` options), and the training
    speed to expect."""
    device = "gpu" if gpu else "cpu-bf16" if bf16 else "cpu"
    chosen = {**DEFAULTS[device], **({k: trained.get(k, old) for k, old in KEPT.items()} if trained else {})}
    if trained and trained.get("steps"):  # and its length: the rate's decay was planned on it
        chosen["steps"] = trained["steps"]
    ngf = config.ngf or (trained or chosen)["ngf"]
    steps = config.steps or chosen["steps"]
    with VideoSource(video) as source:
        count = source.frame_count
        if count is None:  # not in the container's header: counted by decoding
            count = 0
            while source.read() is not None:
                count += 1
    frames = -(-count // config.every)
    if frames < MIN_PAIRS:
        raise Face2FaceError(f"{video}: {plural(frames, 'frame')} to learn from (--every {config.every}); "
                             f"quickstart needs at least {MIN_PAIRS}: record 10 s or more of the target's face")
    default = DEFAULTS[device]
    work = step_gmac(ngf, chosen["ndf"]) / step_gmac(default["ngf"], default["ndf"])
    return Plan(device, ngf, chosen["ndf"], chosen["precision"], steps, frames, chosen["lr_decay"],
                chosen["upsample"], SECONDS_PER_STEP[device] * work * (config.size / 256) ** 2,
                chosen["learning_rate"], chosen["reference"], chosen["residual"], chosen["swap_parts"])


def step_gmac(ngf: int, ndf: int) -> float:
    """A training step's work at 256 px in GMAC (``scripts/train_speed.py`` counts it layer by
    layer): three generator forwards' worth and seven of the discriminator."""
    return 3 * 1.55 * (ngf / 32) ** 2 + 7 * 0.83 * (ndf / 32) ** 2


def live_command(model: Path) -> str:
    """The command that drives the trained model from a webcam."""
    return f"face2face live --model {model} --virtual-cam --preview"


def quickstart(video: str, workdir: str | Path, config: QuickstartConfig = QuickstartConfig()) -> dict:
    """Run (or resume) the whole offline path, with progress; returns the evaluation report."""
    check_config(config)
    work = Path(workdir)
    data, run, model = work / "data", work / "run", work / "model.onnx"
    trained_with = read_run_config(run)["options"] if (run / CONFIG).is_file() else None
    bf16 = native_bf16()
    plan = make_plan(video, config, False, bf16, trained_with)  # a bad video fails here, before TensorFlow loads
    import tensorflow as tf

    from face2face.runtime.openvino_engine import int8_is_current, openvino_missing
    from face2face.coverage import describe as describe_coverage
    from face2face.train.prepare import MANIFEST, PrepareConfig, describe_dataset, prepare, read_manifest
    from face2face.train.threads import use_training_threads
    from face2face.train.trainer import train

    evaluation, grid = work / "evaluation.json", work / "evaluation.png"
    if gpus := tf.config.list_physical_devices("GPU"):
        plan = make_plan(video, config, True, bf16, trained_with)
        for gpu in gpus:  # take GPU memory as training needs it, not all at once: evaluate's needs some after
            tf.config.experimental.set_memory_growth(gpu, True)
    checkpoint = tf.train.latest_checkpoint(str(run / CHECKPOINTS))
    trained = _step_of(checkpoint)
    int8_due = not openvino_missing() and not int8_is_current(model)
    exported = trained >= plan.steps and exported_steps(model) == _handed_over(run) and not int8_due
    done = Done(dataset=(data / MANIFEST).exists(), steps=trained, exported=exported,
                evaluated=exported and evaluation.exists())
    said = plan.describe(done)
    log.info(said)
    report_progress("plan", text=said, steps=plan.steps)
    fresh = not work.exists()
    work.mkdir(parents=True, exist_ok=True)
    memory = StageMemory(work)

    if done.dataset:
        log.info(f"1/4 dataset: {data} is complete, kept")
        _kept("dataset")
    else:
        log.info(f"1/4 dataset: preparing {data}")
        with _stage("dataset"), Counter("prepare", "frame") as progress:
            manifest = prepare([video], data, PrepareConfig(every=config.every, size=config.size,
                                                            detector=config.detector, pupils=config.pupils),
                               progress=progress)
        log.info(f"    {describe_dataset(manifest)}")
        memory.note("prepare", peak_gb())
    for line in describe_coverage(read_manifest(data).get("coverage") or {"features": {}, "missing": []}):
        log.info(f"    {line}")  # a target that misses some still trains: the user may want that
    if (pairs := sum(read_manifest(data)["pairs"].values())) < MIN_PAIRS:
        shutil.rmtree(work if fresh else data)  # nothing else was made from it
        raise Face2FaceError(f"{video}: only {plural(pairs, 'frame')} with a usable face; quickstart needs at least "
                             f"{MIN_PAIRS}: record 10 s or more with the face in view")

    log.info(f"2/4 training: {'resuming' if checkpoint else 'starting'} {run}")
    defaults = DEFAULTS[plan.device]  # quickstart's own choices are not "changed" options
    use_training_threads()
    with _stage("train"), Counter("train", "step") as progress:
        every = checkpoint_interval(plan.steps)
        resumed = bool(checkpoint)
        early = EarlyModels(run, model, config.first_model_seconds, memory)
        chosen = TrainConfig(steps=plan.steps, ngf=plan.ngf, ndf=plan.ndf, precision=plan.precision,
                             lr_decay=plan.lr_decay, upsample=plan.upsample, learning_rate=plan.learning_rate,
                             reference=plan.reference, residual=plan.residual, swap_parts=plan.swap_parts,
                             resume=resumed, checkpoint_every=every)
        result = train(data, run, chosen,
                       progress=progress, defaults=TrainConfig(**defaults, resume=resumed, checkpoint_every=every),
                       on_checkpoint=early)
        if result.interrupted:
            raise KeyboardInterrupt
    memory.note("train", peak_gb())

    if exported_steps(model) == _handed_over(run):
        log.info(f"3/4 export: {model} is up to date, kept")
        _kept("export")
    else:
        log.info(f"3/4 export: {model}")
        with _stage("export"), ticker("export"):
            said = memory.stage("export", "export", str(run), "-o", str(model))
        log.info(f"    {said.partition(': ')[2].rpartition('; sidecar')[0]}")
        evaluation.unlink(missing_ok=True)
    if not openvino_missing() and not int8_is_current(model):
        log.info(f"3/4 export: int8 copy of {model} for OpenVINO, checked against fp32 on held-out sketches")
        with _stage("int8"), ticker("int8 copy"):
            said = memory.stage("int8", "quantize", str(model), str(data))
        for line in said.splitlines()[1:]:
            log.info(f"    {line}")
        evaluation.unlink(missing_ok=True)

    if evaluation.exists():
        log.info(f"4/4 evaluation: {evaluation} is up to date, kept")
        _kept("evaluate")
    else:
        log.info(f"4/4 evaluation on the held-out frames: {evaluation}")
        with _stage("evaluate"), ticker("evaluate"):
            memory.stage("evaluate", "evaluate", str(model), str(data), "--detector", config.detector,
                         "--json", str(evaluation), "--grid", str(grid))
            keep_evaluation(work, evaluation)
    memory.write()
    log.info(f"peak memory per stage: {memory.describe()}")
    return json.loads(evaluation.read_text())


class StageMemory:
    """Quickstart's peak resident memory per stage (GB), kept in ``WORKDIR/quickstart.json`` across
    runs: the stages in this process (prepare, train) as its own peak after each, those run apart
    (export, int8, evaluate: ``stage``) as theirs. Stages apart leave this process's memory to
    training: TensorFlow's export and NNCF never share a process with the training loop."""

    STAGES = ("prepare", "train", "export", "int8", "evaluate")

    def __init__(self, work: Path) -> None:
        self.path = work / "quickstart.json"
        try:
            self.peaks: dict[str, float] = json.loads(self.path.read_text())["peak_memory_gb"]
        except (OSError, ValueError, KeyError, TypeError):
            self.peaks = {}
        self._fresh: set[str] = set()  # stages noted in this invocation

    def note(self, name: str, peak: float | None) -> None:
        """Record a stage's peak (the highest of its runs in this invocation)."""
        if peak is not None:
            self.peaks[name] = peak if name not in self._fresh else max(peak, self.peaks[name])
            self._fresh.add(name)

    def stage(self, name: str, *command: str) -> str:
        """`face2face COMMAND` in a process of its own (where the generator's onnxruntime may also
        load its CUDA and cuDNN: this one holds TensorFlow's, and both are libcudnn.so.9); its log
        lines are passed on, its error raised here, its peak noted; returns its stdout."""
        verbosity = {logging.DEBUG: ["--verbose"], logging.INFO: []}.get(log.getEffectiveLevel(), ["--quiet"])
        status, out, err, peak = run_apart([sys.executable, "-m", "face2face", *command, *verbosity])
        said, _, error = err.rpartition("face2face: error: ")
        sys.stderr.write(said if status else err)
        if status:
            raise Face2FaceError(error.strip() or f"{command[0]} stopped (exit status {status})")
        self.note(name, peak)
        return out

    def write(self) -> None:
        """Store the figures (atomically), in the stages' order."""
        ordered = {name: self.peaks[name] for name in self.STAGES if name in self.peaks}
        write_atomic(self.path, json.dumps({"peak_memory_gb": ordered}, indent=2).encode())

    def describe(self) -> str:
        """e.g. "prepare 0.9, train 2.4, export 1.9, int8 1.0, evaluate 0.6 GB"."""
        return ", ".join(f"{k} {self.peaks[k]:.1f}" for k in self.STAGES if k in self.peaks) + " GB"


class EarlyModels:
    """While training runs: the model to drive before it ends. Once ``first_after`` seconds of
    training have passed, the first checkpoint whose best weights (``face2face.train.holdout``)
    are new is exported to the model file (atomically: ``export``), and so again every
    ``first_after`` seconds or more, and never so often that exporting (training waits for it)
    takes more than ``EXPORT_SHARE`` of the time; the first prints the live line, and a running
    ``live`` switches to each new one."""

    def __init__(self, run: Path, model: Path, first_after: float, memory: StageMemory) -> None:
        self.run, self.model, self.first_after, self.memory = run, model, first_after, memory
        self.started = time.monotonic()
        self.wait = first_after
        self.exported = exported_steps(model)

    def __call__(self, step: int, best: int | None) -> None:
        now = time.monotonic()
        if best is None or best == self.exported or now - self.started < self.wait:
            return
        self.memory.stage("export", "export", str(self.run), "-o", str(self.model))  # apart: see StageMemory
        first, self.exported, self.started = self.exported is None, exported_steps(self.model), time.monotonic()
        self.wait = max(self.first_after, (self.started - now) * (1.0 / EXPORT_SHARE - 1.0))
        log.info(f"    step {step}: {self.model} now holds the weights of step {self.exported}"
                 + (f"; drive it while training goes on: {live_command(self.model)}" if first else ""))
        report_progress("model", steps=self.exported, path=str(self.model), first=first)


EVALUATIONS = "evaluations"  # WORKDIR/evaluations/step-N.json: every final model's evaluation, kept


def keep_evaluation(work: Path, evaluation: Path) -> None:
    """Keep a copy of the final model's evaluation under its training steps, so that later models
    of the same target can be set beside it."""
    steps = exported_steps(work / "model.onnx")
    if steps is not None:
        (work / EVALUATIONS).mkdir(exist_ok=True)
        write_atomic(work / EVALUATIONS / f"step-{steps}.json", evaluation.read_bytes())


@contextmanager
def _stage(name: str) -> Iterator[None]:
    """A stage's start and (when it ends without an error) its end, for a watching program."""
    report_progress("stage", stage=name, state="start")
    yield
    report_progress("stage", stage=name, state="done")


def _kept(name: str) -> None:
    """A stage found complete from an earlier run, for a watching program."""
    report_progress("stage", stage=name, state="kept")


def checkpoint_interval(steps: int) -> int:
    """Steps between checkpoints: ten per run, at most the training default apart (a crash loses
    at most a tenth of the run)."""
    return max(1, min(TrainConfig.checkpoint_every, steps // 10))


def _step_of(checkpoint: str | None) -> int:
    return int(checkpoint.rsplit("-", 1)[1]) if checkpoint else 0  # named ckpt-STEP


def _handed_over(run: Path) -> int:
    """The step of the weights ``export`` takes from the run: its best where it kept one, else its last."""
    import tensorflow as tf

    return _step_of(tf.train.latest_checkpoint(str(run / BEST)) or tf.train.latest_checkpoint(str(run / CHECKPOINTS)))


def exported_steps(model: Path) -> int | None:
    """The training steps behind a model file (None where there is none, or no sidecar)."""
    from face2face.modelfile import read_sidecar

    try:
        return read_sidecar(model).steps
    except Face2FaceError:
        return None

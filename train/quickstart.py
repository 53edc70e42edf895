"""`face2face quickstart`: prepare -> train -> export (+ int8 copy) -> evaluate in one resumable command.

Each stage leaves a marker of completion (the dataset manifest, the run's final checkpoint, the
model's sidecar and its int8 copy's source hash, the evaluation JSON); running again skips what
is done and resumes training from its last checkpoint.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from face2face.console import Counter, plural, ticker
from face2face.errors import Face2FaceError
from face2face.train.options import CHECKPOINTS, TrainConfig
from face2face.video import VideoSource

log = logging.getLogger(__name__)

# Seconds per training step at 256 px, batch 1, measured on a 2-core CPU (scripts/train_speed.py);
# the GPU figures are a conservative guess for a mid-range card, not a measurement.
SECONDS_PER_STEP = {("cpu", 32): 0.35, ("cpu", 64): 0.76, ("gpu", 32): 0.02, ("gpu", 64): 0.04}
# Defaults: a usable model in well under an hour on a CPU-only laptop, a better one on a GPU.
DEFAULTS = {"cpu": {"ngf": 32, "steps": 6000}, "gpu": {"ngf": 64, "steps": 40000}}
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

    device: str  # cpu | gpu
    ngf: int
    steps: int
    frames: int  # frames of the video that prepare reads
    seconds_per_step: float

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
            stages.append(f"{self.steps} training steps at ngf {self.ngf} on {self.device.upper()}{resuming}")
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


def make_plan(video: str, config: QuickstartConfig, gpu: bool) -> Plan:
    """Choose steps and width for the hardware, and the training speed to expect."""
    device = "gpu" if gpu else "cpu"
    ngf = config.ngf or DEFAULTS[device]["ngf"]
    steps = config.steps or DEFAULTS[device]["steps"]
    with VideoSource(video) as source:
        frames = -(-(source.frame_count or 0) // config.every)
    per_step = SECONDS_PER_STEP.get((device, ngf), SECONDS_PER_STEP[(device, 64)] * (ngf / 64) ** 2)
    return Plan(device, ngf, steps, frames, per_step * (config.size / 256) ** 2)


def live_command(model: Path) -> str:
    """The command that drives the trained model from a webcam."""
    return f"face2face live --model {model} --virtual-cam --preview"


def quickstart(video: str, workdir: str | Path, config: QuickstartConfig = QuickstartConfig()) -> dict:
    """Run (or resume) the whole offline path, with progress; returns the evaluation report."""
    check_config(config)
    plan = make_plan(video, config, gpu=False)  # a bad video fails here, before TensorFlow loads; GPU below
    import tensorflow as tf

    from face2face.runtime.openvino_engine import int8_is_current, openvino_missing
    from face2face.train.evaluate import EvaluateConfig, evaluate
    from face2face.train.export import export
    from face2face.train.prepare import MANIFEST, PrepareConfig, describe_dataset, prepare
    from face2face.train.trainer import train

    work = Path(workdir)
    data, run, model = work / "data", work / "run", work / "model.onnx"
    evaluation, grid = work / "evaluation.json", work / "evaluation.png"
    if tf.config.list_physical_devices("GPU"):
        plan = make_plan(video, config, gpu=True)
    checkpoint = tf.train.latest_checkpoint(str(run / CHECKPOINTS))  # named ckpt-STEP
    int8_due = not openvino_missing() and not int8_is_current(model)
    exported = _exported_steps(model) == plan.steps and not int8_due
    done = Done(dataset=(data / MANIFEST).exists(), steps=int(checkpoint.rsplit("-", 1)[1]) if checkpoint else 0,
                exported=exported, evaluated=exported and evaluation.exists())
    log.info(plan.describe(done))
    work.mkdir(parents=True, exist_ok=True)

    if done.dataset:
        log.info(f"1/4 dataset: {data} is complete, kept")
    else:
        log.info(f"1/4 dataset: preparing {data}")
        with Counter("prepare", "frame") as progress:
            manifest = prepare([video], data, PrepareConfig(every=config.every, size=config.size,
                                                            detector=config.detector, pupils=config.pupils),
                               progress=progress)
        log.info(f"    {describe_dataset(manifest)}")

    log.info(f"2/4 training: {'resuming' if checkpoint else 'starting'} {run}")
    defaults = DEFAULTS[plan.device]  # quickstart's own choices are not "changed" options
    with Counter("train", "step") as progress:
        every = checkpoint_interval(plan.steps)
        resumed = bool(checkpoint)
        result = train(data, run, TrainConfig(steps=plan.steps, ngf=plan.ngf, resume=resumed, checkpoint_every=every),
                       progress=progress, defaults=TrainConfig(**defaults, resume=resumed, checkpoint_every=every))
    if result.interrupted:
        raise KeyboardInterrupt

    if _exported_steps(model) == result.step:
        log.info(f"3/4 export: {model} is up to date, kept")
    else:
        log.info(f"3/4 export: {model}")
        with ticker("export"):
            export_report = export(run, model)
        log.info(f"    {export_report.summary()}")
        evaluation.unlink(missing_ok=True)
    if not openvino_missing() and not int8_is_current(model):
        from face2face.train.quantize import quantize

        log.info(f"3/4 export: int8 copy of {model} for OpenVINO, checked against fp32 on held-out sketches")
        made = quantize(model, data)  # NNCF shows its own progress
        log.info(f"    {made.psnr_vs_fp32_min:.1f} dB from fp32 at worst: "
                 + ("live runs it by default" if made.default else "kept off by default (under 40 dB)"))
        evaluation.unlink(missing_ok=True)

    if evaluation.exists():
        log.info(f"4/4 evaluation: {evaluation} is up to date, kept")
        report = json.loads(evaluation.read_text())
    else:
        log.info(f"4/4 evaluation on the held-out frames: {evaluation}")
        with ticker("evaluate"):
            report = evaluate(model, data, EvaluateConfig(detector=config.detector), json_path=evaluation,
                              grid_path=grid)
    return report


def checkpoint_interval(steps: int) -> int:
    """Steps between checkpoints: ten per run, at most the training default apart (a crash loses
    at most a tenth of the run)."""
    return max(1, min(TrainConfig.checkpoint_every, steps // 10))


def _exported_steps(model: Path) -> int | None:
    from face2face.modelfile import read_sidecar

    try:
        return read_sidecar(model).steps
    except Face2FaceError:
        return None

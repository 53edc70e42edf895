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
from typing import Callable

from face2face.errors import Face2FaceError
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
class Plan:
    """What quickstart will do and how long it expects to take."""

    device: str  # cpu | gpu
    ngf: int
    steps: int
    frames: int
    seconds: float

    def describe(self) -> str:
        """One line for the user before anything starts."""
        minutes = self.seconds / 60
        return (f"plan: {self.frames} frames -> dataset, {self.steps} training steps at ngf {self.ngf} on "
                f"{self.device.upper()}, export (+ int8 copy), evaluate; expected about {minutes:.0f} min")


def make_plan(video: str, config: QuickstartConfig, gpu: bool) -> Plan:
    """Choose steps and width for the hardware and estimate the total time."""
    device = "gpu" if gpu else "cpu"
    ngf = config.ngf or DEFAULTS[device]["ngf"]
    steps = config.steps or DEFAULTS[device]["steps"]
    with VideoSource(video) as source:
        frames = (source.frame_count or 0) // config.every
    per_step = SECONDS_PER_STEP.get((device, ngf), SECONDS_PER_STEP[(device, 64)] * (ngf / 64) ** 2)
    per_step *= (config.size / 256) ** 2
    train_pairs, test_pairs = 0.8 * frames, 0.2 * frames
    settle = train_pairs * per_step / 3  # one forward pass per train pair, ~1/3 of a step
    seconds = frames / PREPARE_FPS + steps * per_step + settle + 50 + test_pairs * 0.3  # + export, int8, evaluate
    return Plan(device, ngf, steps, frames, seconds)


def live_command(model: Path) -> str:
    """The command that drives the trained model from a webcam."""
    return f"face2face live --model {model} --virtual-cam --preview"


def quickstart(
    video: str,
    workdir: str | Path,
    config: QuickstartConfig = QuickstartConfig(),
    announce: Callable[[str], None] = log.info,
    train_progress: Callable[[int, int, dict[str, float]], None] | None = None,
) -> dict:
    """Run (or resume) the whole offline path; returns the evaluation report."""
    import tensorflow as tf

    from face2face.runtime.openvino_engine import int8_is_current, openvino_missing
    from face2face.train.evaluate import EvaluateConfig, evaluate
    from face2face.train.export import export
    from face2face.train.prepare import MANIFEST, PrepareConfig, prepare
    from face2face.train.trainer import CHECKPOINTS, TrainConfig, train

    work = Path(workdir)
    data, run, model = work / "data", work / "run", work / "model.onnx"
    evaluation, grid = work / "evaluation.json", work / "evaluation.png"
    plan = make_plan(video, config, bool(tf.config.list_physical_devices("GPU")))
    announce(plan.describe())
    work.mkdir(parents=True, exist_ok=True)

    if (data / MANIFEST).exists():
        announce(f"1/4 dataset: {data} is complete, kept")
    else:
        announce(f"1/4 dataset: preparing {data}")
        prepare([video], data, PrepareConfig(every=config.every, size=config.size, detector=config.detector,
                                             pupils=config.pupils))

    resume = bool(tf.train.latest_checkpoint(str(run / CHECKPOINTS)))
    announce(f"2/4 training: {'resuming' if resume else 'starting'} {run}")
    result = train(data, run, TrainConfig(steps=plan.steps, ngf=plan.ngf, resume=resume), progress=train_progress)
    if result.interrupted:
        raise KeyboardInterrupt

    if model.exists() and _exported_steps(model) == result.step:
        announce(f"3/4 export: {model} is up to date, kept")
    else:
        announce(f"3/4 export: {model}")
        export(run, model)
        evaluation.unlink(missing_ok=True)
    if not openvino_missing() and not int8_is_current(model):
        from face2face.train.quantize import quantize

        announce(f"3/4 export: int8 copy of {model} for OpenVINO, checked against fp32 on held-out sketches")
        made = quantize(model, data)
        announce(f"    {made.psnr_vs_fp32_min:.1f} dB from fp32 at worst: "
                 + ("live runs it by default" if made.default else "kept off by default (under 40 dB)"))
        evaluation.unlink(missing_ok=True)

    if evaluation.exists():
        announce(f"4/4 evaluation: {evaluation} is up to date, kept")
        report = json.loads(evaluation.read_text())
    else:
        announce(f"4/4 evaluation on the held-out frames: {evaluation}")
        report = evaluate(model, data, EvaluateConfig(detector=config.detector), json_path=evaluation, grid_path=grid)
    return report


def _exported_steps(model: Path) -> int | None:
    from face2face.modelfile import read_sidecar

    try:
        return read_sidecar(model).steps
    except Face2FaceError:
        return None

"""Training options and the run folder's record of them (no TensorFlow here: a command can
check its options and folders before TensorFlow loads)."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from face2face.errors import Face2FaceError

LAMBDA_L1 = 100.0  # weight of the L1 term against the GAN term (the paper's)
FEATURE_MATCHING = 10.0  # weight of the discriminator feature-matching term (pix2pixHD's; 0 = the paper's losses)
CONFIG = "config.json"  # in a run folder: resolved options and what differs from the defaults
CHECKPOINTS = "checkpoints"  # in a run folder: tf.train.CheckpointManager's folder
BEST = "best"  # in a run folder: the checkpoint of the weights that scored best on the held-back pairs
REFERENCES = ("bank", "none")  # what the generator reads besides the sketch (TrainConfig.reference)
UPSAMPLING = ("transpose", "resize")  # the generator's decoder: the paper's transposed convolutions, or resize-convolutions
SCORES = "scores.json"  # in a run folder: the held-out score at each checkpoint, and the best step


@dataclass(frozen=True)
class TrainConfig:
    """How a generator is trained (the CLI builds it; ``config.json`` records it)."""

    steps: int | None = None  # total steps; None = from epochs
    epochs: float | None = None  # passes over the train split when steps is None (None = 200, the paper's)
    batch_size: int = 1  # global batch (the paper: 1)
    ngf: int = 64  # generator width (64 = the paper, 32 = faster)
    ndf: int = 64  # discriminator width
    upsample: Literal["transpose", "resize"] = "transpose"  # decoder upsampling (UPSAMPLING)
    learning_rate: float = 2e-4
    beta_1: float = 0.5
    lambda_l1: float = LAMBDA_L1
    feature_matching: float = FEATURE_MATCHING
    detail_weight: float = 0.0  # weight of the local detail-amplitude term (0 = off; ``pix2pix.local_detail``)
    parts_weight: float = 0.0  # extra L1 weight around the eyes and lips (0 = the paper's plain L1)
    ema: float = 0.0  # decay of the generator's weight average handed over instead of its weights (0 = off)
    lr_decay: float = 0.0  # final share of steps over which the learning rate falls linearly to 0 (0 = constant)
    warp: bool = False  # also rotate, scale and shift each pair (``face2face.train.data.warp``)
    reference: Literal["bank", "none"] = "bank"  # the generator also reads the target's own pixels
    # warped onto the sketch (``face2face.reference``), or the sketch alone (the paper's, and models made before)
    blend: bool = False  # with a reference: the face copies it through a soft mask the generator draws (``pix2pix.CopyBlend``)
    # with a reference: the face is the reference plus a correction the generator draws (``pix2pix.AddReference``);
    # None: on with the bank unless ``blend``, and a resumed run as it was trained (``resolve_residual``)
    residual: bool | None = None
    smooth_correction: float = 0.0  # with residual: sigma (px) of a fixed Gaussian the correction passes (0 = off)
    swap_parts: float = 0.0  # with a reference: share of training pairs whose reference shows another crop's mouth and eyes
    settle_fraction: float = 0.1  # final share of steps with frozen batch-norm statistics (0 = off)
    holdout: float = 0.05  # last share of the train split held back to choose the weights handed over (0 = off)
    checkpoint_every: int = 1000  # steps between checkpoints
    sample_every: int = 500  # steps between sample grids / TensorBoard images
    log_every: int = 50  # steps between TensorBoard scalars
    keep_checkpoints: int = 3
    samples: int = 4  # test pairs in each sample grid
    strategy: Literal["auto", "default", "mirrored", "multiworker"] = "auto"
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"  # compute; weights, outputs and losses stay float32
    xla: bool | None = None  # None = on when a GPU is used
    adam: Literal["fused", "keras"] = "fused"  # Adam's update: one kernel per weight, or Keras's ops (the same math)
    seed: int = 0
    resume: bool = False


def check_train_config(config: TrainConfig) -> None:
    """A one-line error for options that cannot train."""
    if config.steps is not None and config.epochs is not None:
        raise Face2FaceError("give --steps or --epochs, not both")
    for name in ("batch_size", "ngf", "ndf", "checkpoint_every", "sample_every", "log_every", "keep_checkpoints"):
        if getattr(config, name) < 1:
            raise Face2FaceError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(config, name)}")
    if (config.steps is not None and config.steps < 1) or (config.epochs is not None and config.epochs <= 0):
        raise Face2FaceError("--steps / --epochs must be positive")
    for name in ("feature_matching", "parts_weight", "detail_weight"):
        if getattr(config, name) < 0:
            raise Face2FaceError(f"--{name.replace('_', '-')} must be at least 0, got {getattr(config, name)}")
    if not 0.0 <= config.lr_decay < 1.0:
        raise Face2FaceError(f"--lr-decay must be in [0, 1), got {config.lr_decay}")
    if not 0.0 <= config.holdout <= 0.5:
        raise Face2FaceError(f"--holdout must be in [0, 0.5], got {config.holdout}")
    if not 0.0 <= config.settle_fraction < 1.0:
        raise Face2FaceError(f"--settle-fraction must be in [0, 1), got {config.settle_fraction}")
    if not 0.0 <= config.ema < 1.0:
        raise Face2FaceError(f"--ema must be in [0, 1), got {config.ema}")
    if config.blend and config.reference != "bank":
        raise Face2FaceError("--blend copies the reference: it needs --reference bank")
    if config.residual and config.reference != "bank":
        raise Face2FaceError("--residual corrects the reference: it needs --reference bank")
    if not 0.0 <= config.swap_parts < 1.0:
        raise Face2FaceError(f"--swap-parts must be in [0, 1), got {config.swap_parts}")
    if config.swap_parts and config.reference != "bank":
        raise Face2FaceError("--swap-parts swaps parts of the reference: it needs --reference bank")
    if config.smooth_correction < 0:
        raise Face2FaceError(f"--smooth-correction must be 0 or more, got {config.smooth_correction}")
    if config.smooth_correction and (config.reference != "bank" or config.blend or config.residual is False):
        raise Face2FaceError("--smooth-correction blurs the reference's correction: it needs --residual")
    if config.residual and config.blend:
        raise Face2FaceError("give --blend or --residual, not both")
    if config.ema and not config.holdout:
        raise Face2FaceError("--ema needs held-back pairs (--holdout above 0): the average is handed over as the "
                             "weights they score best")


def resolve_residual(config: TrainConfig, run_dir: str | Path | None = None) -> TrainConfig:
    """``config`` with ``residual`` decided where it was left to the default (None); resuming the
    run in ``run_dir``, as that run was trained."""
    if config.residual is not None:
        return config
    if config.resume and run_dir is not None and (Path(run_dir) / CONFIG).is_file():  # as the run was trained (before the option: off)
        return replace(config, residual=bool(read_run_config(run_dir)["options"].get("residual", False)))
    return replace(config, residual=config.reference == "bank" and not config.blend)


def read_run_config(run_dir: str | Path) -> dict:
    """A run's ``config.json``, or a one-line error."""
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise Face2FaceError(f"{run_dir}: no {CONFIG}; not a training run folder (see `face2face train`)")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise Face2FaceError(f"{path}: unreadable ({exc})") from None

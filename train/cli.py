"""Command-line entries of the offline side (no TensorFlow import until a command's options and
folders have been checked)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from face2face.console import Counter, plural, ticker
from face2face.errors import Face2FaceError
from face2face.files import writable_file, writable_folder, write_atomic

log = logging.getLogger("face2face")


def add_commands(commands) -> None:
    """Register ``prepare``, ``quickstart``, ``train``, ``export``, ``quantize`` and ``evaluate`` on the main parser."""
    from face2face.cli import (add_command, add_detector_option, add_shape_limit_option, fraction, image_size,
                               non_negative_float, non_negative_int, opset, positive_float, positive_int)
    from face2face.runtime.generator import PRECISIONS, PROVIDERS
    from face2face.train.options import FEATURE_MATCHING, LAMBDA_L1, REFERENCES, UPSAMPLING

    p = add_command(commands, "prepare", "turn target video(s) into a paired training dataset",
                    "Turn target video(s) into a paired training dataset: one (landmark sketch | face photo) "
                    "pair per frame with exactly one usable face, split by time into train and test.")
    p.add_argument("videos", nargs="+", metavar="VIDEO", help="video(s) of the target face")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="dataset folder to write")
    p.add_argument("--every", type=positive_int, default=1, metavar="N", help="keep every N-th frame")
    p.add_argument("--size", type=image_size, default=256, help="crop size in px")
    p.add_argument("--max-pairs", type=positive_int, default=None, metavar="N", help="stop after N pairs (default: no limit)")
    p.add_argument("--test-fraction", type=fraction, default=0.2, metavar="F", help="last share of each video held out")
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset in DIR")
    p.add_argument("--no-pupils", dest="pupils", action="store_false",
                   help="sketches without pupils (the output's gaze then ignores the driver's)")
    add_detector_option(p)
    p.set_defaults(handler=_prepare)
    add_quickstart(commands)

    p = add_command(commands, "train", "train the pix2pix generator on a dataset folder",
                    "Train the pix2pix generator on a dataset folder; Ctrl-C saves a checkpoint, --resume continues.")
    p.add_argument("data", metavar="DATA", help="dataset folder made by `face2face prepare`")
    p.add_argument("-o", "--output", required=True, metavar="RUN", help="run folder (config, checkpoints, logs, samples)")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--steps", type=positive_int, help="total training steps (default: from --epochs)")
    length.add_argument("--epochs", type=positive_float, help="passes over the train split (default 200, as the paper)")
    p.add_argument("--batch-size", type=positive_int, default=1, help="global batch size (1 = the paper)")
    p.add_argument("--ngf", type=positive_int, default=64, help="generator width (64 = the paper, 32 = 4x cheaper)")
    p.add_argument("--ndf", type=positive_int, default=64, help="discriminator width (64 = the paper)")
    p.add_argument("--upsample", default="transpose", choices=UPSAMPLING,
                   help="decoder upsampling: the paper's transposed convolutions, or resize-convolutions "
                        "(nearest 2x then 3x3: no checkerboard, same cost; exported as transposed ones)")
    p.add_argument("--resume", action="store_true", help="continue the run in RUN from its latest checkpoint")
    p.add_argument("--checkpoint-every", type=positive_int, default=1000, metavar="N", help="steps between checkpoints")
    p.add_argument("--sample-every", type=positive_int, default=500, metavar="N", help="steps between sample grids")
    p.add_argument("--learning-rate", type=positive_float, default=2e-4, metavar="R",
                   help="Adam's learning rate (the paper's 2e-4, for batch 1)")
    p.add_argument("--lr-decay", type=fraction, default=0.0, metavar="F",
                   help="final share of steps over which the learning rate falls linearly to 0, as in the paper "
                        "(0.5); 0 keeps it constant")
    p.add_argument("--l1-weight", type=positive_float, default=LAMBDA_L1, metavar="W",
                   help="weight of the L1 term against the adversarial one (the paper's 100; lower trades pixel "
                        "error for texture)")
    p.add_argument("--feature-matching", type=non_negative_float, default=FEATURE_MATCHING, metavar="W",
                   help="weight of pix2pixHD's discriminator feature-matching loss (sharper eyes and mouth, "
                        "lower test error); 0 = the paper's losses exactly")
    p.add_argument("--detail-weight", type=non_negative_float, default=0.0, metavar="W",
                   help="weight of a loss asking each 16-px cell of the face for as much fine detail as the "
                        "photo has there (texture against the L1 term's blur); 0 = off, the paper's losses")
    p.add_argument("--ema", type=fraction, default=0.0, metavar="DECAY",
                   help="hand over an exponential moving average of the generator's weights (e.g. 0.999) "
                        "instead of the weights themselves; 0 = off")
    p.add_argument("--parts-weight", type=non_negative_float, default=0.0, metavar="W",
                   help="weigh the L1 loss 1+W times around the eyes and lips; 0 = the paper's plain L1")
    p.add_argument("--warp", action="store_true",
                   help="before the paper's jitter, rotate (up to 10 degrees), scale (10%%) and shift (5%%) each "
                        "sketch and photo together: head poses the target video never showed")
    p.add_argument("--reference", default="bank", choices=REFERENCES,
                   help="bank: the generator also reads the target's own photos, the ones nearest in face "
                        "shape warped onto the sketch (sharper, truer detail); none: the sketch alone, as "
                        "in the paper")
    p.add_argument("--blend", action="store_true",
                   help="with --reference bank: the generator also draws a soft mask, and the face copies the "
                        "reference where the mask is on and draws it where off (few-shot vid2vid's blend)")
    p.add_argument("--residual", action=argparse.BooleanOptionalAction, default=None,
                   help="with --reference bank: the face is the reference plus a correction the generator "
                        "draws, so the reference's detail reaches the face at full resolution (default: on "
                        "with the bank, unless --blend; --no-residual: the generator redraws the whole face)")
    p.add_argument("--smooth-correction", type=float, default=0.0, metavar="SIGMA",
                   help="with --residual: the correction passes a fixed Gaussian blur of SIGMA px before it is "
                        "added, so the finest detail is the reference's own and none is invented (0 = off)")
    p.add_argument("--swap-parts", type=fraction, default=0.0, metavar="P",
                   help="with --reference bank: this share of training pairs get a reference whose mouth and eyes "
                        "come from another photo of the target, so the generator learns to redraw what the "
                        "sketch changes (an open mouth over a closed one); 0 = off")
    p.add_argument("--settle-fraction", type=fraction, default=0.1, metavar="F",
                   help="final share of steps trained with frozen batch-norm statistics, as exported (0 = off)")
    p.add_argument("--holdout", type=fraction, default=0.05, metavar="F",
                   help="last share of the train split held back from training; the weights scored best on it "
                        "at a checkpoint are the ones `export` takes (0 = off: the last weights)")
    p.add_argument("--strategy", default="auto", choices=("auto", "default", "mirrored", "multiworker"),
                   help="tf.distribute strategy (auto: multiworker with TF_CONFIG, mirrored on 2+ GPUs)")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"),
                   help="compute precision: bf16 runs on matrix units (AMX, AVX-512 BF16, recent GPUs), fp16 on "
                        "GPUs only (with loss scaling); weights, outputs and losses stay float32"),
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the weights, shuffling and jitter")
    p.set_defaults(handler=_train)

    p = add_command(commands, "export", "export a trained generator to ONNX (+ sidecar JSON)",
                    "Export a trained generator to ONNX with its sidecar JSON, checked against TensorFlow "
                    "on test sketches.")
    p.add_argument("run", metavar="RUN", help="run folder made by `face2face train`")
    p.add_argument("-o", "--output", required=True, metavar="MODEL.onnx", help="model file to write")
    p.add_argument("--fp16", action="store_true", help="float16 weights and compute (I/O stays float32)")
    p.add_argument("--opset", type=opset, default=17, help="ONNX opset")
    p.add_argument("--last", action="store_true",
                   help="the run's last weights, not those that scored best on its held-back pairs")
    p.set_defaults(handler=_export)

    p = add_command(commands, "quantize", "make the int8 copy of an exported generator for OpenVINO "
                    "(calibrated on its training sketches)")
    p.add_argument("model", metavar="MODEL.onnx", help="exported generator; writes MODEL.int8.xml/.bin beside it")
    p.add_argument("data", metavar="DATA", help="the dataset folder the model was trained on")
    p.add_argument("--sketches", type=positive_int, default=100, help="training sketches to calibrate on")
    p.set_defaults(handler=_quantize)

    p = add_command(commands, "evaluate", "score an exported generator on a dataset split",
                    "Score an exported generator on the held-out frames of its dataset (L1, PSNR, SSIM, face "
                    "rate, landmark distance, identity, pupils), or, with --driver, how it renders another person.")
    p.add_argument("model", metavar="MODEL.onnx", help="exported generator (with its .json sidecar)")
    p.add_argument("data", metavar="DATA", help="dataset folder made by `face2face prepare` (quickstart: WORKDIR/data)")
    p.add_argument("--split", default="test", choices=("train", "test"), help="dataset split to score")
    p.add_argument("--json", metavar="OUT", help="write every figure as JSON")
    p.add_argument("--grid", metavar="OUT.png", help="write (sketch | output | photo) rows")
    p.add_argument("--driver", metavar="VIDEO",
                   help="instead of the held-out frames, let the person in VIDEO drive the model and report, per "
                        "retargeting mode: face rate, identity to target and driver, expression and gaze error")
    p.add_argument("--frames", type=positive_int, default=150, help="driver frames per mode with --driver")
    add_shape_limit_option(p)
    p.add_argument("--provider", choices=PROVIDERS, default="auto",
                   help="generator engine: auto = CUDA if usable, else OpenVINO, else onnxruntime CPU")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="generator precision; other than onnxruntime fp32, outputs are also compared to it")
    add_detector_option(p)
    p.set_defaults(handler=_evaluate)


def add_quickstart(commands) -> None:
    """Register ``quickstart``: prepare, train, export and evaluate in one resumable command."""
    from face2face.cli import add_command, add_detector_option, image_size, non_negative_float, positive_int
    from face2face.train.quickstart import FIRST_MODEL_SECONDS

    p = add_command(commands, "quickstart", "from a target video to a live-ready model in one command",
                    "From a target video to a live-ready model in one command: prepare -> train -> export "
                    "(+ int8 copy) -> evaluate. Prints its plan first; run it again to continue where it stopped.")
    p.add_argument("video", metavar="TARGET.mp4", help="video of the target face (a minute or more, well lit)")
    p.add_argument("-o", "--output", default="face2face-work", metavar="WORKDIR",
                   help="working folder: data/, run/, model.onnx, evaluation.json/.png")
    p.add_argument("--steps", type=positive_int, help="training steps (default: 3600 on CPU, 10800 where the CPU has native bf16, 40000 on GPU)")
    p.add_argument("--ngf", type=positive_int, help="generator width (default: 32 on CPU, 64 on GPU)")
    p.add_argument("--every", type=positive_int, default=1, metavar="N", help="keep every N-th frame")
    p.add_argument("--size", type=image_size, default=256, help="crop and generator size in px")
    p.add_argument("--no-pupils", dest="pupils", action="store_false",
                   help="sketches without pupils (the output's gaze then ignores the driver's)")
    p.add_argument("--first-model", type=non_negative_float, default=FIRST_MODEL_SECONDS / 60, metavar="MIN",
                   help="minutes of training before a first model is exported to drive while training goes on "
                        "(then again as often, when the weights scored better, and never for more than half "
                        "of training's time)")
    add_detector_option(p)
    p.set_defaults(handler=_quickstart)


def _quickstart(args: argparse.Namespace) -> int:
    from face2face.train.evaluate import format_table
    from face2face.train.quickstart import QuickstartConfig, live_command, quickstart

    writable_folder(args.output)
    config = QuickstartConfig(steps=args.steps, ngf=args.ngf, every=args.every, size=args.size, detector=args.detector,
                              pupils=args.pupils, first_model_seconds=60 * args.first_model)
    try:
        report = quickstart(args.video, args.output, config)
    except KeyboardInterrupt:
        log.warning("stopped; run the same command again to continue where it stopped")
        return 130
    print(format_table(report))
    work = Path(args.output)
    print(f"evaluation: {work / 'evaluation.json'} (every figure), {work / 'evaluation.png'} "
          "(sketch | output | photo rows)")
    model = work / "model.onnx"
    print(f"\nnext: {live_command(model)}")
    print(f"  (needs a webcam and a virtual camera) or, on a video file: "
          f"face2face live --model {model} --source DRIVER.mp4 --record out.mp4")
    return 0


def _prepare(args: argparse.Namespace) -> int:
    from face2face.coverage import describe as describe_coverage
    from face2face.coverage import table as coverage_table
    from face2face.train.prepare import COVERAGE_PICTURE, PrepareConfig, describe_dataset, prepare

    writable_folder(args.output)
    config = PrepareConfig(
        every=args.every, size=args.size, max_pairs=args.max_pairs,
        test_fraction=args.test_fraction, detector=args.detector, pupils=args.pupils, overwrite=args.overwrite,
    )
    with Counter("prepare", "frame") as progress:
        manifest = prepare(args.videos, args.output, config, progress=progress)
    print(f"{args.output}: {describe_dataset(manifest)}")
    print(coverage_table(manifest["coverage"]))
    for line in describe_coverage(manifest["coverage"]):
        print(line)
    print(f"coverage picture: {Path(args.output) / COVERAGE_PICTURE} (the drivers' range grey, the target's frames blue)")
    return 0


def _train(args: argparse.Namespace) -> int:
    from face2face.train.options import TrainConfig, check_train_config
    from face2face.train.prepare import read_manifest

    config = TrainConfig(
        steps=args.steps, epochs=args.epochs, batch_size=args.batch_size, ngf=args.ngf, ndf=args.ndf,
        upsample=args.upsample, checkpoint_every=args.checkpoint_every, sample_every=args.sample_every,
        learning_rate=args.learning_rate, lr_decay=args.lr_decay, lambda_l1=args.l1_weight,
        feature_matching=args.feature_matching, detail_weight=args.detail_weight, parts_weight=args.parts_weight,
        ema=args.ema,
        warp=args.warp, reference=args.reference, blend=args.blend, residual=args.residual,
        smooth_correction=args.smooth_correction, swap_parts=args.swap_parts,
        settle_fraction=args.settle_fraction, holdout=args.holdout,
        strategy=args.strategy, precision=args.precision, seed=args.seed, resume=args.resume,
    )
    check_train_config(config)  # before TensorFlow loads
    read_manifest(args.data)
    writable_folder(args.output)
    from face2face.train.holdout import TOLERANCE, read_scores
    from face2face.train.threads import use_training_threads
    from face2face.train.trainer import train

    use_training_threads()
    with Counter("train", "step") as progress:
        result = train(args.data, args.output, config, progress=progress)
    where = f"checkpoint {result.checkpoint}" if result.checkpoint else "checkpoints are the chief's"
    if result.interrupted:
        print(f"stopped at step {result.step}/{result.total_steps}; {where} (continue with --resume)")
        return 128 + (result.signal or 2)
    memory = f", peak memory {result.peak_memory_gb:.1f} GB" if result.peak_memory_gb is not None else ""
    print(f"trained {plural(result.step, 'step')} ({result.steps_per_second:.2f} steps/s{memory}); {where}")
    if scores := read_scores(args.output):
        lowest = min(scores.scores, key=scores.scores.get)
        what = "the weight average of step" if config.ema else "step"
        print(f"handed over: {what} {scores.best}, face L1 {scores.scores[scores.best]:.4f} on the "
              f"{plural(len(scores.held_out), 'held-back pair')} (the latest within {TOLERANCE:.0%} of the lowest, "
              f"{scores.scores[lowest]:.4f} at step {lowest}); `face2face export` takes it, "
              f"--last the weights of step {result.step}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from face2face.train.options import read_run_config

    read_run_config(args.run)  # before TensorFlow loads
    writable_file(args.output)
    from face2face.train.export import ExportConfig, export

    with ticker("export"):
        report = export(args.run, args.output, ExportConfig(fp16=args.fp16, opset=args.opset, last=args.last))
    print(f"{report.model}: {report.summary()}; sidecar {report.sidecar}")
    return 0


def _quantize(args: argparse.Namespace) -> int:
    from face2face.train.prepare import read_manifest

    if not Path(args.model).is_file():
        raise Face2FaceError(f"{args.model}: no such model file")
    read_manifest(args.data)  # before TensorFlow loads
    from face2face.train.quantize import quantize

    report = quantize(args.model, args.data, args.sketches)  # NNCF shows its own progress
    calibration = plural(report.sketches, "training sketch", "training sketches")
    print(f"{report.model}: int8, calibrated on {calibration} spanning the target's range in {report.seconds:.1f} s")
    print(report.summary())
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from face2face.cli import writable_image
    from face2face.train.prepare import read_manifest

    read_manifest(args.data)
    if args.json:
        writable_file(args.json)
    if args.grid:
        writable_image(args.grid)
    if args.driver:
        from face2face.train.crossdrive import CrossDriveConfig, cross_drive, format_cross_drive
        from face2face.video import VideoSource

        VideoSource(args.driver).close()  # a bad video: its one line, before the generator loads
        with ticker("evaluate"):
            report = cross_drive(args.model, args.data, args.driver, CrossDriveConfig(
                frames=args.frames, provider=args.provider, precision=args.precision, shape_limit=args.shape_limit))
        print(format_cross_drive(report))
    else:
        from face2face.train.evaluate import EvaluateConfig, evaluate, format_table

        with ticker("evaluate"):
            report = evaluate(args.model, args.data, EvaluateConfig(
                split=args.split, detector=args.detector, provider=args.provider, precision=args.precision),
                              grid_path=args.grid)
        print(format_table(report))
    if args.json:
        write_atomic(args.json, json.dumps(report, indent=2).encode())
    return 0

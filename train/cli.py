"""Command-line entries of the offline side (no TensorFlow import until a command runs)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tqdm import tqdm


def add_commands(commands) -> None:
    """Register ``prepare`` (and the other offline commands) on the main parser."""
    from face2face.cli import add_detector_option
    from face2face.runtime.generator import PRECISIONS, PROVIDERS

    p = commands.add_parser("prepare", help="turn target video(s) into a paired training dataset")
    p.add_argument("videos", nargs="+", metavar="VIDEO")
    p.add_argument("-o", "--output", required=True, metavar="DIR")
    p.add_argument("--every", type=int, default=1, help="keep every N-th frame (default 1)")
    p.add_argument("--size", type=int, default=256, help="crop size in px (default 256)")
    p.add_argument("--max-pairs", type=int, default=None, help="stop after this many pairs")
    p.add_argument("--test-fraction", type=float, default=0.2, help="last share of each video held out (default 0.2)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset in DIR")
    p.add_argument("--no-pupils", dest="pupils", action="store_false",
                   help="sketches without pupils (the output's gaze then ignores the driver's)")
    add_detector_option(p)
    p.set_defaults(handler=_prepare)
    add_quickstart(commands)

    p = commands.add_parser("train", help="train the pix2pix generator on a dataset folder")
    p.add_argument("data", metavar="DATA", help="dataset folder made by `face2face prepare`")
    p.add_argument("-o", "--output", required=True, metavar="RUN", help="run folder (config, checkpoints, logs, samples)")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, help="total training steps")
    length.add_argument("--epochs", type=float, help="passes over the train split (default 200, as the paper)")
    p.add_argument("--batch-size", type=int, default=1, help="global batch size (default 1, as the paper)")
    p.add_argument("--ngf", type=int, default=64, help="generator width (64 = the paper, 32 = faster)")
    p.add_argument("--ndf", type=int, default=64, help="discriminator width (default 64, as the paper)")
    p.add_argument("--resume", action="store_true", help="continue the run in RUN from its latest checkpoint")
    p.add_argument("--checkpoint-every", type=int, default=1000, metavar="N", help="steps between checkpoints")
    p.add_argument("--sample-every", type=int, default=500, metavar="N", help="steps between sample grids")
    p.add_argument("--settle-fraction", type=float, default=0.1, metavar="F",
                   help="final share of steps trained with frozen batch-norm statistics, as exported (0 = off)")
    p.add_argument("--strategy", default="auto", choices=("auto", "default", "mirrored", "multiworker"),
                   help="tf.distribute strategy (auto: multiworker with TF_CONFIG, mirrored on 2+ GPUs)")
    p.add_argument("--mixed-precision", action="store_true", help="float16 compute (GPU only)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=_train)

    p = commands.add_parser("export", help="export a trained generator to ONNX (+ sidecar JSON)")
    p.add_argument("run", metavar="RUN", help="run folder made by `face2face train`")
    p.add_argument("-o", "--output", required=True, metavar="MODEL.onnx")
    p.add_argument("--fp16", action="store_true", help="float16 weights and compute (I/O stays float32)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.set_defaults(handler=_export)

    p = commands.add_parser("quantize", help="make the int8 copy of an exported generator for OpenVINO "
                            "(calibrated on its training sketches)")
    p.add_argument("model", metavar="MODEL.onnx", help="exported generator; writes MODEL.int8.xml/.bin beside it")
    p.add_argument("data", metavar="DATA", help="the dataset folder the model was trained on")
    p.add_argument("--sketches", type=int, default=100, help="training sketches to calibrate on (default 100)")
    p.set_defaults(handler=_quantize)

    p = commands.add_parser("evaluate", help="score an exported generator on a dataset split")
    p.add_argument("model", metavar="MODEL.onnx")
    p.add_argument("data", metavar="DATA", help="dataset folder made by `face2face prepare`")
    p.add_argument("--split", default="test", choices=("train", "test"))
    p.add_argument("--json", metavar="OUT", help="write every figure as JSON")
    p.add_argument("--grid", metavar="OUT.png", help="write (sketch | output | photo) rows")
    p.add_argument("--driver", metavar="VIDEO", help="instead: another person drives the model; "
                   "face rate, identity, expression and gaze per retarget mode")
    p.add_argument("--frames", type=int, default=150, help="driver frames per mode with --driver (default 150)")
    p.add_argument("--provider", choices=PROVIDERS, default="auto", help="generator engine (default auto)")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="generator precision; other than onnxruntime fp32, outputs are also compared to it (default auto)")
    add_detector_option(p)
    p.set_defaults(handler=_evaluate)


def add_quickstart(commands) -> None:
    """Register ``quickstart``: prepare, train, export and evaluate in one resumable command."""
    from face2face.cli import add_detector_option

    p = commands.add_parser("quickstart", help="from a target video to a live-ready model in one command")
    p.add_argument("video", metavar="TARGET.mp4")
    p.add_argument("-o", "--output", default="face2face-work", metavar="WORKDIR",
                   help="working folder: data/, run/, model.onnx (default face2face-work)")
    p.add_argument("--steps", type=int, help="training steps (default: 6000 on CPU, 40000 on GPU)")
    p.add_argument("--ngf", type=int, help="generator width (default: 32 on CPU, 64 on GPU)")
    p.add_argument("--every", type=int, default=1, help="keep every N-th frame (default 1)")
    p.add_argument("--size", type=int, default=256, help="crop and generator size in px (default 256)")
    p.add_argument("--no-pupils", dest="pupils", action="store_false",
                   help="sketches without pupils (the output's gaze then ignores the driver's)")
    add_detector_option(p)
    p.set_defaults(handler=_quickstart)


class _TrainingBar:
    """A progress bar with step/s and the four losses, made at the first step (so a bad dataset
    prints only its one-line error); ``with`` closes it."""

    def __init__(self) -> None:
        self.bar: tqdm | None = None

    def __call__(self, step: int, total: int, losses: dict[str, float]) -> None:
        if self.bar is None:
            self.bar = tqdm(desc="train", unit="step", total=total, initial=step - 1, dynamic_ncols=True)
        self.bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()}, refresh=False)
        self.bar.update(step - self.bar.n)

    def __enter__(self) -> "_TrainingBar":
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()


def _training_bar():
    """The bar (a context manager) and the ``progress(step, total, losses)`` callback that feeds it."""
    bar = _TrainingBar()
    return bar, bar


def _quickstart(args: argparse.Namespace) -> int:
    from face2face.train.evaluate import format_table
    from face2face.train.quickstart import QuickstartConfig, live_command, quickstart

    config = QuickstartConfig(steps=args.steps, ngf=args.ngf, every=args.every, size=args.size, detector=args.detector,
                              pupils=args.pupils)
    bar, progress = _training_bar()
    try:
        with bar:
            report = quickstart(args.video, args.output, config, announce=print, train_progress=progress)
    except KeyboardInterrupt:
        print("stopped; run the same command again to continue where it stopped")
        return 130
    print(format_table(report))
    model = Path(args.output) / "model.onnx"
    print(f"\nnext: {live_command(model)}")
    print(f"  or, on a video file: face2face live --model {model} --source DRIVER.mp4 --record out.mp4")
    return 0


def _prepare(args: argparse.Namespace) -> int:
    from face2face.train.prepare import PrepareConfig, prepare

    config = PrepareConfig(
        every=args.every, size=args.size, max_pairs=args.max_pairs,
        test_fraction=args.test_fraction, detector=args.detector, pupils=args.pupils, overwrite=args.overwrite,
    )
    with tqdm(desc="prepare", unit="frame") as bar:
        def progress(done: int, total: int | None) -> None:
            bar.total = total
            bar.update(done - bar.n)

        manifest = prepare(args.videos, args.output, config, progress=progress)
    dropped = ", ".join(f"{k} {v}" for k, v in manifest["dropped"].items())
    print(
        f"{args.output}: {manifest['pairs']['train']} train + {manifest['pairs']['test']} test pairs "
        f"from {manifest['frames_read']} frames ({manifest['frames_per_second']} frames/s); dropped: {dropped}"
    )
    return 0


def _train(args: argparse.Namespace) -> int:
    from face2face.train.trainer import TrainConfig, train

    config = TrainConfig(
        steps=args.steps, epochs=args.epochs, batch_size=args.batch_size, ngf=args.ngf, ndf=args.ndf,
        checkpoint_every=args.checkpoint_every, sample_every=args.sample_every,
        settle_fraction=args.settle_fraction, strategy=args.strategy,
        mixed_precision=args.mixed_precision, seed=args.seed, resume=args.resume,
    )
    bar, progress = _training_bar()
    with bar:
        result = train(args.data, args.output, config, progress=progress)
    where = result.checkpoint or args.output
    if result.interrupted:
        print(f"stopped at step {result.step}/{result.total_steps}; checkpoint {where} "
              f"(continue with --resume)")
        return 128 + (result.signal or 2)
    print(f"trained {result.step} steps ({result.steps_per_second:.2f} steps/s); checkpoint {where}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from face2face.train.export import ExportConfig, export

    report = export(args.run, args.output, ExportConfig(fp16=args.fp16, opset=args.opset))
    print(f"{report.model}: {report.precision}, max |ONNX - TF| = {report.max_error:.2e} on "
          f"{report.parity_images} test sketches; exported in {report.seconds:.1f} s; sidecar {report.sidecar}")
    return 0


def _quantize(args: argparse.Namespace) -> int:
    from face2face.train.quantize import quantize

    report = quantize(args.model, args.data, args.sketches)
    use = "runs by default on OpenVINO" if report.default else "runs only with --precision int8"
    print(f"{report.model}: int8, calibrated on {report.sketches} training sketches in {report.seconds:.1f} s; "
          f"PSNR against fp32 on {report.held_out} held-out sketches {report.psnr_vs_fp32_mean:.1f} dB mean, "
          f"{report.psnr_vs_fp32_min:.1f} dB min; {use}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    if args.driver:
        from face2face.train.crossdrive import CrossDriveConfig, cross_drive, format_cross_drive

        report = cross_drive(args.model, args.data, args.driver, CrossDriveConfig(
            frames=args.frames, provider=args.provider, precision=args.precision))
        print(format_cross_drive(report))
    else:
        from face2face.train.evaluate import EvaluateConfig, evaluate, format_table

        report = evaluate(args.model, args.data, EvaluateConfig(
            split=args.split, detector=args.detector, provider=args.provider, precision=args.precision),
                          grid_path=args.grid)
        print(format_table(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0

"""`face2face doctor`: one screen saying what this machine can run, each missing piece with its fix.

Each check returns a ``Finding``; they run in ``CHECKS`` order. TensorFlow is imported only by
its own check, and only where it is installed.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from face2face import __version__
from face2face.errors import Face2FaceError

CAMERAS_TRIED = 4  # indices tried where the system does not list its cameras
OPTIONAL_WEIGHTS = {"yunet": "--detector yunet"}  # weight files that only an option needs


@dataclass(frozen=True)
class Finding:
    """What one check found."""

    name: str  # what was checked, e.g. "onnxruntime"
    status: str  # what is there, in one line
    fix: str = ""  # the one step that adds what is missing ("" when nothing is)


def check_python() -> Finding:
    """The interpreter and the platform."""
    return Finding("python", f"{platform.python_version()} ({sys.executable}), {platform.system()} {platform.machine()}")


def check_opencv() -> Finding:
    """OpenCV (face detection, video)."""
    import cv2

    fix = "" if cv2.__version__.startswith("4.") else 'pip install "opencv-python>=4.8,<5" (the SSD detector needs 4)'
    return Finding("opencv", cv2.__version__, fix)


def check_dlib() -> Finding:
    """dlib and the weight files (detectors, landmarks, face descriptor)."""
    import dlib

    from face2face import assets

    found, missing, fixes = [], [], []
    for name in assets.ASSETS:
        try:
            assets.locate(name)
            found.append(name)
        except Face2FaceError:
            missing.append(f"{name} (only for {OPTIONAL_WEIGHTS[name]})" if name in OPTIONAL_WEIGHTS else name)
            if name not in OPTIONAL_WEIGHTS:
                fixes.append(name)
    status = f"{dlib.__version__}; weight files found: {', '.join(found) or 'none'}"
    status += f"; not found: {', '.join(missing)}" if missing else ""
    return Finding("dlib", status, f"face2face models fetch {' '.join(fixes)}" if fixes else "")


def check_onnxruntime() -> Finding:
    """onnxruntime, its providers, and whether CUDA can run the generator."""
    import onnxruntime as ort

    from face2face.runtime.generator import cuda_unavailable_reason

    providers = ort.get_available_providers()
    reason = cuda_unavailable_reason(providers)
    status = f"{ort.__version__}; providers: {', '.join(p.removesuffix('ExecutionProvider') for p in providers)}; "
    status += "CUDA usable" if not reason else f"CUDA not usable: {reason}"
    fix = 'pip install "face2face[cuda]"' if "face2face[cuda]" in reason else ""
    return Finding("onnxruntime", status, fix)


def check_openvino() -> Finding:
    """OpenVINO and the CPU's native bf16 and int8 support (the fast CPU engine)."""
    from face2face.runtime.openvino_engine import cpu_capabilities, cpu_name, openvino_missing

    missing = openvino_missing()
    if missing:
        return Finding("openvino", missing + "; the generator runs on onnxruntime's CPU provider", "pip install openvino")
    import openvino

    capabilities = cpu_capabilities()
    bf16 = "bf16 native" if "BF16" in capabilities else "no native bf16 (fp32 runs)"
    int8 = "int8 yes (after `face2face quantize`)" if "INT8" in capabilities else "no int8"
    return Finding("openvino", f"{openvino.__version__.split('-')[0]} on {cpu_name()}; {bf16}; {int8}")


def check_tensorflow() -> Finding:
    """TensorFlow (training only) and the devices it sees."""
    if importlib.util.find_spec("tensorflow") is None:
        return Finding("tensorflow", "not installed: prepare, live, reenact, bench and evaluate work; "
                       "train, export and quickstart need it", 'pip install "face2face[train]"')
    import tensorflow as tf

    from face2face.runtime.generator import nvidia_driver_loaded

    devices = [f"{d.device_type} {d.name.rsplit(':', 1)[-1]}" for d in tf.config.list_physical_devices()]
    status = f"{tf.__version__}; devices: {', '.join(devices)}"
    if os.name == "posix" and nvidia_driver_loaded() and not tf.config.list_physical_devices("GPU"):
        return Finding("tensorflow", status + "; an NVIDIA GPU is here but TensorFlow does not see it, so training "
                       "runs on the CPU", 'pip install "face2face[train-cuda]"')
    return Finding("tensorflow", status)


def check_cameras() -> Finding:
    """Which webcams open and deliver a frame."""
    from face2face.video import VideoSource

    listed = sorted(int(p.name[5:]) for p in Path("/dev").glob("video*") if p.name[5:].isdigit())
    indices = listed if sys.platform.startswith("linux") else list(range(CAMERAS_TRIED))
    opened, failed = [], []
    for index in indices:
        try:
            with VideoSource(index) as source:
                opened.append(f"{index} ({source.width}x{source.height})")
        except Face2FaceError:
            failed.append(str(index))
    fix = "connect a webcam, or drive from a video file: face2face live --source VIDEO ..."
    if opened:
        return Finding("cameras", f"open: {', '.join(opened)}" + (f"; no frame from {', '.join(failed)}" if failed else ""))
    tried = f"tried {', '.join(failed)}" if failed else "no /dev/video* device"
    return Finding("cameras", f"none opens ({tried})", fix)


def check_virtual_camera() -> Finding:
    """Whether a virtual camera opens (the same check as `live --virtual-cam`)."""
    from face2face.runtime.sinks import SinkConfig, create_sink, virtual_camera_fix

    try:
        with create_sink("virtual", SinkConfig(640, 480, 30.0)) as sink:
            return Finding("virtual camera", f"{sink.device} opens ({sink.camera.backend})")
    except Face2FaceError:
        return Finding("virtual camera", "none opens: live --virtual-cam cannot run", virtual_camera_fix())


def check_display() -> Finding:
    """Whether a preview window can open."""
    from face2face.runtime.sinks import display_missing

    missing = display_missing()
    if missing:
        return Finding("display", f"{missing}: live --preview cannot run",
                       "run in a desktop session, or use --record OUT.mp4 instead of --preview")
    return Finding("display", os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or "the desktop's")


CHECKS: tuple[Callable[[], Finding], ...] = (
    check_python, check_opencv, check_dlib, check_onnxruntime, check_openvino, check_tensorflow,
    check_cameras, check_virtual_camera, check_display,
)


def report(checks: tuple[Callable[[], Finding], ...] = CHECKS) -> str:
    """Every check's finding, a line each, its fix on the next line where something is missing."""
    lines = [f"face2face {__version__}"]
    for check in checks:
        finding = check()
        lines.append(f"{finding.name:15s} {finding.status}")
        if finding.fix:
            lines.append(f"{'':15s} fix: {finding.fix}")
    return "\n".join(lines)

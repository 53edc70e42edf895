"""The exported generator's sidecar (``MODEL.json`` beside ``MODEL.onnx``): what both sides agree on.

The ONNX graph maps a sketch to a face: input ``float32 [1, size, size, C]`` and output
``float32 [1, size, size, 3]`` (NHWC), RGB, values in [-1, 1]; C is 3 (the sketch) or 6 (the
sketch, then the target's reference warped onto it from the bank in the folder ``reference``
names: ``face2face.reference``). The sidecar describes that contract, how the training crops were framed,
the target's landmark template (mean 68 points in crop pixels), the target's range of face shapes
(``face2face.shapes``), and whether the sketches carry pupils (with the target's mean pupils,
placed in the template's eyes).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from face2face.errors import Face2FaceError
from face2face.files import file_sha256, write_atomic
from face2face.shapes import ShapeSpace

FORMAT = "face2face-generator"
VERSION = 1


@dataclass
class ModelInfo:
    """Everything the runtime needs to know about an exported generator."""

    size: int  # input and output side, px
    ngf: int  # generator width (64 = the paper)
    steps: int  # training steps behind the weights
    template: list[list[float]]  # target's mean 68 landmarks in crop pixels, iBUG order
    context: float = 1.0  # crop framing used for the dataset (face2face.geometry.face_square)
    pupils: bool = False  # sketches carry pupil dots (models from before pupils: False)
    template_pupils: list[list[float]] | None = None  # target's mean pupils in the template's eyes, crop px
    shape_space: dict | None = None  # face2face.shapes.ShapeSpace.to_json (models exported before it: None)
    layout: str = "NHWC"
    channels: str = "RGB"
    value_range: list[float] = field(default_factory=lambda: [-1.0, 1.0])
    input_name: str = "sketch"
    output_name: str = "face"
    normalization: str = "batch-moving-average"  # how the exported graph normalises activations
    precision: str = "fp32"  # fp32 | fp16
    fallback: str = ""  # fp16 models: the fp32 model file beside this one, used if outputs turn non-finite
    background: str = ""  # folder beside the model with frames of the target video for the frame layout
    input_channels: int = 3  # 3: the sketch; 6: the sketch, then the reference built from ``reference``
    reference: str = ""  # folder beside the model with the bank of target crops (``face2face.reference``)
    coverage: list | None = None  # the target video's range of each coverage feature ([lo, hi] or None; ``face2face.coverage``)
    dataset_fingerprint: str = ""  # sha256 over the dataset's manifest and file names
    model_sha256: str = ""  # sha256 of the ONNX file described ("" in sidecars written before it)
    created: str = ""  # ISO 8601
    format: str = FORMAT
    version: int = VERSION

    def template_array(self) -> np.ndarray:
        """The landmark template as ``float32 (68, 2)``."""
        return np.asarray(self.template, dtype=np.float32)

    def template_pupils_array(self) -> np.ndarray | None:
        """The template's pupils as ``float32 (2, 2)``, or None if the dataset had none."""
        return None if self.template_pupils is None else np.asarray(self.template_pupils, dtype=np.float32)

    def shapes(self) -> ShapeSpace | None:
        """The target's range of face shapes, or None for models exported before it."""
        return None if self.shape_space is None else ShapeSpace.from_json(self.shape_space)


def sidecar_path(model_path: str | os.PathLike) -> Path:
    """``MODEL.json`` for ``MODEL.onnx``."""
    return Path(model_path).with_suffix(".json")


def write_sidecar(model_path: str | os.PathLike, info: ModelInfo) -> Path:
    """Write the sidecar atomically beside the model."""
    path = sidecar_path(model_path)
    write_atomic(path, json.dumps(asdict(info), indent=2).encode())
    return path


def check_describes(model_path: str | os.PathLike, info: ModelInfo) -> None:
    """A one-line error if the sidecar names another ONNX file's sha256 than the model's."""
    if info.model_sha256 and info.model_sha256 != file_sha256(model_path):
        raise Face2FaceError(f"{sidecar_path(model_path)}: describes another model than {Path(model_path).name} "
                             "(its sha256 differs); export the model again, or put its own sidecar beside it")


def read_sidecar(model_path: str | os.PathLike) -> ModelInfo:
    """The sidecar of a model, or a one-line error saying what is wrong."""
    if not Path(model_path).is_file():
        raise Face2FaceError(f"{model_path}: no such model file")
    path = sidecar_path(model_path)
    if not path.is_file():
        raise Face2FaceError(f"{model_path}: no sidecar {path.name} beside it; not a face2face generator "
                             "(export one with `face2face export`)")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise Face2FaceError(f"{path}: unreadable sidecar ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise Face2FaceError(f"{path}: not a face2face generator sidecar (format != {FORMAT!r})")
    if isinstance(data.get("version"), int) and data["version"] > VERSION:
        raise Face2FaceError(f"{path}: sidecar version {data['version']} is newer than this face2face; upgrade")
    known = set(ModelInfo.__dataclass_fields__)
    try:
        info = ModelInfo(**{k: v for k, v in data.items() if k in known})
    except TypeError as exc:
        raise Face2FaceError(f"{path}: incomplete sidecar ({exc}); export the model again") from None
    problem = _problem(info)
    if problem:
        raise Face2FaceError(f"{path}: {problem}; export the model again or fix the sidecar")
    return info


_SCALARS = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}


def _problem(info: ModelInfo) -> str:
    """What is wrong with a sidecar's values ("" if nothing): a sidecar is input from other people."""
    for name, kind in ModelInfo.__annotations__.items():
        value = getattr(info, name)
        accepted = _SCALARS.get(kind)
        if accepted and (not isinstance(value, accepted) or (bool not in accepted and isinstance(value, bool))):
            return f"{name} must be {kind}, got {value!r}"
    if not 16 <= info.size <= 1024 or info.size & (info.size - 1):
        return f"size must be a power of two from 16 to 1024, got {info.size}"
    if info.ngf < 1 or info.steps < 0 or not 0 < info.context < 10:
        return f"ngf {info.ngf}, steps {info.steps} or context {info.context} out of range"
    for name, shape in (("template", (68, 2)), ("template_pupils", (2, 2)), ("value_range", (2,))):
        value = getattr(info, name)
        if value is None and name == "template_pupils":
            continue
        if not _finite_array(value, shape):
            return f"{name} must be {'x'.join(map(str, shape))} finite numbers"
    if info.shape_space is not None:
        try:
            ShapeSpace.from_json(info.shape_space)
        except ValueError as exc:
            return str(exc)
    fixed = {"layout": "NHWC", "channels": "RGB", "precision": ("fp32", "fp16")}
    for name, allowed in fixed.items():
        if getattr(info, name) not in (allowed if isinstance(allowed, tuple) else (allowed,)):
            return f"{name} {getattr(info, name)!r} is not supported (expected {allowed!r})"
    if info.input_channels not in (3, 6) or (info.input_channels == 6) != bool(info.reference):
        return f"input_channels {info.input_channels} with reference {info.reference!r} (3 without one, 6 with one)"
    for name in ("background", "fallback", "reference"):
        if Path(getattr(info, name)).name != getattr(info, name):
            return f"{name} must be a name beside the model, got {getattr(info, name)!r}"
    return ""


def _finite_array(value: object, shape: tuple[int, ...]) -> bool:
    """True if ``value`` is nested lists of finite numbers of ``shape``."""
    try:
        array = np.asarray(value)
    except ValueError:  # ragged
        return False
    return array.dtype.kind in "iuf" and array.shape == shape and bool(np.isfinite(array).all())

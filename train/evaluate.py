"""Score an exported generator on a dataset split with onnxruntime (no TensorFlow here).

Per pair: L1 and PSNR on pixels in [0, 1], SSIM (Wang et al. 2004: 11x11 Gaussian window,
sigma 1.5, K1 0.01, K2 0.03, valid region, computed per RGB channel and averaged), whether a face
is found on the output, AKD: mean distance (px) between the 68 landmarks found on the output
and on the real photo by the same detector + landmark pipeline, and identity: distance between
dlib's face descriptors of the output and the photo (below 0.6 reads as the same person), and
pupil error: distance (px) between the pupils found on the output and on the photo, both inside
the photo's eye outlines, over the eyes where both show a pupil. Face L1 and face SSIM: the same
inside the face's outline (the pair's 68 landmarks and a forehead: what the ``frame`` layout
pastes), as most of a crop is hair, neck and background that the sketch does not describe.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from face2face.errors import Face2FaceError
from face2face.files import write_atomic
from face2face.faces import FaceAnalyzer
from face2face.identity import FaceIdentity, distance
from face2face.pupils import find_pupils
from face2face.geometry import Square
from face2face.runtime.background import FacePaster, crop_to_frame, face_outline
from face2face.runtime.generator import Generator
from face2face.video import VideoSource
from face2face.train.prepare import MANIFEST, read_landmarks, read_manifest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluateConfig:
    """What to score and how."""

    split: str = "test"  # dataset split
    detector: str = "ssd"  # face detector for face rate and AKD
    grid_rows: int = 16  # at most this many (sketch | output | photo) rows in the grid, evenly spaced
    provider: str = "auto"  # generator engine (face2face.runtime.generator)
    precision: str = "auto"  # its precision; anything but onnxruntime fp32 is also scored against it


def ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel SSIM of two ``HxWx3`` images in [0, 1], averaged over the channels, on the valid
    region of the 11x11 window (``(H - 10) x (W - 10)``)."""
    c1, c2 = 0.01**2, 0.03**2
    kernel = cv2.getGaussianKernel(11, 1.5)
    window = kernel @ kernel.T
    maps = []
    for ch in range(a.shape[2]):
        x, y = a[..., ch].astype(np.float64), b[..., ch].astype(np.float64)
        f = lambda im: cv2.filter2D(im, -1, window, borderType=cv2.BORDER_REFLECT)[5:-5, 5:-5]  # noqa: E731
        mx, my = f(x), f(y)
        vx, vy, cxy = f(x * x) - mx * mx, f(y * y) - my * my, f(x * y) - mx * my
        maps.append(((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2)))
    return np.mean(maps, axis=0)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two ``HxWx3`` images in [0, 1], per channel, valid region of the 11x11 window."""
    return float(ssim_map(a, b).mean())


def face_mask(points: np.ndarray, size: int) -> np.ndarray:
    """Boolean ``size`` x ``size`` mask inside the face's outline (``points``: 68 landmarks, crop px)."""
    mask = np.zeros((size, size), np.uint8)
    cv2.fillConvexPoly(mask, np.round(face_outline(points)).astype(np.int32), 1)
    return mask.astype(bool)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two images in [0, 1] (capped at 100 dB for identical images)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 100.0 if mse <= 1e-10 else 10.0 * np.log10(1.0 / mse)


def _landmarks(analyzer: FaceAnalyzer, image: np.ndarray) -> np.ndarray | None:
    faces = analyzer.detect(image)
    if not faces:
        return None
    largest = max(faces, key=lambda d: d.box[2] * d.box[3])
    return analyzer.landmarks(image, largest)


def evaluate(model_path: str | Path, data_dir: str | Path, config: EvaluateConfig = EvaluateConfig(),
             json_path: str | Path | None = None, grid_path: str | Path | None = None,
             analyzer: FaceAnalyzer | None = None) -> dict:
    """Score every pair of a split; returns (and optionally writes) the report as a dict."""
    data = Path(data_dir)
    if not (data / MANIFEST).is_file():
        raise Face2FaceError(f"{data}: not a complete dataset (no {MANIFEST}; run `face2face prepare`)")
    if not Path(model_path).is_file():
        raise Face2FaceError(f"{model_path}: no such model file")
    generator = Generator(model_path, config.provider, config.precision)
    reference = None  # onnxruntime fp32 on the CPU: what other engines and precisions are checked against
    if (generator.provider, generator.precision) != ("onnxruntime CPU", "fp32"):
        reference = Generator(model_path, provider="cpu", announce=False)
    size = generator.info.size
    folder = data / config.split
    names, points, _ = read_landmarks(folder)
    frames = FullFrames(data, folder)
    if not names:
        raise Face2FaceError(f"{folder}: no pairs to evaluate")
    analyzer = analyzer or FaceAnalyzer(config.detector)
    identity = FaceIdentity()
    rows, per_pair, started = [], [], time.perf_counter()
    grid_picks = set(np.linspace(0, len(names) - 1, min(config.grid_rows, len(names))).round().astype(int))
    for index, name in enumerate(names):
        sketch = cv2.imread(str(folder / "input" / f"{name}.png"), cv2.IMREAD_COLOR)
        photo = cv2.imread(str(folder / "target" / f"{name}.png"), cv2.IMREAD_COLOR)
        if sketch is None or photo is None:
            raise Face2FaceError(f"{folder}: pair {name} is missing its input or target image")
        if sketch.shape[:2] != (size, size) or photo.shape != sketch.shape:
            raise Face2FaceError(f"{folder}/input/{name}.png: {sketch.shape[:2]} != model size "
                                 f"({size}, {size})")
        output = generator(sketch).copy()
        a, b = output.astype(np.float64) / 255.0, photo.astype(np.float64) / 255.0
        error, face, similarity = np.abs(a - b), face_mask(points[index], size), ssim_map(a, b)
        vs_fp32 = None if reference is None else psnr(a, reference(sketch).astype(np.float64) / 255.0)
        out_points, photo_points = _landmarks(analyzer, output), _landmarks(analyzer, photo)
        akd = identity_distance = None
        if out_points is not None and photo_points is not None:
            akd = float(np.linalg.norm(out_points - photo_points, axis=1).mean())
            identity_distance = distance(identity.descriptor(output, out_points), identity.descriptor(photo, photo_points))
        pupil_errors = np.linalg.norm(find_pupils(output, points[index]) - find_pupils(photo, points[index]), axis=1)
        full = frames.score(name, output, points[index])
        per_pair.append({"name": name, "l1": float(error.mean()), "psnr": psnr(a, b), "ssim": float(similarity.mean()),
                         "face_l1": float(error[face].mean()), "face_ssim": float(similarity[face[5:-5, 5:-5]].mean()),
                         "frame_psnr": full and full[0], "frame_ssim": full and full[1],
                         "psnr_vs_fp32": vs_fp32, "face_found": out_points is not None, "photo_face_found": photo_points is not None,
                         "akd": akd, "identity": identity_distance,
                         "pupil_errors": [None if np.isnan(e) else float(e) for e in pupil_errors]})
        if index in grid_picks:
            rows.append(np.concatenate([sketch, output, photo], axis=1))
    frames.close()
    report = _summarise(per_pair, model_path, data, config, generator, time.perf_counter() - started)
    if json_path:
        write_atomic(json_path, json.dumps(report, indent=2).encode())  # quickstart's mark of a finished stage
    if grid_path and not cv2.imwrite(str(grid_path), np.concatenate(rows, axis=0)):
        raise Face2FaceError(f"{grid_path}: cannot write the grid image")
    return report


class FullFrames:
    """The real frames of a split's pairs (first source video), to score the generated face pasted
    into its own frame as the ``frame`` layout does, against the real frame."""

    def __init__(self, data: Path, folder: Path) -> None:
        meta = json.loads((folder / "landmarks.json").read_text())
        self.squares = dict(zip(meta["names"], meta.get("squares", [])))
        video = Path(read_manifest(data)["sources"][0]["path"])
        self.source = VideoSource(str(video)) if video.is_file() and self.squares else None
        self.position, self.frame = -1, None
        self.paster = FacePaster()

    def _frame(self, index: int) -> np.ndarray | None:
        while self.source is not None and self.position < index:
            self.frame = self.source.read()
            self.position += 1
            if self.frame is None:
                self.source = None
        return self.frame if self.position == index else None

    def close(self) -> None:
        """Release the video."""
        if self.source is not None:
            self.source.close()
            self.source = None

    def score(self, name: str, output: np.ndarray, crop_points: np.ndarray) -> tuple[float, float] | None:
        """(PSNR, SSIM) of the frame with ``output`` pasted at the pair's square, against the frame."""
        source, index = name.split("_")
        real = self._frame(int(index)) if source == "00" else None
        if real is None:
            return None
        square = Square(*self.squares[name])
        composed = real.copy()
        outline = face_outline(crop_to_frame(crop_points, square, output.shape[0]))
        self.paster.paste(composed, output, square, [outline])
        a, b = composed.astype(np.float64) / 255.0, real.astype(np.float64) / 255.0
        return psnr(a, b), ssim(a, b)


def _summarise(per_pair: list[dict], model_path, data: Path, config: EvaluateConfig, generator: Generator,
               seconds: float) -> dict:
    info = generator.info
    akds = [p["akd"] for p in per_pair if p["akd"] is not None]
    identities = [p["identity"] for p in per_pair if p["identity"] is not None]
    pupils = [e for p in per_pair for e in p["pupil_errors"] if e is not None]
    vs_fp32 = [p["psnr_vs_fp32"] for p in per_pair if p["psnr_vs_fp32"] is not None]
    framed_psnr = [p["frame_psnr"] for p in per_pair if p["frame_psnr"] is not None]
    n = len(per_pair)
    return {
        "model": str(model_path), "data": str(data), "split": config.split, "detector": config.detector,
        "model_steps": info.steps, "model_size": info.size, "model_ngf": info.ngf,
        "provider": generator.provider, "precision": generator.precision,
        "psnr_vs_fp32": float(np.mean(vs_fp32)) if vs_fp32 else None,
        "psnr_vs_fp32_min": float(np.min(vs_fp32)) if vs_fp32 else None,
        "pairs": n,
        "l1": float(np.mean([p["l1"] for p in per_pair])),
        "psnr": float(np.mean([p["psnr"] for p in per_pair])),
        "ssim": float(np.mean([p["ssim"] for p in per_pair])),
        "face_l1": float(np.mean([p["face_l1"] for p in per_pair])),
        "face_ssim": float(np.mean([p["face_ssim"] for p in per_pair])),
        "frame_psnr": float(np.mean(framed_psnr)) if framed_psnr else None,
        "frame_ssim": float(np.mean([p["frame_ssim"] for p in per_pair if p["frame_ssim"] is not None])) if framed_psnr else None,
        "frame_pairs": len(framed_psnr),
        "face_rate": sum(p["face_found"] for p in per_pair) / n,
        "faces_found": sum(p["face_found"] for p in per_pair),
        "photo_faces_found": sum(p["photo_face_found"] for p in per_pair),
        "akd": float(np.mean(akds)) if akds else None,
        "akd_pairs": len(akds),
        "identity": float(np.mean(identities)) if identities else None,
        "pupil_error_px": float(np.mean(pupils)) if pupils else None,
        "pupil_error_p90_px": float(np.percentile(pupils, 90)) if pupils else None,
        "pupil_eyes": len(pupils),
        "model_pupils": info.pupils,
        "ssim_mode": "per RGB channel, 11x11 Gaussian sigma 1.5, valid region",
        "seconds": round(seconds, 2),
        "per_pair": per_pair,
        "config": asdict(config),
    }


def format_table(report: dict) -> str:
    """A short human-readable summary of an ``evaluate`` report."""
    akd = "n/a" if report["akd"] is None else f"{report['akd']:.2f} px ({report['akd_pairs']} pairs)"
    pupil = "n/a" if report["pupil_error_px"] is None else (
        f"{report['pupil_error_px']:.2f} px mean, {report['pupil_error_p90_px']:.2f} p90 ({report['pupil_eyes']} eyes)")
    lines = [
        f"{report['model']} on {report['data']} [{report['split']}, {report['pairs']} pairs], "
        f"{report['provider']} {report['precision']}",
        f"  L1         {report['l1']:.4f}",
        f"  PSNR       {report['psnr']:.2f} dB",
        f"  SSIM       {report['ssim']:.4f}",
        f"  face       L1 {report['face_l1']:.4f}, SSIM {report['face_ssim']:.4f} (inside the face's outline)",
        "  full frame " + ("n/a (target video not found)" if report["frame_psnr"] is None else
                           f"PSNR {report['frame_psnr']:.2f} dB, SSIM {report['frame_ssim']:.4f} "
                           f"({report['frame_pairs']} frames, face pasted into the real frame)"),
        f"  face rate  {100 * report['face_rate']:.1f}% ({report['faces_found']}/{report['pairs']})",
        f"  AKD        {akd}",
        f"  identity   {'n/a' if report['identity'] is None else format(report['identity'], '.3f')} "
        "(dlib descriptor distance to the real photo; < 0.6 = same person)",
        f"  pupils     {pupil} (output vs photo, in the photo's eye outlines)",
    ]
    if report["psnr_vs_fp32"] is not None:
        lines.append(f"  vs fp32    PSNR {report['psnr_vs_fp32']:.1f} dB mean, {report['psnr_vs_fp32_min']:.1f} dB min "
                     "(against onnxruntime fp32's output)")
    return "\n".join(lines)

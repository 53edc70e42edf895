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
Sharpness: the fine detail inside the face's outline (shrunk by ``EDGE`` px) of the output over
that of the real photo, as a ratio of RMS amplitudes of a band-pass that leaves out the 2-pixel
period (1.0 = as sharp as the real face), and the same in the full frame, where the crop is
enlarged to the face's size; detail match: how much of the real photo's fine detail (the same
band-pass) the output reproduces in place, 1 = the photo's detail in the right places, 0 = none;
texture the photo does not have lowers it where it raises sharpness (see ``detail_match``), also
in the full frame; checkerboard: the RMS amplitude (grey levels) of the 2-pixel checkerboard
pattern inside the outline, beside the real photo's (see ``fine_detail``).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from face2face.errors import Face2FaceError
from face2face.files import write_atomic
from face2face.faces import FaceAnalyzer
from face2face.identity import FaceIdentity, distance
from face2face.memory import peak_gb
from face2face.pupils import find_pupils
from face2face.geometry import Square
from face2face.runtime.background import FacePaster, crop_to_frame, face_outline
from face2face.runtime.generator import Generator
from face2face.video import VideoSource
from face2face.train.prepare import MANIFEST, read_landmarks, read_manifest

log = logging.getLogger(__name__)

DETAIL_SIGMA = 1.2  # px: the Gaussian blur before the Laplacian of ``fine_detail``
_BLUR_RADIUS = math.ceil(3 * DETAIL_SIGMA)  # px each side of the blur's kernel
EDGE = _BLUR_RADIUS + 1  # px the face's outline is shrunk by: the filters' reach (blur + Laplacian)
_CHECKER = np.array([1, -2, 1], np.float32) / 4  # per axis: the 2-px checkerboard filter


@dataclass(frozen=True)
class EvaluateConfig:
    """What to score and how."""

    split: str = "test"  # dataset split
    detector: str = "ssd"  # face detector for face rate and AKD
    grid_rows: int = 16  # at most this many (sketch | reference | output | photo) rows in the grid, evenly spaced
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


def face_figures(error: np.ndarray, similarity: np.ndarray, face: np.ndarray) -> tuple[float, float]:
    """(face L1, face SSIM): the mean of the per-pixel error and of ``ssim_map`` (whose valid region
    is 5 px smaller on each side) over the pixels of ``face`` (``outline_mask``)."""
    return float(error[face].mean()), float(similarity[face[5:-5, 5:-5]].mean())


def outline_mask(outline: np.ndarray, shape: tuple[int, int], inset: int = 0) -> np.ndarray:
    """Boolean mask of ``shape`` inside the convex polygon ``outline`` (px), shrunk by ``inset`` px."""
    mask = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(mask, np.round(outline).astype(np.int32), 1)
    if inset:
        mask = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * inset + 1,) * 2),
                         borderType=cv2.BORDER_CONSTANT, borderValue=0)  # the image's edge bounds it too
    return mask.astype(bool)


@dataclass(frozen=True, eq=False)
class Detail:
    """The responses (grey levels, 0-255 scale) of ``detail_responses``'s two filters at the pixels
    inside a face's outline shrunk by ``EDGE`` px, in raster order: two images measured on the same
    outline and of the same size give the same pixels in the same order, so their responses compare
    pixel by pixel (``detail_match``)."""

    band: np.ndarray  # float64, 1-D: the band-pass (fine detail)
    checker: np.ndarray  # float64, 1-D: the 2-px checkerboard filter
    origin: tuple[int, int]  # (x, y) image px of ``inside``'s top-left corner
    inside: np.ndarray  # bool, 2-D: the pixels measured, in the outline's bounding box

    def same_pixels(self, other: Detail) -> bool:
        """Whether ``other`` was measured on the same pixels."""
        return self.origin == other.origin and np.array_equal(self.inside, other.inside)

    @property
    def amplitude(self) -> float:
        """RMS of the band-pass: the fine detail's amplitude (``fine_detail``'s first figure)."""
        return float(np.sqrt(np.mean(np.square(self.band))))

    @property
    def checkerboard(self) -> float:
        """RMS of the checkerboard filter (``fine_detail``'s second figure)."""
        return float(np.sqrt(np.mean(np.square(self.checker))))


def detail_responses(image: np.ndarray, outline: np.ndarray) -> Detail:
    """The band-pass and checkerboard responses of ``image`` (BGR) inside the convex polygon
    ``outline`` (image px, e.g. ``face_outline``) shrunk by ``EDGE`` px, the filters' reach, so that
    what lies beyond the outline stays out of the figures. Only the polygon's bounding box is
    filtered, once; every detail figure (``fine_detail``, ``sharpness``, ``detail_match``) is read
    from these responses.

    band: the Laplacian of the grey image blurred by ``DETAIL_SIGMA`` px, a band-pass whose gain
    peaks at periods of 5-6 px (3 px: 28%, 12 px: 49%) and is 2% of that on stripes at the 2-px
    period, 0.01% on a checkerboard: blur and enlargement lower it, a checkerboard does not raise
    it. checker: the filter ``[1, -2, 1] x [1, -2, 1] / 16``, gain 1 on a ``(-1)^(x+y)`` pattern
    and 0 on stripes and smooth ramps, so natural detail barely reaches it."""
    h, w = image.shape[:2]
    x, y, bw, bh = cv2.boundingRect(np.round(outline).astype(np.int32))
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + bw, w), min(y + bh, h)
    if x1 <= x0 or y1 <= y0:
        raise Face2FaceError("the face's outline lies outside the image")
    grey = cv2.cvtColor(image[y0:y1, x0:x1].astype(np.float32), cv2.COLOR_BGR2GRAY)
    inside = outline_mask(outline - (x0, y0), grey.shape, EDGE)
    if not inside.any():
        raise Face2FaceError(f"the face's outline is too small to measure its detail (under {2 * EDGE + 1} px across)")
    blurred = cv2.GaussianBlur(grey, (2 * _BLUR_RADIUS + 1,) * 2, DETAIL_SIGMA, borderType=cv2.BORDER_REFLECT)
    band = cv2.Laplacian(blurred, cv2.CV_32F, ksize=1, borderType=cv2.BORDER_REFLECT)
    checker = cv2.sepFilter2D(grey, cv2.CV_32F, _CHECKER, _CHECKER, borderType=cv2.BORDER_REFLECT)
    return Detail(band[inside].astype(np.float64), checker[inside].astype(np.float64), (x0, y0), inside)


def fine_detail(image: np.ndarray, outline: np.ndarray) -> tuple[float, float]:
    """(detail, checkerboard): the RMS amplitudes (grey levels) of ``detail_responses``'s band-pass
    and checkerboard filter inside the outline shrunk by ``EDGE`` px."""
    responses = detail_responses(image, outline)
    return responses.amplitude, responses.checkerboard


def sharpness(detail: float, reference: float) -> float | None:
    """Detail amplitude over the reference's (``fine_detail``'s first figure): 1.0 = as sharp as
    the reference; None where the reference shows no detail at all. An energy ratio: it cannot
    tell the reference's detail from texture the reference does not have (``detail_match`` can)."""
    return detail / reference if reference > 0 else None


def detail_match(output: Detail, reference: Detail) -> float | None:
    """How much of the reference's fine detail ``output`` reproduces in place: the concordance of
    the two band-pass responses over the same pixels (``detail_responses`` on the same outline),
    ``2 sum(o r) / (sum(o^2) + sum(r^2))``. 1 = the reference's detail, in the same places and at
    the same strength; 0 = none of it; negative = inverted. None where the reference shows no
    detail at all.

    It is the correlation of the responses about zero (the band-pass's mean; Pearson's without
    subtracting the sample means) times ``2 s / (1 + s^2)``, where ``s`` is ``sharpness``: the
    correlation says whether the detail is the reference's, the factor whether it is as strong. Texture that is not in the
    reference (uncorrelated with it) adds to ``sum(o^2)`` only: it raises ``sharpness`` but lowers
    this figure; so does a blur (weaker detail), and so does overdone detail (``s`` above 1).
    Chosen over the Pearson correlation alone, which scores a faint but well-placed copy of the
    detail 1 (the blur is seen only through the shift of the detail to longer periods), and over
    the share reproduced, ``sum(o r) / sum(r^2)``, which invented texture leaves unchanged instead
    of lowering and which overdone detail raises. The checkerboard and 2-px stripes barely reach
    the band-pass, so they leave it near 1. In place means to the pixel: a whole face 1 px off
    scores about 0.83, 2 px off about 0.5 (256-px crops), so read it beside AKD. Needs a photo of
    the same frame: ``evaluate`` has one per pair, the cross-driver evaluation (``--driver``) has none and does not
    report it."""
    if not output.same_pixels(reference):
        raise ValueError("detail_match: the responses cover different pixels (another outline or image size)")
    energy = float(np.dot(reference.band, reference.band))
    if energy <= 0:
        return None
    return 2 * float(np.dot(output.band, reference.band)) / (float(np.dot(output.band, output.band)) + energy)


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
    folder = data / config.split
    names, points, _ = read_landmarks(folder)  # before the generator announces itself: one line for a bad split
    if not names:
        raise Face2FaceError(f"{folder}: no pairs to evaluate")
    generator = Generator(model_path, config.provider, config.precision, layout="frame")  # what it judges
    reference = None  # onnxruntime fp32 on the CPU: what other engines and precisions are checked against
    if (generator.provider, generator.precision) != ("onnxruntime CPU", "fp32"):
        reference = Generator(model_path, provider="cpu", announce=False)
    size = generator.info.size
    frames = FullFrames(data, folder)
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
        built = generator.reference(points[index])  # from the model's own bank, as live builds it
        output = generator(sketch, built).copy()
        a, b = output.astype(np.float64) / 255.0, photo.astype(np.float64) / 255.0
        outline = face_outline(points[index])
        error, similarity = np.abs(a - b), ssim_map(a, b)
        face_l1, face_ssim = face_figures(error, similarity, outline_mask(outline, (size, size)))
        detail, real_detail = detail_responses(output, outline), detail_responses(photo, outline)
        vs_fp32 = None if reference is None else psnr(a, reference(sketch, built).astype(np.float64) / 255.0)
        out_points, photo_points = _landmarks(analyzer, output), _landmarks(analyzer, photo)
        akd = identity_distance = None
        if out_points is not None and photo_points is not None:
            akd = float(np.linalg.norm(out_points - photo_points, axis=1).mean())
            identity_distance = distance(identity.descriptor(output, out_points), identity.descriptor(photo, photo_points))
        pupil_errors = np.linalg.norm(find_pupils(output, points[index]) - find_pupils(photo, points[index]), axis=1)
        full = frames.score(name, output, points[index])
        per_pair.append({"name": name, "l1": float(error.mean()), "psnr": psnr(a, b), "ssim": float(similarity.mean()),
                         "face_l1": face_l1, "face_ssim": face_ssim,
                         "sharpness": sharpness(detail.amplitude, real_detail.amplitude),
                         "detail_match": detail_match(detail, real_detail),
                         "checkerboard": detail.checkerboard, "checkerboard_real": real_detail.checkerboard,
                         "frame_psnr": full and full[0], "frame_ssim": full and full[1], "frame_sharpness": full and full[2],
                         "frame_detail_match": full and full[3],
                         "psnr_vs_fp32": vs_fp32, "face_found": out_points is not None, "photo_face_found": photo_points is not None,
                         "akd": akd, "identity": identity_distance,
                         "pupil_errors": [None if np.isnan(e) else float(e) for e in pupil_errors]})
        if index in grid_picks:
            rows.append(np.concatenate([sketch, *([] if built is None else [built]), output, photo], axis=1))
    frames.close()
    report = _summarise(per_pair, model_path, data, config, generator, time.perf_counter() - started)
    report["peak_memory_gb"] = peak_gb()
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

    def score(self, name: str, output: np.ndarray,
              crop_points: np.ndarray) -> tuple[float, float, float | None, float | None] | None:
        """(PSNR, SSIM, sharpness, detail match; the last two inside the face's outline) of the frame
        with ``output`` pasted at the pair's square, against the frame."""
        source, index = name.split("_")
        real = self._frame(int(index)) if source == "00" else None
        if real is None:
            return None
        square = Square(*self.squares[name])
        composed = real.copy()
        outline = face_outline(crop_to_frame(crop_points, square, output.shape[0]))
        self.paster.paste(composed, output, square, [outline])
        a, b = composed.astype(np.float64) / 255.0, real.astype(np.float64) / 255.0
        detail, real_detail = detail_responses(composed, outline), detail_responses(real, outline)
        return (psnr(a, b), ssim(a, b), sharpness(detail.amplitude, real_detail.amplitude),
                detail_match(detail, real_detail))


def _summarise(per_pair: list[dict], model_path, data: Path, config: EvaluateConfig, generator: Generator,
               seconds: float) -> dict:
    info = generator.info
    akds = [p["akd"] for p in per_pair if p["akd"] is not None]
    pupils = [e for p in per_pair for e in p["pupil_errors"] if e is not None]
    vs_fp32 = [p["psnr_vs_fp32"] for p in per_pair if p["psnr_vs_fp32"] is not None]
    framed_psnr = [p["frame_psnr"] for p in per_pair if p["frame_psnr"] is not None]
    n = len(per_pair)

    def mean(key: str) -> float | None:  # over the pairs that have the figure
        values = [p[key] for p in per_pair if p[key] is not None]
        return float(np.mean(values)) if values else None

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
        "sharpness": mean("sharpness"),
        "detail_match": mean("detail_match"),
        "checkerboard": mean("checkerboard"),
        "checkerboard_real": mean("checkerboard_real"),
        "frame_psnr": float(np.mean(framed_psnr)) if framed_psnr else None,
        "frame_ssim": mean("frame_ssim"),
        "frame_sharpness": mean("frame_sharpness"),
        "frame_detail_match": mean("frame_detail_match"),
        "frame_pairs": len(framed_psnr),
        "face_rate": sum(p["face_found"] for p in per_pair) / n,
        "faces_found": sum(p["face_found"] for p in per_pair),
        "photo_faces_found": sum(p["photo_face_found"] for p in per_pair),
        "akd": float(np.mean(akds)) if akds else None,
        "akd_pairs": len(akds),
        "identity": mean("identity"),
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
    fmt = lambda v, spec: "n/a" if v is None else format(v, spec)  # noqa: E731
    lines = [
        f"{report['model']} on {report['data']} [{report['split']}, {report['pairs']} pairs], "
        f"{report['provider']} {report['precision']}",
        f"  L1         {report['l1']:.4f}",
        f"  PSNR       {report['psnr']:.2f} dB",
        f"  SSIM       {report['ssim']:.4f}",
        f"  face       L1 {report['face_l1']:.4f}, SSIM {report['face_ssim']:.4f} (inside the face's outline)",
        f"  sharpness  {fmt(report['sharpness'], '.3f')} (fine detail inside the face's outline over the real "
        "photo's; 1 = as sharp)",
        f"  detail     {fmt(report['detail_match'], '.3f')} match (the real photo's fine detail reproduced in place; "
        "1 = the same, 0 = none; invented texture lowers it)",
        f"  checker    {report['checkerboard']:.2f} grey levels RMS at the 2-px period inside the face's outline "
        f"(real photo {report['checkerboard_real']:.2f})",
        "  full frame " + ("n/a (target video not found)" if report["frame_psnr"] is None else
                           f"PSNR {report['frame_psnr']:.2f} dB, SSIM {report['frame_ssim']:.4f}, "
                           f"sharpness {fmt(report['frame_sharpness'], '.3f')}, "
                           f"detail match {fmt(report['frame_detail_match'], '.3f')} "
                           f"({report['frame_pairs']} frames, face pasted into the real frame)"),
        f"  face rate  {100 * report['face_rate']:.1f}% ({report['faces_found']}/{report['pairs']})",
        f"  AKD        {akd}",
        f"  identity   {fmt(report['identity'], '.3f')} "
        "(dlib descriptor distance to the real photo; < 0.6 = same person)",
        f"  pupils     {pupil} (output vs photo, in the photo's eye outlines)",
    ]
    if report["psnr_vs_fp32"] is not None:
        lines.append(f"  vs fp32    PSNR {report['psnr_vs_fp32']:.1f} dB mean, {report['psnr_vs_fp32_min']:.1f} dB min "
                     "(against onnxruntime fp32's output)")
    if report.get("peak_memory_gb") is not None:
        lines.append(f"  memory     {report['peak_memory_gb']:.1f} GB peak (resident, this evaluation)")
    return "\n".join(lines)

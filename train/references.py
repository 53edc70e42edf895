"""A dataset's reference bank and each pair's reference (``face2face.reference``), written into the
dataset folder: ``references/`` (the bank: ``bank.json`` and its crops) and
``{split}/reference/NAME.png`` beside each pair's sketch and photo.

No pair can copy its own photo. The bank holds train crops only, never from the second of video
just before the test split (the first test frames would copy their neighbours); a train pair
takes no crop from within ``EXCLUDE_SECONDS`` of its own frame. The bank is ``BANK_SIZE``
farthest-point samples of the eligible train frames' shapes, starting from the one nearest the
mean shape: the range of the target's expressions and poses rather than many copies of the
commonest one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import zlib
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from face2face.errors import Face2FaceError
from face2face.files import write_atomic
from face2face.reference import (BANK_SIZE, EXCLUDE_SECONDS, ReferenceBank, load_bank, normalised_shapes,
                                 save_bank)
from face2face.train.pairs import SWAP_FOLDER
from face2face.train.prepare import REFERENCES, REFERENCES_DONE, SPLITS, read_landmarks, read_manifest

log = logging.getLogger(__name__)

BANK_FOLDER = REFERENCES
DONE = REFERENCES_DONE  # written last into the dataset folder: its presence marks complete references
SWAPS_DONE = "swaps.json"  # written last into SWAP_FOLDER
SWAP_PARTS = (slice(48, 68), slice(36, 42), slice(42, 48))  # the mouth, each eye (68-point indices)
SWAP_GROW = 0.06  # the parts' hulls widened by this share of the side


def frame_of(name: str) -> tuple[int, int]:
    """(video index, frame index) of a pair name ``VV_FFFFFF`` (``face2face.train.prepare``)."""
    video, frame = name.split("_")
    return int(video), int(frame)


def _fps(manifest: dict) -> list[float]:
    return [float(s.get("fps") or 30.0) for s in manifest.get("sources", [])] or [30.0]


def split_pairs(data: Path, split: str) -> tuple[list[str], np.ndarray]:
    """(names, ``(N, 68, 2)`` landmarks) of the pairs of a split whose photo is there."""
    names, points, _ = read_landmarks(data / split)
    present = {p.stem for p in (data / split / "target").glob("*.png")}
    keep = [i for i, n in enumerate(names) if n in present]
    return [names[i] for i in keep], points[keep]


def mean_shape(points: np.ndarray) -> np.ndarray:
    """``float32 (68, 2)``: the mean of ``(N, 68, 2)`` landmarks, the bank's template."""
    return points.astype(np.float64).mean(axis=0).astype(np.float32)


def choose_bank(data: str | Path, size: int = BANK_SIZE) -> list[str]:
    """Names of the train pairs the bank keeps (see the module's docstring)."""
    data = Path(data)
    fps = _fps(read_manifest(data))
    names, points = split_pairs(data, "train")
    test_names = split_pairs(data, "test")[0] if (data / "test" / "landmarks.json").is_file() else []
    first_test: dict[int, int] = {}
    for name in test_names:
        video, frame = frame_of(name)
        first_test[video] = min(first_test.get(video, frame), frame)
    def before_the_split(name: str) -> bool:  # not within a second before its video's test split
        video, frame = frame_of(name)
        return frame < first_test.get(video, np.inf) - EXCLUDE_SECONDS * fps[min(video, len(fps) - 1)]

    eligible = [i for i, n in enumerate(names) if before_the_split(n)]
    if not eligible:  # a video of a second or two: the bank cannot keep its distance from the test split
        log.warning("%s: the train split is under a second of video; the reference bank takes train frames "
                    "from just before the test split (record 10 s or more)", data)
        eligible = list(range(len(names)))
    picked = farthest_points(normalised_shapes(points[eligible], mean_shape(points)), size)
    return sorted(names[eligible[i]] for i in picked)


def farthest_points(features: np.ndarray, count: int) -> list[int]:
    """Indices of ``count`` rows of ``features`` (N, D) that span them: the row nearest the mean,
    then each time the row farthest from those picked (farthest-point sampling)."""
    features = np.asarray(features, np.float64)
    picked = [int(np.argmin(((features - features.mean(axis=0)) ** 2).sum(axis=1)))]
    nearest = ((features - features[picked[0]]) ** 2).sum(axis=1)
    while len(picked) < min(count, len(features)):
        picked.append(int(np.argmax(nearest)))
        nearest = np.minimum(nearest, ((features - features[picked[-1]]) ** 2).sum(axis=1))
    return picked


def dataset_bank(data: str | Path, chosen: list[str]) -> ReferenceBank:
    """The bank of ``chosen`` train pairs: their photos and landmarks, the train split's mean shape."""
    data = Path(data)
    names, points = split_pairs(data, "train")
    where = {n: i for i, n in enumerate(names)}
    images = []
    for name in chosen:
        image = cv2.imread(str(data / "train" / "target" / f"{name}.png"), cv2.IMREAD_COLOR)
        if image is None:
            raise Face2FaceError(f"{data}/train/target/{name}.png: missing; prepare the dataset again")
        images.append(image)
    return ReferenceBank(np.stack(images), points[[where[n] for n in chosen]], list(chosen), mean_shape(points))


def allowed_for(bank: ReferenceBank, name: str, fps: list[float]) -> np.ndarray:
    """``bool (K,)``: the bank's crops a train pair ``name`` may take: none within a second of it;
    where every crop is (a video of a second or two), the one farthest from it in time, never its own."""
    video, frame = frame_of(name)
    rate = fps[min(video, len(fps) - 1)]
    apart = np.array([np.inf if v != video else abs(f - frame) for v, f in map(frame_of, bank.names)])
    allowed = apart >= EXCLUDE_SECONDS * rate
    if not allowed.any() and apart.max() > 0:
        allowed[int(np.argmax(apart))] = True
    return allowed


def has_references(data: str | Path) -> bool:
    """Whether the dataset's references are complete."""
    return (Path(data) / DONE).is_file()


def ensure_references(data: str | Path) -> ReferenceBank:
    """The dataset's bank, after writing the bank and every pair's reference where they are missing
    (interrupted: written again from the start; a few seconds for hundreds of pairs). Processes
    sharing the folder (workers of one run on one machine) take turns: the first writes."""
    data = Path(data)
    read_manifest(data)  # a one-line error for a folder that is not a dataset
    if has_references(data):
        return load_bank(data / BANK_FOLDER)
    with _locked(data / ".references.lock"):
        if has_references(data):
            return load_bank(data / BANK_FOLDER)
        return _write_references(data)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` for the block (POSIX; elsewhere none: one process per folder)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_references(data: Path) -> ReferenceBank:
    manifest = read_manifest(data)
    fps = _fps(manifest)
    bank = dataset_bank(data, choose_bank(data))
    (data / DONE).unlink(missing_ok=True)
    shutil.rmtree(data / BANK_FOLDER, ignore_errors=True)
    save_bank(bank, data / BANK_FOLDER)
    counts = {}
    for split in SPLITS:
        if not (data / split / "landmarks.json").is_file():
            continue
        names, points = split_pairs(data, split)
        folder = data / split / "reference"
        shutil.rmtree(data / split / SWAP_FOLDER, ignore_errors=True)  # made from the references being replaced
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for name, p in zip(names, points):
            allowed = allowed_for(bank, name, fps) if split == "train" else None
            image = bank.build(p, allowed=allowed)
            if not cv2.imwrite(str(folder / f"{name}.png"), image):
                raise Face2FaceError(f"{folder / name}.png: cannot write (disk full or no permission?)")
        counts[split] = len(names)
    write_atomic(data / DONE, json.dumps({"bank": bank.names, "pairs": counts}, indent=2).encode())
    log.info("references: a bank of %d train crops, a reference for each of %d pairs", len(bank),
             sum(counts.values()))
    return bank


def parts_mask(points: np.ndarray, size: int) -> np.ndarray:
    """``float32 (S, S, 1)`` in [0, 1]: the mouth and each eye (hulls of their landmarks) widened by
    ``SWAP_GROW`` of the side, feathered."""
    grow = max(3, int(round(SWAP_GROW * size)) | 1)
    mask = np.zeros((size, size), np.uint8)
    for part in SWAP_PARTS:
        cv2.fillConvexPoly(mask, cv2.convexHull(np.round(points[part]).astype(np.int32)), 255)
    mask = cv2.GaussianBlur(cv2.dilate(mask, np.ones((grow, grow), np.uint8)), (0, 0), grow / 3)
    return mask.astype(np.float32)[..., None] / 255.0


def swapped_reference(bank: ReferenceBank, reference: np.ndarray, points: np.ndarray, crop: int) -> np.ndarray:
    """``reference`` (built for ``points``) with its mouth and eyes (``parts_mask``) taken from the
    bank's crop ``crop`` warped onto the same points: a reference whose parts show another expression."""
    other = bank.warped(crop, points)
    mask = parts_mask(points, bank.size)
    return np.clip(reference * (1.0 - mask) + other * mask + 0.5, 0, 255).astype(np.uint8)


def swap_crop(bank: ReferenceBank, name: str, fps: list[float]) -> int:
    """The bank crop whose parts train pair ``name``'s swapped reference shows: drawn at random,
    seeded by the name, among the crops it may take (``allowed_for``)."""
    allowed = np.flatnonzero(allowed_for(bank, name, fps))
    return int(np.random.default_rng(zlib.crc32(name.encode())).choice(allowed))


def ensure_swaps(data: str | Path) -> None:
    """Write ``train/reference_swap/NAME.png`` for each train pair where missing (``--swap-parts``):
    its reference with the mouth and eyes of a bank crop drawn at random (seeded by the pair's
    name; never one within a second of it), so training sees references whose parts are wrong
    and learns to draw them from the sketch."""
    data = Path(data)
    folder = data / "train" / SWAP_FOLDER
    if has_references(data) and (folder / SWAPS_DONE).is_file():  # rewritten references remove the swaps
        return
    bank = ensure_references(data)
    with _locked(data / ".references.lock"):
        if (folder / SWAPS_DONE).is_file():
            return
        fps = _fps(read_manifest(data))
        names, points = split_pairs(data, "train")
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for name, p in zip(names, points):
            reference = cv2.imread(str(data / "train" / "reference" / f"{name}.png"), cv2.IMREAD_COLOR)
            if reference is None:
                raise Face2FaceError(f"{data}/train/reference/{name}.png: missing; remove {data / DONE} and train again")
            image = swapped_reference(bank, reference, p, swap_crop(bank, name, fps))
            if not cv2.imwrite(str(folder / f"{name}.png"), image):
                raise Face2FaceError(f"{folder / name}.png: cannot write (disk full or no permission?)")
        write_atomic(folder / SWAPS_DONE, json.dumps({"pairs": len(names)}).encode())
        log.info("references: %d with the mouth and eyes of another crop (--swap-parts)", len(names))


def reference_folder(model: str | Path) -> Path:
    """``MODEL.reference/`` beside ``MODEL.onnx``: the bank the model reads its references from."""
    path = Path(model)
    return path.with_name(path.stem + ".reference")


def write_model_bank(data: str | Path, model: str | Path) -> Path:
    """Copy the dataset's bank to ``MODEL.reference/``. Atomic: a partial folder never takes the name."""
    source = Path(data) / BANK_FOLDER
    if not has_references(data) or not (source / "bank.json").is_file():
        raise Face2FaceError(f"{data}: no reference bank (references.json missing); train with it first")
    folder = reference_folder(model)
    tmp = folder.with_name(f".{folder.name}.part")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        shutil.copytree(source, tmp)
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder

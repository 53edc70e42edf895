"""The studio's folder: one quickstart work folder per target (``ROOT/NAME/``, the target's video
copied in as ``target.EXT``), and what the page shows of each, read from the files the commands
write. The studio reads and writes only inside ``ROOT``."""

from __future__ import annotations

import functools
import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from face2face.errors import Face2FaceError
from face2face.studio.jobs import Job

TARGET = "target"  # ROOT/NAME/target.EXT: the target's video
STUDIO = ".studio"  # ROOT/.studio/ and ROOT/NAME/.studio/: the studio's own files (jobs, uploads, drives)
STAGES = ("dataset", "train", "export", "int8", "evaluate")  # quickstart's, as its progress records name them
STAGE_BARS = {"dataset": "prepare", "train": "train"}  # the progress bar that counts a stage
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")


@dataclass
class Stage:
    """One quickstart stage as the page shows it."""

    name: str
    state: str = "waiting"  # waiting | running | done | kept
    done: int | None = None  # its count (frames, steps), where it counts
    total: int | None = None


@dataclass
class Learning:
    """A target's quickstart, read from its files."""

    job: str  # JobState.state
    error: str
    plan: str
    stages: list[Stage]
    curve: list[tuple[int, str, float]] = field(default_factory=list)  # (step, loss name, value)
    grid: Path | None = None  # the latest (sketch | output | photo) sample grid
    first_model: int | None = None  # steps of the first model to drive: this run's first export, else the one there
    log: str = ""


class Workspace:
    """The targets under ``root``."""

    def __init__(self, root: str | Path) -> None:
        self.shown = str(root)  # as the user named it
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def targets(self) -> list[str]:
        """Names of the targets, newest first."""
        folders = [p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".") and video_of(p)]
        return [p.name for p in sorted(folders, key=lambda p: p.stat().st_mtime, reverse=True)]

    def folder(self, name: str) -> Path:
        """A target's work folder (a one-line error for a name that is not one)."""
        if not name or name not in self.targets():
            raise Face2FaceError(f"no target {name!r} in {self.root}: add its video first")
        return self.root / name

    def inside(self, path: str | Path) -> Path:
        """``path`` resolved, if it lies inside the studio's folder; else a one-line error."""
        resolved = Path(path).resolve()
        if not resolved.is_relative_to(self.root):
            raise Face2FaceError(f"{path}: outside the studio's folder {self.root}")
        return resolved

    def relative(self, path: str | Path) -> str:
        """``path`` (inside the folder: else a one-line error) relative to it: the commands the
        studio runs work in the folder, so what they print names its files as the page does."""
        return str(self.inside(path).relative_to(self.root))

    def add(self, upload: str | Path) -> str:
        """Copy a target video into a new work folder (named for the file) and return its name; a
        file that is not a readable video gets the CLI's one-line error and leaves nothing behind."""
        source = Path(upload)
        check_target(source)
        stem = re.sub(r"[^\w.-]+", "_", source.stem).strip("._") or "target"
        name, n = stem, 1
        while (self.root / name).exists():
            n += 1
            name = f"{stem}-{n}"
        folder = self.root / name
        folder.mkdir()
        shutil.copyfile(source, folder / f"{TARGET}{source.suffix.lower()}")
        return name

    def drives(self, name: str) -> Path:
        """A target's folder of drivers and their reenactments (the Drive tab's)."""
        return self.folder(name) / STUDIO / "drives"

    def job(self, name: str, kind: str) -> Job:
        """A target's job (``quickstart``, ``drive``), or the studio's own (``live``: name "")."""
        return Job((self.folder(name) if name else self.root) / STUDIO, kind, cwd=self.root)

    def models(self) -> list[Path]:
        """Every target's model that has been exported (its sidecar beside it)."""
        from face2face.modelfile import sidecar_path

        return [self.root / name / "model.onnx" for name in self.targets()
                if sidecar_path(self.root / name / "model.onnx").is_file()]


def video_of(folder: Path) -> Path | None:
    """A work folder's target video, if it has one."""
    return next((p for p in sorted(folder.glob(f"{TARGET}.*")) if p.suffix.lower() in VIDEO_SUFFIXES), None)


def check_target(path: Path) -> None:
    """A one-line error, as ``prepare``'s, for a file that is not a video with frames or in which a
    quick look finds no usable face; the file named as the user named it (the upload's own folder
    means nothing to them)."""
    from face2face.train.prepare import describe_dropped, sample_faces

    try:
        sample = sample_faces(str(path))
    except Face2FaceError as exc:
        raise Face2FaceError(str(exc).replace(str(path), path.name)) from None
    if not sample.frames_read:
        raise Face2FaceError(f"{path.name}: not a readable video (no frame could be decoded)")
    if not sample.kept:
        raise Face2FaceError(f"{path.name}: no usable face in {sample.frames_read} frames sampled (dropped: "
                             f"{describe_dropped(sample.dropped)}); is the target's face visible and large enough?")


def learning(folder: Path, job: Job) -> Learning:
    """Where the target's quickstart stands: its stages, the training curve, the latest sample grid,
    the first model to drive, and what it printed last."""
    from face2face.train.quickstart import exported_steps

    state, records = job.state(), job.records()
    stages = {name: Stage(name) for name in STAGES}
    plan, curve, first = "", [], None
    for record in records:
        kind = record["kind"]
        if kind == "plan":
            plan = record["text"]
        elif kind == "stage":
            stages[record["stage"]].state = {"start": "running"}.get(record["state"], record["state"])
        elif kind == "count":
            for stage, bar in STAGE_BARS.items():
                if record["bar"] == bar:
                    stages[stage].done, stages[stage].total = record["done"], record["total"]
            if record["bar"] == "train":
                curve += [(record["done"], name, value) for name, value in record["figures"].items()]
        elif kind == "model" and first is None:
            first = record["steps"]
    if not state.running:  # a stage cut short is not running any more
        for stage in stages.values():
            stage.state = "waiting" if stage.state == "running" else stage.state
    if first is None:  # exported by an earlier run (before a pause): still there to drive
        first = exported_steps(folder / "model.onnx")
    samples = sorted((folder / "run" / "samples").glob("step_*.png"))
    return Learning(state.state, state.error, plan, list(stages.values()), curve, samples[-1] if samples else None,
                    first, job.log_tail())


def evaluations(folder: Path) -> list[tuple[str, dict]]:
    """The target's evaluations: the current model's first, then the earlier models' (kept by
    quickstart under their training steps), newest first."""
    from face2face.train.quickstart import EVALUATIONS

    current = folder / "evaluation.json"
    found = []
    if current.is_file():
        found.append(("this model", json.loads(current.read_text())))
    kept = sorted((folder / EVALUATIONS).glob("step-*.json"), key=lambda p: int(p.stem.split("-")[1]), reverse=True)
    for path in kept:
        report = json.loads(path.read_text())
        if not found or report != found[0][1]:
            found.append((f"step {path.stem.split('-')[1]}", report))
    return found


def figure_rows(reports: list[tuple[str, dict]]) -> tuple[list[str], list[list[str]]]:
    """``evaluate``'s table (a line a figure: its value and one-line meaning) with a column per report."""
    from face2face.train.evaluate import format_table

    columns: list[dict[str, str]] = []
    for _, report in reports:
        lines = format_table(report).splitlines()[1:]  # under the title line: "  NAME       VALUE (MEANING)"
        columns.append({line[:13].strip(): line[13:].strip() for line in lines})
    names = list(dict.fromkeys(name for column in columns for name in column))
    return ["figure", *[label for label, _ in reports]], [[n, *[c.get(n, "") for c in columns]] for n in names]


def describe_plan(video: Path, config) -> str:
    """Quickstart's plan for a fresh run of ``video`` under ``config`` (a ``QuickstartConfig``) and
    what a quick look at its frames finds, two lines."""
    from face2face.runtime.openvino_engine import native_bf16
    from face2face.train.quickstart import make_plan

    plan = make_plan(str(video), config, False, native_bf16())
    return f"{plan.describe()}\n{_sample(str(video), video.stat().st_mtime_ns, config.size, config.detector)}"


@functools.lru_cache(maxsize=32)
def _sample(video: str, modified: int, size: int, detector: str) -> str:
    """What a quick look at the video's frames finds, once per video, size and detector."""
    from face2face.train.prepare import PrepareConfig, describe_sample, sample_faces

    return describe_sample(sample_faces(video, config=PrepareConfig(size=size, detector=detector)))

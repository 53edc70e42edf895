"""face2face studio: its jobs and folder on their own, then the whole page driven in headless
Chromium (Debian's `chromium`, through Playwright; the browser is never downloaded): a bad upload,
a target, a tiny quickstart paused, resumed and followed across a restart of the studio, its
figures, a reenactment from an uploaded clip and from the browser's (fake) webcam, and `live` from a
video file with a model switch."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import VIDEOS
from face2face import progress
from face2face.errors import Face2FaceError
from face2face.video import VideoSource, VideoWriter

studio_jobs = pytest.importorskip("face2face.studio.jobs")
from face2face.studio.jobs import Job  # noqa: E402
from face2face.studio.workspace import Workspace, figure_rows  # noqa: E402

SCREENSHOTS = "FACE2FACE_SCREENSHOTS"  # a folder to keep the page's screenshots in (docs/studio)


def cut(video: Path, out: Path, frames: int, width: int | None = None) -> Path:
    """The first ``frames`` frames of ``video`` as a new file (a short driver)."""
    with VideoSource(str(video)) as source:
        first = source.read()
        h, w = first.shape[:2]
        size = (width, round(h * width / w)) if width else (w, h)
        with VideoWriter(out, *size, source.fps) as writer:
            frame, n = first, 0
            while frame is not None and n < frames:
                writer.write(cv2.resize(frame, size))
                frame, n = source.read(), n + 1
    return out


def frame_count(video: Path) -> int:
    with VideoSource(str(video)) as source:
        return source.frame_count


def test_job_runs_a_command_pauses_it_and_tells_its_error(tmp_path):
    folder = tmp_path / "jobs"
    job = Job(folder, "prepare")
    assert job.state().state == "never"
    job.start("prepare", str(VIDEOS / "lp_d19.mp4"), "-o", str(tmp_path / "data"), "--size", "64")
    assert job.state().running
    with pytest.raises(Face2FaceError, match="already running"):
        job.start("doctor")
    deadline = time.monotonic() + 60
    while not [r for r in job.records() if r["kind"] == "count" and r["done"] >= 5] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert job.pause()  # Ctrl-C: prepare stops, leaving no dataset that looks complete
    state = job.wait(30)
    assert state.state == "stopped" and state.exit == 130 and not (tmp_path / "data" / "manifest.json").exists()
    counts = [r for r in job.records() if r["kind"] == "count"]
    assert counts[0]["bar"] == "prepare" and counts[0]["done"] == 1 and counts[-1]["total"] == frame_count(VIDEOS / "lp_d19.mp4")
    assert not job.pause()  # nothing runs

    failing = Job(folder, "bad")
    failing.start("prepare", str(tmp_path / "gone.mp4"), "-o", str(tmp_path / "data"))
    state = failing.wait(60)
    assert (state.state, state.exit) == ("failed", 1)
    assert state.error == f"{tmp_path / 'gone.mp4'}: no such video file"  # the CLI's own line
    assert Job(folder, "bad").state() == state  # read back from its files alone, as a restarted studio does


def test_progress_file_keeps_only_whole_lines(tmp_path, monkeypatch):
    path = tmp_path / "p"
    monkeypatch.setenv(progress.ENV, str(path))
    for step in range(1, 101):  # a fast bar is written at its first and last counts, not every step
        progress.count("train", step, 100, {"G_L1": 0.5})
    progress.report("stage", stage="train", state="done")
    with open(path, "a") as out:
        out.write('{"kind": "count", "ba')  # a record still being written
    records = progress.read(path)
    counts = [r["done"] for r in records if r["kind"] == "count"]
    assert counts[0] == 1 and counts[-1] == 100 and len(counts) < 10
    assert records[-1]["kind"] == "stage" and records[-1]["state"] == "done"
    monkeypatch.delenv(progress.ENV)
    progress.report("stage", stage="x", state="start")  # no file named: nothing written
    assert len(progress.read(path)) == len(records)


def test_workspace_takes_videos_only_and_stays_inside_its_folder(tmp_path):
    workspace = Workspace(tmp_path / "studio")
    notes = tmp_path / "notes.mp4"
    notes.write_text("not a video")
    with pytest.raises(Face2FaceError, match=r"^notes.mp4: not a readable video"):
        workspace.add(notes)
    faceless = tmp_path / "wall.mp4"
    with VideoWriter(faceless, 320, 240, 10) as writer:
        for i in range(20):
            writer.write(np.full((240, 320, 3), 40 + i, np.uint8))
    with pytest.raises(Face2FaceError, match=r"^wall.mp4: no usable face in 8 frames sampled \(dropped: no_face 8\)"):
        workspace.add(faceless)
    assert workspace.targets() == [] and list(workspace.root.iterdir()) == []  # nothing left behind
    name = workspace.add(cut(VIDEOS / "lp_d19.mp4", tmp_path / "my clip.mp4", 30))
    assert name == "my_clip" and workspace.targets() == ["my_clip"]
    assert workspace.add(tmp_path / "my clip.mp4") == "my_clip-2"  # never over an earlier target
    assert workspace.inside(workspace.root / "my_clip" / "target.mp4").is_file()
    with pytest.raises(Face2FaceError, match="outside the studio's folder"):
        workspace.inside(workspace.root / ".." / "notes.mp4")


def test_figures_of_several_models_line_up_by_name():
    now = _report(face_l1=0.0312, psnr_vs_fp32=48.0, psnr_vs_fp32_min=46.5, precision="int8")
    headers, rows = figure_rows([("this model", now), ("step 1200", _report())])
    assert headers == ["figure", "this model", "step 1200"]
    by_name = {row[0]: row[1:] for row in rows}
    assert by_name["face"] == ["L1 0.0312, SSIM 0.8000 (inside the face's outline)",
                               "L1 0.0400, SSIM 0.8000 (inside the face's outline)"]
    assert by_name["vs fp32"][0].startswith("PSNR 48.0 dB mean, 46.5 dB min") and by_name["vs fp32"][1] == ""
    assert list(by_name)[:3] == ["L1", "PSNR", "SSIM"]


def _report(**changes) -> dict:
    base = {"model": "m.onnx", "data": "d", "split": "test", "pairs": 10, "provider": "cpu", "precision": "fp32",
            "l1": 0.05, "psnr": 20.0, "ssim": 0.7, "face_l1": 0.04, "face_ssim": 0.8, "sharpness": 0.9,
            "detail_match": 0.5, "checkerboard": 0.2, "checkerboard_real": 1.5, "frame_psnr": None, "face_rate": 1.0,
            "faces_found": 10, "akd": None, "akd_pairs": 0, "identity": 0.3, "pupil_error_px": None,
            "psnr_vs_fp32": None}
    return {**base, **changes}


def test_evaluations_list_the_current_model_then_earlier_ones(tmp_path):
    from face2face.studio.workspace import evaluations

    (tmp_path / "evaluations").mkdir()
    for steps, l1 in ((400, 0.05), (3600, 0.04), (1200, 0.045)):
        (tmp_path / "evaluations" / f"step-{steps}.json").write_text(json.dumps(_report(face_l1=l1)))
    (tmp_path / "evaluation.json").write_text(json.dumps(_report(face_l1=0.04)))  # the model of step 3600
    found = evaluations(tmp_path)
    assert [label for label, _ in found] == ["this model", "step 1200", "step 400"]
    assert [r["face_l1"] for _, r in found] == [0.04, 0.045, 0.05]


def test_learning_reads_stages_counts_curve_and_the_first_model_from_the_records(tmp_path, monkeypatch):
    from face2face.studio.workspace import learning

    job = Job(tmp_path / ".studio", "quickstart")
    job.folder.mkdir()
    monkeypatch.setenv(progress.ENV, str(job.progress_path))
    progress.report("plan", text="plan: 40 training steps", steps=40)
    progress.report("stage", stage="dataset", state="kept")
    progress.report("stage", stage="train", state="start")
    progress.count("train", 1, 40, {"G_L1": 0.3, "G_GAN": 1.0})
    progress.report("model", steps=12, path="t/model.onnx", first=True)
    progress.report("model", steps=24, path="t/model.onnx", first=False)
    progress.count("train", 40, 40, {"G_L1": 0.1, "G_GAN": 0.8})
    progress.report("stage", stage="train", state="done")
    progress.report("stage", stage="export", state="start")
    job.log_path.write_text("train: 100%|###| 40/40\rtrain: 100%|###| 40/40 done\n3/4 export: t/model.onnx\n")
    now = learning(tmp_path, job)
    assert now.plan == "plan: 40 training steps" and now.first_model == 12
    assert [(s.name, s.state, s.done, s.total) for s in now.stages] == [
        ("dataset", "kept", None, None), ("train", "done", 40, 40), ("export", "waiting", None, None),
        ("int8", "waiting", None, None), ("evaluate", "waiting", None, None)]  # no process runs: none is running
    assert now.curve == [(1, "G_L1", 0.3), (1, "G_GAN", 1.0), (40, "G_L1", 0.1), (40, "G_GAN", 0.8)]
    assert now.log == "train: 100%|###| 40/40 done\n3/4 export: t/model.onnx"  # a bar's redraws: its latest
    assert now.job == "stopped"  # it printed, no process runs and it left no exit status: stopped


# --- the page in a real browser ------------------------------------------------------------------

CHROMIUM = os.environ.get("FACE2FACE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


class Studio:
    """`face2face studio ROOT` in a process of its own, as a user starts it; ``stop`` is Ctrl-C."""

    def __init__(self, root: Path, display: str) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        started = time.monotonic()
        self.process = subprocess.Popen(  # the folder named as a user names it, from where they are
            [sys.executable, "-m", "face2face", "studio", root.name, "--port", str(self.port)], cwd=root.parent,
            env={**os.environ, "DISPLAY": display}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        import urllib.request

        while time.monotonic() - started < 60:
            try:
                urllib.request.urlopen(self.url, timeout=1).close()
                break
            except OSError:
                assert self.process.poll() is None, self.process.stdout.read()
                time.sleep(0.1)
        self.seconds_to_page = time.monotonic() - started
        self.output: str | None = None

    def stop(self) -> str:
        """Ctrl-C, as a user stops it; what it printed (idempotent). Killed if it is still up 30 s
        later, so that a hang fails the test without leaving the studio running."""
        if self.output is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.output = self.process.communicate(timeout=30)[0]
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.output = self.process.communicate()[0]
                raise
        return self.output


@pytest.fixture()
def studios():
    """Starts studios (``studios(root, display)``) and stops each at the end, also after a failure."""
    started: list[Studio] = []

    def start(root: Path, display: str) -> Studio:
        started.append(Studio(root, display))
        return started[-1]

    yield start
    with contextlib.ExitStack() as stopping:  # each one stopped, even after another's stop failed
        for studio in started:
            stopping.callback(studio.stop)


def fake_webcam(video: Path, out: Path, frames: int) -> Path:
    """``frames`` frames of ``video`` as the Y4M file Chromium plays as its webcam."""
    with VideoSource(str(video)) as source, open(out, "wb") as y4m:
        y4m.write(f"YUV4MPEG2 W320 H180 F{round(source.fps)}:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            frame = cv2.resize(source.read(), (320, 180))
            y4m.write(b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())
    return out


@pytest.fixture()
def chromium(tmp_path):
    pytest.importorskip("gradio", reason="the studio's extra is not installed: pip install 'face2face[ui]'")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the test extra)")
    if not CHROMIUM:
        pytest.skip("no chromium to drive the studio in: apt-get install chromium (or set FACE2FACE_CHROMIUM)")
    webcam = fake_webcam(VIDEOS / "lp_d12.mp4", tmp_path / "webcam.y4m", 60)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--disable-background-networking", "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream", f"--use-file-for-fake-video-capture={webcam}"])
        yield browser
        browser.close()


def test_the_whole_path_in_the_page(chromium, studios, x_display, tmp_path):
    root = tmp_path / "studio"
    shots = Path(os.environ.get(SCREENSHOTS) or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    studio = studios(root, x_display)
    print(f"page up {studio.seconds_to_page:.1f} s after the command")
    context = chromium.new_context(viewport={"width": 1280, "height": 1000}, permissions=["camera"])
    page = context.new_page()

    def shot(name: str) -> None:  # faces of the shared clips stay out of the pictures: images and videos masked
        page.wait_for_timeout(500)
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True,
                        mask=[page.locator("img"), page.locator("video"), page.locator("canvas")])

    def tab(name: str) -> None:
        page.get_by_role("tab", name=name).click()

    page.goto(studio.url)
    page.wait_for_selector("#target-upload input[type=file]", state="attached")

    # a file that is not a video: the CLI's line, shown in the page; nothing else changes
    notes = tmp_path / "notes.mp4"
    notes.write_text("not a video")
    page.set_input_files("#target-upload input[type=file]", str(notes))
    page.wait_for_selector("#problem")
    assert page.inner_text("#problem").startswith("notes.mp4: not a readable video")
    assert list(root.iterdir()) == [root / ".studio"]

    # a target: the plan before anything runs
    page.set_input_files("#target-upload input[type=file]", str(VIDEOS / "lp_d18.mp4"))
    page.wait_for_selector("#added")
    page.wait_for_function("document.querySelector('#plan').innerText.includes('usable face')")
    assert "216 frames -> dataset, 3600 training steps" in page.inner_text("#plan") or "10800" in page.inner_text("#plan")
    assert "a usable face in 8 of 8 frames sampled" in page.inner_text("#plan")
    page.get_by_text("Options (quickstart's").click()
    for option, value in (("steps", "20"), ("ngf", "8"), ("every", "6"), ("first", "60")):
        page.fill(f"#opt-{option} input", value)
    page.locator("#opt-size input").click()
    page.get_by_role("option", name="64", exact=True).click()
    page.wait_for_function("document.querySelector('#plan').innerText.includes('20 training steps at ngf 8')")
    shot("target")

    # learn: start, pause in training, resume
    tab("2 Learn")
    page.click("#learn-start")
    page.wait_for_function("(document.querySelector('#stage-train progress') || {value: 0}).value >= 4", timeout=120_000)
    page.click("#learn-pause")
    page.wait_for_selector("#learn-state[data-state=stopped]", timeout=60_000)
    assert "paused" in page.inner_text("#learn-state")
    assert page.get_attribute("#stage-dataset", "data-state") == "done"
    page.click("#learn-start")
    page.wait_for_selector("#learn-state[data-state=running]", timeout=30_000)

    # the page and the studio closed while it learns: nothing is lost, and a new studio shows where it is
    page.close()
    studio.stop()
    studio = studios(root, x_display)
    page = context.new_page()
    page.goto(studio.url)
    tab("2 Learn")
    page.wait_for_selector("#learn-state[data-state=running], #learn-state[data-state=finished]", timeout=30_000)
    page.wait_for_selector("#learn-state[data-state=finished]", timeout=300_000)
    page.wait_for_selector("#first-model")  # the model handed over (no early one: --first-model 60 min)
    page.wait_for_selector("#learn-grid img")
    log = (root / "lp_d18" / ".studio" / "quickstart.log").read_text()
    assert "2/4 training: resuming" in log and "peak memory per stage" in log
    states = [page.get_attribute(f"#stage-{name}", "data-state") for name in ("dataset", "train", "export", "int8",
                                                                              "evaluate")]
    assert states == ["kept", "done", "done", "done", "done"]  # the dataset from before the pause
    assert page.locator("#learn-curve").inner_text().count("G_L1") >= 1
    shot("learn")

    # check: evaluate's figures with their meanings, and its grid
    tab("3 Check")
    page.wait_for_selector("#check-table table")
    page.wait_for_function("document.querySelector('#check-table').innerText.includes('inside the face')")
    assert page.locator("#check-grid img").count() == 1
    shot("check")

    # drive: an uploaded clip, then a few seconds of the browser's webcam
    tab("4 Drive")
    driver = cut(VIDEOS / "lp_d3.mp4", tmp_path / "driver.webm", 20, width=640)  # VP8: the browser plays it
    page.set_input_files("#drive-video input[type=file]", str(driver))
    page.wait_for_selector("#drive-video video")
    page.click("#drive-start")
    page.wait_for_selector("#drive-state[data-state=finished]", timeout=120_000)
    page.wait_for_function("(v => v && v.readyState >= 1 && v.videoWidth === 1280)"
                           "(document.querySelector('#drive-output video'))")
    drives = root / "lp_d18" / ".studio" / "drives"
    written = sorted(drives.glob("reenacted-*.webm"))
    assert len(written) == 1 and frame_count_read(written[0]) == 20
    uploaded = set(drives.glob("driver-*"))
    shot("drive")
    page.click("#drive-video button[aria-label='Clear']")
    page.click("#drive-video button[aria-label='Capture from camera']")
    page.get_by_text("Click to Access Webcam").click()
    page.wait_for_function("(v => v && v.readyState >= 2)(document.querySelector('#drive-video video'))")
    page.click("#drive-video button[aria-label='start recording']")
    page.wait_for_timeout(2000)
    page.click("#drive-video button[aria-label='start recording']")  # the same button stops it
    page.wait_for_selector("#drive-video [aria-label='play-pause-replay-button']", state="attached", timeout=30_000)
    page.click("#drive-start")
    page.wait_for_selector(f"#drive-state[data-state=finished]:not(:has-text('{written[0].name}'))", timeout=120_000)
    recorded = sorted(set(drives.glob("driver-*")) - uploaded)
    assert len(recorded) == 1 and frame_count_read(recorded[0]) > 10

    # live: from the target's video into the preview window, then to another model without stopping
    copy = root / "copy"
    copy.mkdir()
    for item in (root / "lp_d18").iterdir():
        if item.name.startswith(("model", "target")):
            (shutil.copytree if item.is_dir() else shutil.copyfile)(item, copy / item.name)
    tab("5 Live")
    page.wait_for_selector("#live-doctor li")
    assert "virtual camera" in page.inner_text("#live-doctor") and "fix: " in page.inner_text("#live-doctor")
    page.locator("#live-source input").click()
    page.get_by_role("option", name="lp_d18/target.mp4", exact=True).click()
    page.locator("#live-virtual input").uncheck()  # none on this machine: doctor said so above
    page.locator("#live-model input").click()
    page.get_by_role("option", name="lp_d18/model.onnx", exact=True).click()
    page.click("#live-start")
    page.wait_for_function("+(document.querySelector('#live-frames') || {innerText: 0}).innerText > 10", timeout=90_000)
    assert "model lp_d18" in page.inner_text("#live-status")
    page.locator("#live-model input").click()
    page.get_by_role("option", name="copy/model.onnx", exact=True).click()
    page.wait_for_function("document.querySelector('#live-status').innerText.includes('model copy')", timeout=60_000)
    shot("live")
    page.click("#live-stop")
    page.wait_for_selector("#live-state[data-state=stopped]", timeout=30_000)
    live_log = (root / ".studio" / "live.log").read_text()
    assert "switching to copy/model.onnx" in live_log and "model reloaded 1 time" in live_log
    assert "stopped: interrupt" in live_log


def frame_count_read(video: Path) -> int:
    with VideoSource(str(video)) as source:
        return sum(1 for _ in source)

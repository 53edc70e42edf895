"""The frame layout: the background clip written at export, the seamless paste, and reenact into
the target's own frames."""

import json

import cv2
import numpy as np

from face2face.cli import main
from face2face.geometry import Square
from face2face.modelfile import read_sidecar
from face2face.runtime.background import BackgroundClip, FacePaster, crop_to_frame, face_outline, load_background
from face2face.runtime.compose import Composer, output_size
from face2face.runtime.generator import Generator
from face2face.runtime.pipeline import Puppeteer, PuppetConfig
from face2face.train.background import steadiest_stretch
from face2face.video import VideoSource

from conftest import VIDEOS, copy_reference


def test_export_writes_the_target_s_frames_with_their_squares(tiny_model, tiny_dataset):
    info = read_sidecar(tiny_model)
    folder = tiny_model.with_name(info.background)
    assert info.background == "tiny.background" and folder.is_dir()
    meta = json.loads((folder / "squares.json").read_text())
    train = json.loads((tiny_dataset / "train" / "landmarks.json").read_text())
    assert meta["size"] == [480, 480] and meta["fps"] > 0 and len(meta["frames"]) == len(train["names"]) == 32
    with VideoSource(str(VIDEOS / "lp_d19.mp4")) as video:  # the frames are the video's own
        frames = [f for _, f in zip(range(meta["frames"][0] + 1), video)]
    stored = cv2.imread(str(folder / "0000.jpg"))
    assert cv2.PSNR(stored, frames[meta["frames"][0]]) > 35
    clip = load_background(folder, 1280, 720)  # fitted, aspect kept, then enlarged to fill a 36 px margin
    assert clip.margin == 36 and clip.frames[0].shape == (792, 1352, 3) and not clip.frames[0][:, :280].any()
    first, scale = meta["squares"][0], 1.5 * 792 / 720
    assert np.allclose([clip.squares[0].cx, clip.squares[0].side], [first[0] * scale + 280, first[2] * scale], atol=0.01)


def test_the_picture_moves_with_the_driver_s_head_up_to_the_margin(tiny_model):
    clip = load_background(tiny_model.with_name(read_sidecar(tiny_model).background), 640, 360)
    composer = Composer("frame", 640, 360, clip)
    face = np.zeros((64, 64, 3), np.uint8)
    still = composer.compose(None, None, face, None, motion=(0.0, 0.0, 1.0)).copy()
    side = clip.squares[0].side
    right = composer.compose(None, None, face, None, motion=(10 / side, 0.0, 1.0)).copy()
    assert np.array_equal(right[:30, 10:], still[:30, :-10])  # the room above the face, 10 px to the right
    far = composer.compose(None, None, face, None, motion=(0.0, -1.0, 1.0))  # a whole face up: the margin only
    assert clip.margin == 18 and np.array_equal(far[:-18][:, :100], still[18:][:, :100])


def test_output_sizes_follow_the_layout():
    assert output_size("frame", None, None) == output_size("frame", None, None, 256) == (1280, 720)
    assert output_size("face", None, None) == (640, 480)  # live
    assert output_size("side-by-side", None, None, 256) == (768, 256)  # a file
    assert output_size("frame", 640, None) == (640, 720)


def test_the_clip_plays_back_and_forth_without_a_jump():
    clip = BackgroundClip([np.zeros((2, 2, 3), np.uint8)] * 4, [Square(1, 1, 1)] * 4, [np.zeros((3, 2))] * 4, fps=10.0)
    assert [clip.index(i / 10) for i in range(10)] == [0, 1, 2, 3, 2, 1, 0, 1, 2, 3]
    squares = np.array([[100, 100, 50]] * 5 + [[100 + 5 * i, 100, 50] for i in range(5)] + [[130, 100, 50]] * 4, float)
    assert steadiest_stretch(squares, 4) in (0, 1, 10)


def test_paste_keeps_the_frame_outside_the_face_and_the_face_inside(tiny_model):
    with VideoSource(str(VIDEOS / "lp_d19.mp4")) as video:
        frame = video.read()
    info = read_sidecar(tiny_model)
    points = info.template_array()
    face = cv2.resize(frame[100:400, 90:390], (info.size, info.size))  # a real face crop
    face = cv2.add(face, (40.0, 40.0, 40.0, 0.0))  # brighter than the frame: the colour match pulls it back
    square = Square(240, 250, 300)
    outline = face_outline(crop_to_frame(points, square, info.size))
    out = frame.copy()
    FacePaster().paste(out, face, square, [outline])
    changed = np.abs(out.astype(int) - frame).max(axis=2) > 0
    inside = np.zeros(frame.shape[:2], np.uint8)
    cv2.fillConvexPoly(inside, np.round(outline).astype(np.int32), 1)
    grown = cv2.dilate(inside, np.ones((61, 61), np.uint8)).astype(bool)
    assert changed[inside.astype(bool)].mean() > 0.9 and not changed[~grown].any()  # nothing leaks outside
    centre = (int(outline[:, 1].mean()), int(outline[:, 0].mean()))
    pasted = cv2.resize(face, (300, 300))[centre[0] - 100, centre[1] - 90].astype(int)
    assert np.abs(out[centre].astype(int) - pasted).max() < 40  # the face, less the colour offset
    assert np.abs(out[centre].astype(int) - (pasted - 40)).max() <= 25


def test_reenact_puts_the_face_into_the_target_s_frames(tiny_model, tmp_path):
    out = tmp_path / "framed.mp4"
    assert main(["reenact", "--model", str(tiny_model), "--source", str(VIDEOS / "lp_d18.mp4"), "-o", str(out),
                 "--layout", "frame", "--width", "640", "--height", "360"]) == 0
    clip = load_background(tiny_model.with_name(read_sidecar(tiny_model).background), 640, 360)
    with VideoSource(str(out)) as video:
        frames = list(video)
    assert len(frames) == 216 and frames[0].shape == (360, 640, 3)
    top = frames[50][:40]  # above the face: the target's own room, from a clip frame, wherever the head moved it
    mse = min(cv2.matchTemplate(f[: 40 + 2 * clip.margin], top, cv2.TM_SQDIFF).min() / top.size for f in clip.frames)
    assert 10 * np.log10(255**2 / mse) > 30


def test_still_holds_the_clip_s_first_frame(tiny_model, analyzer):
    folder = tiny_model.with_name(read_sidecar(tiny_model).background)
    clip = load_background(folder, 640, 360)
    still = Puppeteer(Generator(tiny_model, provider="cpu"), analyzer,
                      PuppetConfig(layout="frame", still=True, width=640, height=360)).composer.background
    assert len(clip.frames) == 32 and len(still.frames) == 1 and still.index(5.0) == 0
    assert np.array_equal(still.frames[0], clip.frames[0]) and still.squares == clip.squares[:1]


def test_a_model_without_a_clip_falls_back_to_the_face_layout(tiny_model, tmp_path, analyzer, caplog):
    old = tmp_path / "old.onnx"
    old.write_bytes(tiny_model.read_bytes())
    copy_reference(tiny_model, tmp_path)
    info = json.loads(tiny_model.with_suffix(".json").read_text())
    old.with_suffix(".json").write_text(json.dumps({**info, "background": ""}))
    with caplog.at_level("INFO"):
        puppeteer = Puppeteer(Generator(old, provider="cpu"), analyzer, PuppetConfig(layout="frame"))
    assert puppeteer.composer.layout == "face" and "no background clip" in caplog.text

"""The studio's page (Gradio): layout and events only. Long work runs as the CLI's own commands
(``face2face.studio.jobs``); what the page shows is read from the files they write
(``face2face.studio.workspace``)."""

from __future__ import annotations

import html
import shutil
import time
from pathlib import Path

import gradio as gr

from face2face.errors import Face2FaceError
from face2face.modelfile import sidecar_path
from face2face.runtime.reload import file_state
from face2face.studio.workspace import Workspace, describe_plan, evaluations, figure_rows, learning, video_of

REFRESH_S = 1.0  # how often the page reads the running jobs' files
LIVE_CHECKS = ("check_cameras", "check_virtual_camera", "check_display")  # doctor's, shown on the Live tab
CSS = ".stage progress { width: 60%; } .problem { color: #b00020; }"


def problem(text: str) -> str:
    """A one-line error as the page shows it."""
    return f"<p class='problem' id='problem'>{html.escape(text)}</p>"


def build(workspace: Workspace) -> gr.Blocks:
    """The page over ``workspace``: Target, Learn, Check, Drive and Live tabs."""
    from face2face.detectors import detector_names
    from face2face.runtime.compose import LAYOUTS
    from face2face.runtime.retarget import MODES
    from face2face.shapes import DEFAULT_LIMIT
    from face2face.train.quickstart import FIRST_MODEL_SECONDS, QuickstartConfig

    with gr.Blocks(title="face2face studio") as page:
        gr.Markdown(f"# face2face studio\nWork folder: `{workspace.shown}`")
        message = gr.HTML(elem_id="message")
        with gr.Row():
            target = gr.Dropdown([], value=None, label="Target", elem_id="target-pick", scale=2)
            upload = gr.File(label="Add a target video (10 s to a few minutes of one face, well lit)",
                             file_types=["video"], type="filepath", elem_id="target-upload", scale=3)
        with gr.Tabs():
            with gr.Tab("1 Target"):
                plan = gr.Markdown("Add a target video to begin: the plan appears here before anything runs.",
                                   elem_id="plan")
                with gr.Accordion("Options (quickstart's)", open=False):
                    steps = gr.Number(0, label="training steps (0 = chosen for this machine)", precision=0, minimum=0,
                                      elem_id="opt-steps")
                    ngf = gr.Number(0, label="generator width, ngf (0 = chosen for this machine)", precision=0,
                                    minimum=0, elem_id="opt-ngf")
                    size = gr.Dropdown([64, 128, 256, 512], value=256, label="crop size, px", elem_id="opt-size")
                    every = gr.Number(1, label="keep every N-th frame", precision=0, minimum=1, elem_id="opt-every")
                    first = gr.Number(FIRST_MODEL_SECONDS / 60, label="minutes of training before a first model to "
                                      "drive", minimum=0, elem_id="opt-first")
                    detector = gr.Dropdown(list(detector_names()), value="ssd", label="face detector")
            with gr.Tab("2 Learn"):
                with gr.Row():
                    start = gr.Button("Start / resume", variant="primary", elem_id="learn-start")
                    pause = gr.Button("Pause", elem_id="learn-pause")
                status = gr.HTML(elem_id="learn-status")
                with gr.Row():
                    curve = gr.LinePlot(x="step", y="value", color="loss", label="training losses",
                                        elem_id="learn-curve")
                    grid = gr.Image(label="latest sample: sketch | reference | output | photo", type="filepath",
                                    elem_id="learn-grid", interactive=False)
                log = gr.Textbox(label="quickstart's output", lines=8, max_lines=8, interactive=False,
                                 elem_id="learn-log")
            with gr.Tab("3 Check") as check_tab:
                check_refresh = gr.Button("Refresh", elem_id="check-refresh")
                table = gr.Dataframe(label="evaluation on the held-out frames (earlier models beside)",
                                     interactive=False, wrap=True, elem_id="check-table")
                check_grid = gr.Image(label="held-out frames: sketch | reference | output | photo", type="filepath",
                                      interactive=False, height=480, elem_id="check-grid")
            with gr.Tab("4 Drive"):
                driver = gr.Video(label="driver video: upload one, or record a few seconds with your webcam",
                                  sources=["upload", "webcam"], include_audio=True, height=360, elem_id="drive-video")
                with gr.Row():
                    layout = gr.Radio(list(LAYOUTS), value="frame", label="layout", elem_id="drive-layout")
                    retarget = gr.Radio(list(MODES), value="relative", label="retargeting")
                drive = gr.Button("Reenact", variant="primary", elem_id="drive-start")
                drive_status = gr.HTML(elem_id="drive-status")
                driven = gr.Video(label="reenactment", interactive=False, height=360, elem_id="drive-output")
                driven_file = gr.File(label="download", interactive=False, elem_id="drive-file")
            with gr.Tab("5 Live") as live_tab:
                findings = gr.HTML(elem_id="live-doctor")
                live_model = gr.Dropdown([], value=None, label="model (switch any time)", elem_id="live-model")
                with gr.Row():
                    camera = gr.Number(0, label="webcam index", precision=0, minimum=0, elem_id="live-camera")
                    source = gr.Dropdown([], value=None, label="or a video file in the work folder (played in a loop)",
                                         allow_custom_value=False, elem_id="live-source")
                with gr.Row():
                    virtual = gr.Checkbox(True, label="virtual camera", elem_id="live-virtual")
                    preview = gr.Checkbox(True, label="preview window", elem_id="live-preview")
                with gr.Row():
                    live_layout = gr.Radio(list(LAYOUTS), value="frame", label="layout")
                    live_retarget = gr.Radio(list(MODES), value="relative", label="retargeting")
                with gr.Row():
                    shape = gr.Slider(0, 6, DEFAULT_LIMIT, step=0.5, label="shape limit (relative; 0 = off)")
                    cutoff = gr.Slider(0.1, 5, 1.0, step=0.1, label="smoothing at rest, Hz (lower = steadier)")
                    beta = gr.Slider(0, 20, 5.0, step=0.5, label="smoothing when moving (higher = less lag)")
                with gr.Row():
                    live_start = gr.Button("Start live", variant="primary", elem_id="live-start")
                    live_stop = gr.Button("Stop", elem_id="live-stop")
                live_status = gr.HTML(elem_id="live-status")
        seen = gr.State({})  # what the Learn tab shows, so that a look that finds nothing new sends nothing
        timer = gr.Timer(REFRESH_S)

        options = [steps, ngf, size, every, first, detector]

        def config(steps, ngf, size, every, first, detector) -> QuickstartConfig:
            return QuickstartConfig(steps=int(steps) if steps else None, ngf=int(ngf) if ngf else None,
                                    every=int(every or 1), size=int(size), detector=detector,
                                    first_model_seconds=60 * float(first or 0))

        def show_plan(name, *values):
            if not name:
                yield "Add a target video to begin: the plan appears here before anything runs."
                return
            yield "Reading the video..."
            try:
                video = video_of(workspace.folder(name))
                text = describe_plan(video, config(*values))
            except Face2FaceError as exc:
                yield problem(str(exc))
                return
            said = learning(workspace.folder(name), workspace.job(name, "quickstart")).plan
            lines = text.splitlines() + ([f"last run's plan: {said}"] if said else [])
            yield "\n\n".join(f"**{lines[0]}**" if i == 0 else line for i, line in enumerate(lines))

        def add_target(path):
            if not path:
                yield gr.skip(), ""
                return
            yield gr.skip(), f"<p>checking {html.escape(Path(path).name)}: a face in 8 of its frames?</p>"
            try:
                name = workspace.add(path)
            except Face2FaceError as exc:
                yield gr.skip(), problem(str(exc))
                return
            finally:
                Path(path).unlink(missing_ok=True)  # the upload's copy (in the studio's folder)
            yield gr.update(choices=workspace.targets(), value=name), f"<p id='added'>added {html.escape(name)}</p>"

        upload.upload(add_target, upload, [target, message]).then(lambda: None, None, upload)
        target.change(show_plan, [target, *options], plan)

        def labelled(paths: list[Path]) -> list[tuple[str, str]]:
            """Dropdown choices: each path shown relative to the work folder."""
            return [(workspace.relative(p), str(p)) for p in paths]

        def targets_now():
            names = workspace.targets()
            return gr.update(choices=names, value=names[0] if names else None)

        page.load(targets_now, None, target)  # the plan follows from the target's change
        gr.on([o.change for o in options], show_plan, [target, *options], plan)

        def start_learning(name, *values):
            if not name:
                return problem("add a target video first")
            c = config(*values)
            folder = workspace.folder(name)
            argv = ["quickstart", workspace.relative(video_of(folder)), "-o", name, "--every", str(c.every),
                    "--size", str(c.size), "--detector", c.detector, "--first-model", str(c.first_model_seconds / 60)]
            argv += (["--steps", str(c.steps)] if c.steps else []) + (["--ngf", str(c.ngf)] if c.ngf else [])
            try:
                workspace.job(name, "quickstart").start(*argv)
            except Face2FaceError as exc:
                return problem(str(exc))
            return "<p>starting...</p>"

        start.click(start_learning, [target, *options], status)
        pause.click(lambda name: None if not name else workspace.job(name, "quickstart").pause(), target, None)

        def refresh(name, seen):
            if not name:
                return gr.skip(), gr.skip(), gr.skip(), gr.skip(), seen
            folder, job = workspace.folder(name), workspace.job(name, "quickstart")
            mark = [name, job.state().state, *map(file_state, (job.progress_path, job.log_path,
                                                               sidecar_path(folder / "model.onnx")))]
            if mark == seen.get("mark"):  # nothing new since the last look: the page keeps what it shows
                return gr.skip(), gr.skip(), gr.skip(), gr.skip(), seen
            now = learning(folder, job)
            rows = "".join(
                f"<div class='stage' id='stage-{s.name}' data-state='{s.state}'><b>{s.name}</b> {s.state} "
                + (f"<progress value='{s.done}' max='{s.total}'></progress> {s.done}/{s.total}" if s.total else
                   "<progress></progress>" if s.state == "running" else "")
                + "</div>" for s in now.stages)
            head = {"running": "running", "finished": "finished", "stopped": "paused: press Start / resume to go on",
                    "never": "not started", "failed": "stopped by an error"}[now.job]
            first = (f"<p id='first-model'>a first model to drive is ready (step {now.first_model}): "
                     f"{html.escape(workspace.relative(folder / 'model.onnx'))}</p>" if now.first_model is not None
                     else "")
            body = (f"<p id='learn-state' data-state='{now.job}'>quickstart: {head}</p>"
                    + (problem(now.error) if now.error else "") + first + rows)
            import pandas as pd

            frame = (pd.DataFrame(now.curve, columns=["step", "loss", "value"])
                     if now.curve and len(now.curve) != seen.get("curve") else gr.skip())
            grid_path = str(now.grid) if now.grid else None
            image = grid_path if grid_path and grid_path != seen.get("grid") else gr.skip()
            return body, frame, image, now.log, {"mark": mark, "curve": len(now.curve), "grid": grid_path}

        timer.tick(refresh, [target, seen], [status, curve, grid, log, seen])

        def check(name):
            if not name:
                return gr.skip(), None
            folder = workspace.folder(name)
            reports = evaluations(folder)
            if not reports:
                return gr.update(value=[["no evaluation yet: it runs at the end of Learn"]], headers=["figure"]), None
            headers, rows = figure_rows(reports)
            picture = folder / "evaluation.png"
            return gr.update(value=rows, headers=headers), str(picture) if picture.exists() else None

        check_tab.select(check, target, [table, check_grid])
        check_refresh.click(check, target, [table, check_grid])

        def reenact(name, video, layout, retarget):
            if not name or not video:
                yield problem("choose a target with a model and a driver video first"), gr.skip(), gr.skip()
                return
            folder = workspace.folder(name)
            model = folder / "model.onnx"
            if not model.is_file():
                yield problem(f"{name} has no model yet: start Learn (a first model appears after a few "
                              "minutes)"), gr.skip(), gr.skip()
                return
            drives = workspace.drives(name)
            drives.mkdir(parents=True, exist_ok=True)
            kept = drives / f"driver-{time.strftime('%Y%m%d-%H%M%S')}{Path(video).suffix}"
            shutil.copyfile(workspace.inside(video), kept)
            out = drives / f"{kept.stem.replace('driver', 'reenacted')}-{layout}.webm"
            job = workspace.job(name, "drive")
            try:
                job.start("reenact", "--model", workspace.relative(model), "--source", workspace.relative(kept),
                          "-o", workspace.relative(out), "--layout", layout, "--retarget", retarget)
            except Face2FaceError as exc:
                yield problem(str(exc)), gr.skip(), gr.skip()
                return
            while (state := job.state()).running:
                counts = [r for r in job.records() if r["kind"] == "count"]
                done = f": frame {counts[-1]['done']} of {counts[-1]['total'] or '?'}" if counts else ""
                yield f"<p id='drive-state' data-state='running'>reenacting{done}</p>", gr.skip(), gr.skip()
                time.sleep(0.5)
            if state.state != "finished":
                yield problem(state.error or f"reenact {state.state}"), gr.skip(), gr.skip()
                return
            done = f"<p id='drive-state' data-state='finished'>done: {html.escape(workspace.relative(out))}</p>"
            yield done, str(out), str(out)

        drive.click(reenact, [target, driver, layout, retarget], [drive_status, driven, driven_file])

        def live_checks(chosen):
            from face2face import doctor

            lines = []
            for check_name in LIVE_CHECKS:
                finding = getattr(doctor, check_name)()
                fix = f"<br><span class='problem'>fix: {html.escape(finding.fix)}</span>" if finding.fix else ""
                lines.append(f"<li><b>{finding.name}</b>: {html.escape(finding.status)}{fix}</li>")
            models = workspace.models()
            names = workspace.targets()
            videos = [video_of(workspace.folder(n)) for n in names]
            videos += [d for n in names for d in sorted(workspace.drives(n).glob("driver-*"))]
            return (f"<ul>{''.join(lines)}</ul>", gr.update(choices=[("", "")] + labelled(videos)),
                    gr.update(choices=labelled(models), value=chosen if chosen in map(str, models) else
                              str(models[0]) if models else None))

        live_tab.select(live_checks, live_model, [findings, source, live_model])
        live = workspace.job("", "live")

        def start_live(model, camera, source, virtual, preview, layout, retarget, shape, cutoff, beta):
            if not model:
                return problem("no model yet: train one in Learn first")
            argv = ["live", "--model", workspace.relative(model), "--layout", layout, "--retarget", retarget,
                    "--shape-limit", str(shape), "--smooth-min-cutoff", str(cutoff), "--smooth-beta", str(beta),
                    "--models-from-stdin"]
            argv += ["--source", workspace.relative(source), "--loop"] if source else ["--camera", str(int(camera))]
            argv += (["--virtual-cam"] if virtual else []) + (["--preview"] if preview else [])
            try:
                live.start(*argv, stdin=True)
            except Face2FaceError as exc:
                return problem(str(exc))
            return "<p>starting...</p>"

        live_start.click(start_live, [live_model, camera, source, virtual, preview, live_layout, live_retarget, shape,
                                      cutoff, beta], live_status)
        live_stop.click(lambda: live.pause() and None, None, None)

        def switch(model):
            if model and live.state().running and not live.send(workspace.relative(model)):
                return problem("this live run was started by an earlier studio: stop it and start again to switch")
            return gr.skip()

        live_model.change(switch, live_model, live_status)

        def live_refresh():
            state = live.state()
            if state.state == "never":
                return gr.skip()
            seconds = [r for r in live.records() if r["kind"] == "live"]
            figures = (f"{seconds[-1]['fps']:.1f} fps, latency {seconds[-1]['latency_ms']:.0f} ms, "
                       f"<span id='live-frames'>{seconds[-1]['frames']}</span> frames, model "
                       f"{html.escape(Path(seconds[-1]['model']).parent.name)} (step {seconds[-1]['steps']})"
                       if seconds else "starting")
            said = problem(state.error) if state.error else ""
            shown = state.state if state.running or state.error else "stopped"  # Ctrl-C ends live with status 0
            return (f"<p id='live-state' data-state='{shown}'>live: {figures if state.running else shown}</p>{said}")

        timer.tick(live_refresh, None, live_status)
    return page

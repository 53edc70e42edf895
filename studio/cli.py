"""`face2face studio`: serves the page until Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import os

from face2face.errors import Face2FaceError

log = logging.getLogger("face2face")

LOCAL = "127.0.0.1"


def add_commands(commands) -> None:
    """Register ``studio`` on the main parser."""
    from face2face.cli import add_command, positive_int

    p = add_command(commands, "studio", "the whole path in a local browser page (extra `ui`)",
                    "Open a local page with the whole path: add a target video, learn it (quickstart: start, pause, "
                    "resume), check the figures, drive it with a video or the browser's webcam, go live. Each step "
                    "runs the same commands as this CLI; closing the page or the studio stops nothing and loses "
                    "nothing: open it again to follow the work where it is.")
    p.add_argument("folder", nargs="?", default="face2face-studio", metavar="FOLDER",
                   help="work folder: a subfolder per target; the page reads and writes only inside it")
    p.add_argument("--host", default=LOCAL, help="address to listen on (another than 127.0.0.1 opens the page, "
                                                 "and the work folder, to whoever can reach this machine)")
    p.add_argument("--port", type=positive_int, default=7860, help="port to listen on")
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    p.set_defaults(handler=_studio)


def _studio(args: argparse.Namespace) -> int:
    from face2face.files import writable_folder

    from face2face.studio.workspace import STUDIO, Workspace

    writable_folder(args.folder)
    workspace = Workspace(args.folder)
    uploads = workspace.root / STUDIO / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    # set before Gradio loads: uploads and shown files stay inside the work folder, nothing is reported
    os.environ["GRADIO_TEMP_DIR"] = str(uploads)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        from face2face.studio.page import CSS, build
    except ImportError as exc:
        if exc.name != "gradio":
            raise
        raise Face2FaceError("the studio needs its extra: pip install 'face2face[ui]'") from None

    if args.host != LOCAL:
        log.warning("listening on %s: whoever can reach this machine can use the studio and its work folder", args.host)
    page = build(workspace)
    try:
        page.queue().launch(server_name=args.host, server_port=args.port, allowed_paths=[str(workspace.root)],
                            quiet=True, prevent_thread_lock=True, inbrowser=args.open, show_error=True, css=CSS,
                            footer_links=[])
    except OSError as exc:
        raise Face2FaceError(f"{args.host}:{args.port}: cannot listen ({exc}); choose another --port") from None
    log.info("face2face studio: http://%s:%d (work folder %s); Ctrl-C stops the page, not the work it started",
             args.host, args.port, workspace.root)
    try:
        page.block_thread()
    finally:
        page.close()
    return 0

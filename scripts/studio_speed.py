"""Training speed in the studio against the command line, alternating, on this machine.

    python scripts/studio_speed.py ../shared/data/videos/lp_d19.mp4 --steps 600 --rounds 2

Each round runs `face2face quickstart VIDEO` once from the command line and once from the studio's
page (started, uploaded to and followed in headless Chromium, the page open and refreshing the
whole time), with the same options and no early model, and prints the training steps/s of each
(from the progress records both write: steps 10% to 100%, so graph tracing is left out), their
ratio, and the whole run's wall time. Needs the `ui` extra, Playwright and Debian's `chromium`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from face2face import progress


def steps_per_second(records: list[dict], steps: int) -> float:
    """Training rate between 10% of the steps and the last, from ``train`` counts."""
    counts = [(r["t"], r["done"]) for r in records if r["kind"] == "count" and r["bar"] == "train"]
    start = next((t, d) for t, d in counts if d >= steps // 10)
    end = counts[-1]
    return (end[1] - start[1]) / (end[0] - start[0])


def from_cli(video: str, work: Path, steps: int) -> tuple[float, float]:
    records = work.with_suffix(".progress")
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "face2face", "quickstart", video, "-o", str(work), "--steps", str(steps),
                    "--first-model", "1000", "--quiet"], check=True, stdout=subprocess.DEVNULL,
                   env={**os.environ, progress.ENV: str(records)})
    return steps_per_second(progress.read(records), steps), time.monotonic() - started


def from_studio(video: str, root: Path, steps: int, chromium: str) -> tuple[float, float]:
    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "face2face", "studio", str(root), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, headless=True,
                                                 args=["--disable-background-networking"])
            page = browser.new_page()
            for _ in range(600):
                try:
                    page.goto(f"http://127.0.0.1:{port}/")
                    break
                except Exception:  # not up yet
                    time.sleep(0.1)
            started = time.monotonic()
            page.set_input_files("#target-upload input[type=file]", video)
            page.wait_for_function("document.querySelector('#plan').innerText.includes('usable face')",
                                   timeout=60_000)
            page.get_by_text("Options (quickstart's").click()
            page.fill("#opt-steps input", str(steps))
            page.fill("#opt-first input", "1000")
            page.get_by_role("tab", name="2 Learn").click()
            page.click("#learn-start")
            page.wait_for_selector("#learn-state[data-state=running]", timeout=60_000)
            page.wait_for_selector("#learn-state[data-state=finished]", timeout=3_600_000)
            seconds = time.monotonic() - started
            browser.close()
    finally:
        server.terminate()
        server.wait()
    name = next(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    return steps_per_second(progress.read(name / ".studio" / "quickstart.progress"), steps), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    parser.add_argument("--json", metavar="OUT")
    args = parser.parse_args()
    rows = []
    for round_ in range(args.rounds):
        with tempfile.TemporaryDirectory() as tmp:
            cli, cli_s = from_cli(args.video, Path(tmp) / "cli", args.steps)
            studio, studio_s = from_studio(args.video, Path(tmp) / "studio", args.steps, args.chromium)
        rows.append({"round": round_, "cli_steps_s": round(cli, 2), "studio_steps_s": round(studio, 2),
                     "ratio": round(studio / cli, 3), "cli_run_s": round(cli_s, 1), "studio_run_s": round(studio_s, 1)})
        print(f"round {round_}: command line {cli:.2f} steps/s ({cli_s:.0f} s in all), studio {studio:.2f} steps/s "
              f"({studio_s:.0f} s in all): {studio / cli:.3f}x", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()

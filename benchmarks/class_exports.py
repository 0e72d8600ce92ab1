"""What a class's downloads cost the server: students, one after the other, each in a browser session of their own,
open the Train page of the same (default) model and download the model as ONNX and the page as a zip of PNGs.

The first student's downloads are made (torch.onnx.export; kaleido starting a Chromium to draw the figures); the
next ones get what the server kept (server.onnx_model, server.figure_pngs). One JSON line per student and download:
seconds from the click to the file, and its size. Needs /usr/bin/chromium.

    python benchmarks/class_exports.py [--students 3]
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from _bench import print_machine

os.environ.setdefault("LAYERLENS_CACHE", tempfile.mkdtemp(prefix="layerlens-bench-"))

from streamlit_server import (
    CHROMIUM,
    VIEWPORT,
    chromium,
    streamlit_app,
    wait_until_idle,
)

DOWNLOADS = {"onnx": "Model as ONNX", "zip": "This page as files"}


def download_seconds(page, button: str) -> tuple[float, int]:
    """Seconds from clicking the download button to the browser having the file, and the file's bytes."""
    target = page.get_by_role("button", name=button)
    target.scroll_into_view_if_needed()
    start = time.perf_counter()
    with page.expect_download(timeout=300_000) as download:
        target.click()
    size = Path(download.value.path()).stat().st_size
    return time.perf_counter() - start, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=3)
    args = parser.parse_args()
    print_machine()
    if not Path(CHROMIUM).exists():
        print(json.dumps({"skipped": f"{CHROMIUM} is missing"}))
        return
    env = {"LAYERLENS_CACHE": os.environ["LAYERLENS_CACHE"], "LAYERLENS_WARM_UP": "0"}
    with streamlit_app(env) as url, chromium() as browser:
        for student in range(1, args.students + 1):
            page = browser.new_context(viewport=VIEWPORT, accept_downloads=True).new_page()
            page.goto(f"{url}/train")
            page.get_by_text("Which classes get confused?").first.wait_for(timeout=300_000)
            wait_until_idle(page)
            for what, button in DOWNLOADS.items():
                seconds, size = download_seconds(page, button)
                print(json.dumps({"student": student, "download": what, "seconds": round(seconds, 2),
                                  "bytes": size}), flush=True)
            page.context.close()


if __name__ == "__main__":
    main()

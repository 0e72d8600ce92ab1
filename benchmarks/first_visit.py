"""A new class's first minute: a fresh server with an empty model cache, and the first visitor opening one page.

Prints the machine first, then per page and run: the seconds `streamlit run app.py` takes to answer, the seconds from
opening the page to the finished page, and their sum (the browser on the same machine). By default the project's
models/ holds the default model, so nothing trains; --train-default points LAYERLENS_MODELS at an empty folder, so
the default model trains on the way, as before issue 14. Needs /usr/bin/chromium.

    python benchmarks/first_visit.py [--runs 2] [--pages layers,train] [--train-default]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from _bench import print_machine
from streamlit_server import CHROMIUM, VIEWPORT, chromium, streamlit_app, wait_until_idle

PAGES = {"layers": "Output: the classifier", "train": "Which classes get confused?"}  # page → its last heading


def first_visit(page_name: str, train_default: bool) -> dict:
    """Start a server that has never trained anything, open one page, time both until the page is finished."""
    env = {"LAYERLENS_CACHE": tempfile.mkdtemp(prefix="layerlens-bench-")}
    if train_default:
        env["LAYERLENS_MODELS"] = tempfile.mkdtemp(prefix="layerlens-no-models-")
    start = time.perf_counter()
    with streamlit_app(env) as url, chromium() as browser:
        up = time.perf_counter()
        page = browser.new_page(viewport=VIEWPORT)
        opened = time.perf_counter()
        page.goto(f"{url}/{page_name}")
        page.get_by_text(PAGES[page_name]).first.wait_for(timeout=180_000)
        wait_until_idle(page)
        done = time.perf_counter()
    return {"server_start_seconds": round(up - start, 1), "page_seconds": round(done - opened, 1),
            "total_seconds": round(up - start + done - opened, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--pages", default="layers,train", help=f"comma-separated, of {sorted(PAGES)}")
    parser.add_argument("--train-default", action="store_true", help="no shipped models: the default trains")
    args = parser.parse_args()
    print_machine()
    if not Path(CHROMIUM).exists():
        print(json.dumps({"skipped": f"{CHROMIUM} is missing (apt-get install -y chromium)"}))
        return
    for name in args.pages.split(","):
        for run in range(1, args.runs + 1):
            case = f"{name} page, fresh server, first visit ({'trains' if args.train_default else 'shipped'} default)"
            print(json.dumps({"case": case, "run": run, **first_visit(name, args.train_default)}), flush=True)


if __name__ == "__main__":
    main()

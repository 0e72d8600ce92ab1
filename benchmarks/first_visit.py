"""A new class's first minute: a fresh server with an empty model cache, and the first visitor opening Train.

Prints the machine first, then per run the seconds from opening /train to the finished page (the default model
trained on the way, with the browser on the same machine). Needs /usr/bin/chromium.

    python benchmarks/first_visit.py [--runs 2]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from _bench import print_machine
from streamlit_server import CHROMIUM, VIEWPORT, chromium, streamlit_app, wait_until_idle


def first_visit_seconds() -> float:
    """Open the Train page of a server that has never trained anything; time it until the page is finished."""
    with streamlit_app({"LAYERLENS_CACHE": tempfile.mkdtemp(prefix="layerlens-bench-")}) as url, \
            chromium() as browser:
        page = browser.new_page(viewport=VIEWPORT)
        start = time.perf_counter()
        page.goto(f"{url}/train")
        page.get_by_text("Which classes get confused?").first.wait_for(timeout=180_000)
        wait_until_idle(page)
        seconds = time.perf_counter() - start
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    print_machine()
    if not Path(CHROMIUM).exists():
        print(json.dumps({"skipped": f"{CHROMIUM} is missing (apt-get install -y chromium)"}))
        return
    for run in range(1, args.runs + 1):
        print(json.dumps({"case": "Train page, fresh server, first visit (trains the default)", "run": run,
                          "seconds": round(first_visit_seconds(), 1)}), flush=True)


if __name__ == "__main__":
    main()

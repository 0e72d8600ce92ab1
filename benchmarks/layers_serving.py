"""Layers page serving cost: server CPU seconds per page view, against a real `streamlit run app.py`.

A first, uncounted view trains the default model (into a fresh $LAYERLENS_CACHE unless one is set). Then Chromium
opens the Layers page as new visitors, each in an empty browser profile (the app's 7.8 MB of JavaScript and fonts,
a new session, the whole page drawn) and each in a new tab of one profile whose cache is full (a new session, the
whole page drawn), and one visitor presses 🎲 Random (a rerun with a new image). The server's CPU time (user +
system, all threads, from /proc/<pid>/stat) is read before and after each loop and divided by the number of views;
nothing is subtracted, so whatever the server spends while the browser waits counts too. Wall time runs from the
navigation (or the click) to the page's last change. One JSON line each:

    {"case": "sgemm", "sgemm_gflops": …, "threads": …}   best of 5 runs of a 2048×2048 torch.mm, torch's threads
    {"case": "layers view, new visitor, empty browser cache", "views": …, "cpu_seconds_per_view": …,
     "wall_p50": …, "wall_p95": …}
    {"case": "layers view, new visitor, browser cache warm", …}
    {"case": "layers random, same visitor", …}

    python benchmarks/layers_serving.py [--views 10] [--randoms 20]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import torch

import _bench  # noqa: F401  (the repository and tests/ on sys.path)
from layerlens.machine import sgemm_gflops
from streamlit_server import (CHROMIUM, VIEWPORT, WATCH_DOCUMENT, chromium, streamlit_app, wait_until_idle,
                              wait_until_settled)

DONE = "Output: the classifier"


def server_pid(url: str) -> int:
    """The process serving url (started by streamlit_app with --server.port <port>)."""
    port = url.rsplit(":", 1)[1]
    for proc in Path("/proc").iterdir():
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if b"streamlit" in b" ".join(args) and b"--server.port" in args and port.encode() in args:
            return int(proc.name)
    raise RuntimeError(f"no streamlit process for {url}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (fields 14, 15)


def wait_drawn(page) -> float:
    """Wait until the script has run (a click's rerun request gets 0.3 s to reach the server first) and nothing has
    changed for a second; seconds since the page's clock origin of the last change."""
    page.get_by_text(DONE).first.wait_for(timeout=300_000)
    wait_until_idle(page)
    return wait_until_settled(page, 1000, 120_000)


def summary(case: str, cpu: float, walls: list[float]) -> dict:
    walls = sorted(walls)
    return {"case": case, "views": len(walls), "cpu_seconds_per_view": round(cpu / len(walls), 3),
            "wall_p50": round(statistics.median(walls), 3),
            "wall_p95": round(walls[min(len(walls) - 1, round(0.95 * (len(walls) - 1)))], 3)}


def views(browser, url: str, pid: int, count: int, warm: bool) -> tuple[float, list[float]]:
    """Server CPU seconds and wall times of `count` new visitors opening the Layers page: each in an empty browser
    profile, or (warm) each in a new tab of one profile whose cache an uncounted first view has filled."""
    profile = browser.new_context(viewport=VIEWPORT) if warm else None
    if warm:
        profile.add_init_script(WATCH_DOCUMENT)
        page = profile.new_page()
        page.goto(f"{url}/layers")
        wait_drawn(page)
        page.close()
    walls, before = [], cpu_seconds(pid)
    for _ in range(count):
        context = profile or browser.new_context(viewport=VIEWPORT)
        if not warm:
            context.add_init_script(WATCH_DOCUMENT)
        page = context.new_page()
        page.goto(f"{url}/layers")
        walls.append(wait_drawn(page))  # the page's clock starts with the navigation
        page.close()  # the session ends with its tab, as when a student closes it
        if not warm:
            context.close()
    cpu = cpu_seconds(pid) - before
    if profile:
        profile.close()
    return cpu, walls


def randoms(browser, url: str, pid: int, count: int) -> tuple[float, list[float]]:
    """Server CPU seconds and wall times of `count` presses of 🎲 Random by one visitor."""
    context = browser.new_context(viewport=VIEWPORT)
    context.add_init_script(WATCH_DOCUMENT)
    page = context.new_page()
    page.goto(f"{url}/layers")
    wait_drawn(page)
    walls, before = [], cpu_seconds(pid)
    for _ in range(count):
        start = page.evaluate("() => performance.now()") / 1000
        page.get_by_role("button", name="🎲 Random").click()
        walls.append(wait_drawn(page) - start)
    cpu = cpu_seconds(pid) - before
    context.close()
    return cpu, walls


def measure(url: str, count: int, presses: int) -> list[dict]:
    pid = server_pid(url)
    with chromium() as browser:
        views(browser, url, pid, 1, warm=False)  # trains the default model (or loads it): not counted
        rows = [summary("layers view, new visitor, empty browser cache", *views(browser, url, pid, count, False)),
                summary("layers view, new visitor, browser cache warm", *views(browser, url, pid, count, True)),
                summary("layers random, same visitor", *randoms(browser, url, pid, presses))]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--views", type=int, default=10, help="new visitors opening the Layers page")
    parser.add_argument("--randoms", type=int, default=20, help="presses of 🎲 Random in one session")
    args = parser.parse_args()
    print(json.dumps({"case": "sgemm", "sgemm_gflops": round(sgemm_gflops(), 1), "threads": torch.get_num_threads()}),
          flush=True)
    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)")
    cache = os.environ.get("LAYERLENS_CACHE") or tempfile.mkdtemp(prefix="layerlens-serving-")
    with streamlit_app({"LAYERLENS_CACHE": cache}) as url:
        for row in measure(url, args.views, args.randoms):
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()

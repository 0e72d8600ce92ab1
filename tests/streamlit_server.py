"""A real `streamlit run app.py` server and a real Chromium for browser tests and benchmarks."""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1400, "height": 1000}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def streamlit_app(env: dict[str, str], timeout: float = 60.0, log_path: Path | None = None):
    """Start the app on a free local port; yield its URL; stop it on exit. Its output goes to log_path (by default
    streamlit.log in its cache folder)."""
    port = free_port()
    log = open(log_path or Path(env.get("LAYERLENS_CACHE", "/tmp")) / "streamlit.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"streamlit did not start; see {log.name}")
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


@contextlib.contextmanager
def chromium(still: bool = False):
    """Debian's headless Chromium driven by Playwright; yield the browser, close it on exit. still: its pages draw no
    animations or transitions (the tests'; benchmarks time what a visitor sees, animations and all)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        if still:
            _still(browser)
        try:
            yield browser
        finally:
            browser.close()


# Chromium in the tests draws no CSS animations or transitions (Streamlit's running indicator, skeletons, fades): the
# tests assert on none of them, and on 2 busy cores they cost the renderers CPU (suite: Chromium 191 against 212 CPU-s)
STILL_CSS = "*, *::before, *::after { animation: none !important; transition: none !important; }"
STILL_SCRIPT = ("document.addEventListener('DOMContentLoaded', () => { const style = document.createElement('style'); "
                f"style.textContent = '{STILL_CSS}'; document.head.appendChild(style); }});")


def _still(browser) -> None:
    """Every context and page browser opens from now on prefers reduced motion and carries STILL_CSS."""
    new_context, new_page = browser.new_context, browser.new_page

    def context(**options):
        made = new_context(reduced_motion="reduce", **options)
        made.add_init_script(STILL_SCRIPT)
        return made

    def page(**options):
        made = new_page(reduced_motion="reduce", **options)  # its own context, closed with it
        made.add_init_script(STILL_SCRIPT)
        return made

    browser.new_context, browser.new_page = context, page


def open_tabs_text(browser, limit: int = 3000) -> str:
    """Each open tab's address, script state and the text of its main area (the first `limit` characters)."""
    parts = []
    for context in browser.contexts if browser else []:
        for tab in context.pages:
            try:
                state = tab.evaluate("() => document.querySelector('[data-testid=\"stApp\"]')"
                                     "?.getAttribute('data-test-script-state')")
                text = tab.locator("[data-testid='stMain']").inner_text(timeout=5_000)
            except Exception as err:  # noqa: BLE001 - a closed or hung tab is itself the news
                state, text = "unreadable", f"{type(err).__name__}: {err}"
            parts.append(f"--- {tab.url} (script {state})\n{text[:limit]}")
    return "\n".join(parts) or "no open tabs"


def wait_until_idle(page, timeout_ms: int = 120_000) -> None:
    """Wait until Streamlit has finished running the script (the app root's script state is not 'running')."""
    page.wait_for_timeout(300)  # a widget's rerun request reaches the server first
    page.wait_for_function("() => document.querySelector('[data-testid=\"stApp\"]')"
                           "?.getAttribute('data-test-script-state') !== 'running'", timeout=timeout_ms)


def full_page_screenshot(page, path: Path, width: int = 1400) -> None:
    """Screenshot the whole app (Streamlit scrolls inside its own container, so grow the viewport)."""
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMainBlockContainer\"]').scrollHeight")
    page.set_viewport_size({"width": width, "height": min(height + 120, 9000)})
    page.wait_for_timeout(1500)  # let plotly re-layout at the new size
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": width, "height": 1000})


# Remember when anything in the watched element last changed (window.lastChange, ms on the page's clock); the page is
# drawn when changes stop. WATCH_CHANGES watches Streamlit's main area of a page already drawn (page.evaluate);
# WATCH_DOCUMENT watches the whole document from the first moment of every page load (context.add_init_script).
_OBSERVER = """window.lastChange = performance.now();
new MutationObserver(() => { window.lastChange = performance.now(); })
  .observe(%s, {subtree: true, childList: true, attributes: true, characterData: true});"""
WATCH_CHANGES = "() => { " + _OBSERVER % "document.querySelector('[data-testid=\"stMain\"]')" + " }"
WATCH_DOCUMENT = _OBSERVER % "document"


def wait_until_settled(page, quiet_ms: int = 1000, timeout_ms: int = 30_000) -> float:
    """Wait until nothing watched has changed for quiet_ms; the last change's time, in seconds on the page's clock."""
    page.wait_for_function(f"() => performance.now() - window.lastChange > {quiet_ms}", timeout=timeout_ms)
    return page.evaluate("() => window.lastChange") / 1000


def drag_through(page, box: dict, points: list[tuple[float, float]]) -> None:
    """Press the mouse at points[0] (x, y inside box, an element's bounding box) and move through the others, 10
    moves a segment, as a hand draws or drags; the caller releases it (page.mouse.up()), after starting a clock."""
    page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
    page.mouse.down()
    for (ax, ay), (bx, by) in zip(points, points[1:]):
        for t in range(1, 11):
            page.mouse.move(box["x"] + ax + (bx - ax) * t / 10, box["y"] + ay + (by - ay) * t / 10)


def cold_and_cached_render(url: str, start_path: str, start_marker: str, link: str, marker: str,
                           pause_s: float = 0.0) -> tuple[float, float]:
    """Seconds from clicking the sidebar link to the page's last change: first visit (pause_s after the start page is
    drawn, as a visitor reads it), then again after Home."""
    times = []
    with chromium() as browser:
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(f"{url}{start_path}")
        page.get_by_text(start_marker).first.wait_for(timeout=300_000)
        wait_until_idle(page)
        page.wait_for_timeout(pause_s * 1000)
        for name, text in ((link, marker), ("Home", "Right now"), (link, marker)):
            page.evaluate(WATCH_CHANGES)
            start = page.evaluate("() => performance.now()") / 1000
            page.locator("[data-testid='stSidebar']").get_by_role("link", name=name).click()
            page.get_by_text(text).first.wait_for(timeout=300_000)
            wait_until_idle(page, 300_000)
            times.append(wait_until_settled(page, 1500, 60_000) - start)
    return times[0], times[2]

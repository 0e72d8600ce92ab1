"""Layers page speed: with the model cached, seconds to compute and draw every layer for a new image.

Two JSON lines: (1) the real page in Streamlit's AppTest (script, core calls, figure building and
serialisation) for 20 test images; (2) where /usr/bin/chromium exists, the real app in a real
browser: from the key press that picks the next image to the last change of the page (the moment
every chart has been redrawn), for 10 images.

    python benchmarks/layers_speed.py
"""
from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from _bench import ROOT, print_machine

os.environ.setdefault("LAYERLENS_CACHE", tempfile.mkdtemp(prefix="layerlens-bench-"))

from streamlit.testing.v1 import AppTest  # noqa: E402

from streamlit_server import (CHROMIUM, VIEWPORT, WATCH_CHANGES, chromium, streamlit_app,  # noqa: E402
                              wait_until_idle, wait_until_settled)


def browser_times(images: int = 10) -> list[float]:
    """Seconds from picking the next image to the last change of the page, in Chromium."""
    times = []
    with streamlit_app({"LAYERLENS_CACHE": os.environ["LAYERLENS_CACHE"]}) as url, chromium() as browser:
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(f"{url}/layers")
        page.get_by_text("Output: the classifier").first.wait_for(timeout=120_000)
        wait_until_idle(page)
        page.evaluate(WATCH_CHANGES)
        slider = page.get_by_role("slider").first
        for _ in range(images):
            slider.focus()
            start = page.evaluate("() => performance.now()") / 1000
            page.keyboard.press("ArrowRight")
            times.append(wait_until_settled(page) - start)
    return times


def main() -> None:
    print_machine()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("pages/2_layers.py")
    at.run()  # trains (or loads) the default model: not timed
    assert not at.exception, at.exception
    times = []
    for position in range(1, 21):
        start = time.perf_counter()
        at.slider(key="layers_index").set_value(position).run()
        times.append(time.perf_counter() - start)
        assert not at.exception, at.exception
    charts = len(at.get("plotly_chart"))
    print(json.dumps({"case": "layers page, new image, model cached", "images": len(times), "charts": charts,
                      "median_seconds": round(statistics.median(times), 3), "max_seconds": round(max(times), 3)}))
    if Path(CHROMIUM).exists():
        times = browser_times()
        print(json.dumps({"case": "layers page in Chromium, new image, model cached", "images": len(times),
                          "median_seconds": round(statistics.median(times), 3),
                          "max_seconds": round(max(times), 3)}))


if __name__ == "__main__":
    main()

"""One neuron page speed: draw digits on the canvas in Chromium and time the page's update.

For each digit 0–9 (strokes drawn with the mouse, as a student would), one JSON line: what the network
said, and the seconds from releasing the mouse until the answer at the top changed on screen, until the
page's last element (the knock-out prediction at the bottom) showed the new input, and until the page
stopped changing altogether. The canvas component itself waits 200 ms after a stroke before it sends
the drawing; all three times include that wait. A last line gives the medians and how many
drawings were read right. Needs /usr/bin/chromium; the default model is trained first if not cached.

    python benchmarks/neuron_speed.py
"""
from __future__ import annotations

import json
import os
import re
import statistics
import sys
import tempfile
from pathlib import Path

from _bench import print_machine

os.environ.setdefault("LAYERLENS_CACHE", tempfile.mkdtemp(prefix="layerlens-bench-"))

from streamlit_server import (CHROMIUM, VIEWPORT, WATCH_CHANGES, chromium, drag_through,  # noqa: E402
                              streamlit_app, wait_until_idle, wait_until_settled)

# Strokes in the 280×280 canvas, as (x, y) points; one list per pen stroke.
DIGITS = {
    "0": [[(140, 40), (200, 90), (200, 190), (140, 240), (80, 190), (80, 90), (140, 40)]],
    "1": [[(140, 40), (140, 240)]],
    "2": [[(80, 80), (140, 40), (200, 80), (190, 130), (80, 240), (210, 240)]],
    "3": [[(80, 50), (200, 60), (140, 140), (210, 190), (150, 245), (80, 230)]],
    "4": [[(160, 40), (70, 170), (210, 170)], [(170, 90), (170, 250)]],
    "5": [[(200, 50), (90, 50), (85, 130), (180, 130), (205, 190), (150, 245), (80, 230)]],
    "6": [[(190, 50), (100, 110), (80, 200), (140, 245), (200, 200), (170, 150), (90, 170)]],
    "7": [[(70, 60), (210, 60), (130, 240)]],
    "8": [[(140, 40), (90, 80), (140, 140), (190, 200), (140, 245), (90, 200), (140, 140), (190, 80), (140, 40)]],
    "9": [[(190, 100), (140, 50), (90, 90), (140, 140), (190, 100), (180, 250)]],
}
# Remember when the answer's heading, and the page's last element, first changed.
WATCH_ANSWER = """() => {
  const changed = (find, key) => { const el = find(); const before = el ? el.textContent : ''; window[key] = 0;
    const tick = () => { const now = find();
      if (now && now.textContent !== before) { window[key] = performance.now(); } else { requestAnimationFrame(tick); } };
    requestAnimationFrame(tick); };
  changed(() => Array.from(document.querySelectorAll('h3')).find(h => h.textContent.includes('The network is')),
          'answered');
  changed(() => document.querySelector('[data-testid="stMetricValue"]'), 'bottom'); }"""


def main() -> None:
    print_machine()
    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} is missing: apt-get install -y chromium")
    rows = []
    with streamlit_app({"LAYERLENS_CACHE": os.environ["LAYERLENS_CACHE"]}) as url, chromium() as browser:
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(f"{url}/layers")  # trains (or loads) the default model: not timed
        page.get_by_text("Output: the classifier").first.wait_for(timeout=300_000)
        wait_until_idle(page)
        page.locator("[data-testid='stSidebar']").get_by_role("link", name="One neuron").click()
        page.get_by_text("Draw a digit in the black square").first.wait_for(timeout=60_000)
        wait_until_idle(page)
        for warm_up, digit in [(True, "1")] + [(False, d) for d in DIGITS]:
            box = page.locator("canvas").last.bounding_box()
            page.evaluate(WATCH_CHANGES)
            for points in DIGITS[digit]:
                drag_through(page, box, points)
                page.evaluate(WATCH_ANSWER)
                start = page.evaluate("() => performance.now()")
                page.mouse.up()
                page.wait_for_timeout(300)
                wait_until_idle(page)
                last_change = wait_until_settled(page) * 1000
            said = page.locator("h3", has_text="The network is").first.inner_text()
            answered, bottom = page.evaluate("() => [window.answered, window.bottom]")
            row = {"drawn": digit, "said": said, "right": re.search(rf"this is an? {digit}\b", said) is not None,
                   "answer_seconds": round((answered - start) / 1000, 3) if answered else None,
                   "last_element_seconds": round((bottom - start) / 1000, 3) if bottom else None,
                   "page_seconds": round((last_change - start) / 1000, 3)}
            if not warm_up:  # the first drawing pays one-off costs (imports, first figures)
                rows.append(row)
                print(json.dumps(row), flush=True)
            page.get_by_title("Reset canvas & history").click()  # the canvas toolbar's clear button
            page.wait_for_timeout(500)
            wait_until_idle(page)
    answers = [r["answer_seconds"] for r in rows if r["answer_seconds"] is not None]
    bottoms = [r["last_element_seconds"] for r in rows if r["last_element_seconds"] is not None]
    print(json.dumps({"case": "one neuron page, a new drawing, model cached", "drawings": len(rows),
                      "read_right": sum(r["right"] for r in rows),
                      "median_answer_seconds": round(statistics.median(answers), 3) if answers else None,
                      "median_last_element_seconds": round(statistics.median(bottoms), 3) if bottoms else None,
                      "median_page_seconds": round(statistics.median(r["page_seconds"] for r in rows), 3),
                      "max_page_seconds": max(r["page_seconds"] for r in rows)}))


if __name__ == "__main__":
    main()

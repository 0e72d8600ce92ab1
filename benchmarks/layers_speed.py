"""Layers page speed: with the model cached, seconds to compute and draw every layer for a new image.

Runs the real page in Streamlit's AppTest (script, core calls, figure building and serialisation)
for 20 different test images and prints the median and worst time as one JSON line.

    python benchmarks/layers_speed.py
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LAYERLENS_CACHE", tempfile.mkdtemp(prefix="layerlens-bench-"))

from streamlit.testing.v1 import AppTest  # noqa: E402


def main() -> None:
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


if __name__ == "__main__":
    main()

"""Abstraction speed: linear-probe accuracy per layer for the default model, trained and untrained.

One JSON line per model: the seconds to extract every layer's activations for the test images and fit
a probe per layer, the probe accuracy per layer (input pixels first), and each layer's class separation
(silhouette). The default model is trained first if it is not in the cache (not timed). Where
/usr/bin/chromium exists, a last line times the Abstraction page in a real browser: the first render
(every probe curve and the maps) and, after a visit to Home, the render from cache.

    python benchmarks/probe_speed.py [--images 1000]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("LAYERLENS_CACHE", tempfile.mkdtemp(prefix="layerlens-bench-"))

from layerlens.abstraction import class_separation, layer_features, probe_curve  # noqa: E402
from layerlens.checkpoints import ModelCache  # noqa: E402
from layerlens.data import SAMPLE, default_cache_dir, load_dataset  # noqa: E402
from layerlens.nets import Net  # noqa: E402
from layerlens.training import preset_train_config  # noqa: E402
from streamlit_server import CHROMIUM, CHROMIUM_FLAGS, streamlit_app, wait_until_idle  # noqa: E402


def page_times() -> dict:
    """The Abstraction page in Chromium: first render, then from cache; from the click to the last change."""
    from playwright.sync_api import sync_playwright

    from classic_speed import WATCH_CHANGES

    with streamlit_app({"LAYERLENS_CACHE": os.environ["LAYERLENS_CACHE"]}) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/layers")  # the default model, loaded from the cache: not timed
        page.get_by_text("Output: the classifier").first.wait_for(timeout=300_000)
        wait_until_idle(page)
        times = []
        for link, marker in (("Abstraction", "Maps of each layer"), ("Home", "Right now"),
                             ("Abstraction", "Maps of each layer")):
            page.evaluate(WATCH_CHANGES)
            start = page.evaluate("() => performance.now()")
            page.locator("[data-testid='stSidebar']").get_by_role("link", name=link).click()
            page.get_by_text(marker).first.wait_for(timeout=300_000)
            wait_until_idle(page, 300_000)
            page.wait_for_function("() => performance.now() - window.lastChange > 1500", timeout=60_000)
            times.append((page.evaluate("() => window.lastChange") - start) / 1000)
        browser.close()
    return {"case": "abstraction page, default model, Chromium", "first_render_seconds": round(times[0], 2),
            "cached_render_seconds": round(times[2], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000, help="test images to probe (half fit, half score)")
    args = parser.parse_args()
    data = load_dataset(SAMPLE)
    config = preset_train_config("tiny", data)
    trained = ModelCache(default_cache_dir() / "models").get_or_train(config, data).model
    torch.manual_seed(config.seed)
    untrained = Net(config.net)
    images, labels = data.x_test[:args.images], data.y_test[:args.images].numpy()
    for name, model in (("trained", trained), ("untrained", untrained)):
        start = time.perf_counter()
        features = layer_features(model, images)
        curve = probe_curve(features, labels)
        seconds = time.perf_counter() - start
        separation = {layer: round(class_separation(rows, labels), 3) for layer, rows in features.items()}
        print(json.dumps({"case": f"probe curve, default model, {name}", "images": len(labels),
                          "seconds": round(seconds, 2), "probe_accuracy": {k: round(v, 3) for k, v in curve.items()},
                          "silhouette": separation}), flush=True)
    if Path(CHROMIUM).exists():
        print(json.dumps(page_times()), flush=True)


if __name__ == "__main__":
    main()

"""Abstraction speed: linear-probe accuracy per layer for a dataset's model (the default one), trained and untrained.

One JSON line per model: the seconds to extract every layer's activations for the test images and fit
a probe per layer, the probe accuracy per layer (input pixels first), and each layer's class separation
(silhouette). The model (the dataset's recipe) is trained first if it is not in the cache (not timed; set
LAYERLENS_CACHE to a folder to keep it between runs: CIFAR-10's takes about 60 s at sgemm 180, 200 s on AVX2).
Where /usr/bin/chromium exists, a last line times the Abstraction page in a real browser: the first render (every
probe curve, over training too, and the maps) and, after a visit to Home, the render from cache; then the same on a
server started again, which finds the probes and maps on disk (<LAYERLENS_CACHE>/results). The browser opens the
model's link on the Layers page first (the server loads the dataset and the model there, untimed), then clicks
Abstraction.

    python benchmarks/probe_speed.py [--images 1000]
    python benchmarks/probe_speed.py --dataset cifar10 [--data-dir ../shared/data]   # issue 12: ≤ 20 s on AVX2
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import urllib.parse
from pathlib import Path

import torch

from _bench import DATA_DIR, dataset_or_skip, forget_results, print_machine

os.environ.setdefault("LAYERLENS_CACHE", tempfile.mkdtemp(prefix="layerlens-bench-"))

from layerlens.abstraction import class_separation, layer_features, probe_curve  # noqa: E402
from layerlens.checkpoints import ModelCache  # noqa: E402
from layerlens.data import SAMPLE, default_cache_dir, load_dataset  # noqa: E402
from layerlens.nets import Net  # noqa: E402
from layerlens.training import RECOMMENDED_PRESET, preset_train_config  # noqa: E402
from links import VERSION, model_params  # noqa: E402
from streamlit_server import CHROMIUM, cold_and_cached_render, streamlit_app  # noqa: E402


def page_times(config, data_dir: Path, kept: bool = False) -> dict:
    """The Abstraction page in Chromium: first render, then from cache; from the click to the last change.
    kept: the probes and maps the last server left on disk are kept, as when a teacher starts the server again."""
    link = "/layers?" + urllib.parse.urlencode({"v": VERSION, **model_params(config)})
    if not kept:
        forget_results()  # probes and maps computed now, not read from an earlier run's disk
    with streamlit_app({"LAYERLENS_CACHE": os.environ["LAYERLENS_CACHE"], "LAYERLENS_DATA": str(data_dir)}) as url:
        first, cached = cold_and_cached_render(url, link, "Output: the classifier", "Abstraction",
                                               "Maps of each layer")
    case = "server started again, probes and maps on disk" if kept else "nothing on disk"
    return {"case": f"abstraction page, {config.dataset}, Chromium, {case}", "first_render_seconds": round(first, 2),
            "cached_render_seconds": round(cached, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000, help="test images to probe (half fit, half score)")
    parser.add_argument("--dataset", default=SAMPLE, choices=sorted(RECOMMENDED_PRESET))
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help="where the full datasets are")
    args = parser.parse_args()
    print_machine()
    data = load_dataset(SAMPLE) if args.dataset == SAMPLE else dataset_or_skip(args.dataset, args.data_dir)
    if data is None:
        return
    config = preset_train_config(RECOMMENDED_PRESET[data.name], data)
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
        print(json.dumps({"case": f"probe curve, {data.name}, {RECOMMENDED_PRESET[data.name]}, {name}", "images": len(labels),
                          "seconds": round(seconds, 2), "probe_accuracy": {k: round(v, 3) for k, v in curve.items()},
                          "silhouette": separation}), flush=True)
    if Path(CHROMIUM).exists():
        print(json.dumps(page_times(config, args.data_dir)), flush=True)
        print(json.dumps(page_times(config, args.data_dir, kept=True)), flush=True)


if __name__ == "__main__":
    main()

"""Traditional ML page speed, and every traditional model's accuracy and fit time.

JSON lines:
  1. the page on the default data (offline MNIST sample, default CNN already trained and on disk):
     first full render with cold caches (all five models fitted on raw pixels at the default
     training size) and a rerun with everything cached, in Streamlit's AppTest, with each
     model's test accuracy and fit time as the page computed them;
  2. where /usr/bin/chromium exists, the same two moments in a real browser (click on the page's
     link → script finished), the second after a visit to Home, on a fresh server: clicked at once
     and 5 s after Home (meanwhile the server imports scikit-learn and fits the page's five first
     models by itself, its warm-up), and 5 s after Home with LAYERLENS_WARM_UP=0 (the visit fits
     them); and once more on a server started again, which finds the fitted models on disk
     (<LAYERLENS_CACHE>/results);
  3. with --mnist DIR (a folder with torchvision's MNIST, e.g. ../shared/data): each model on raw
     pixels of full MNIST for each size in --sizes (default: the page's 5,000, and all 60,000),
     scored on the 10,000 test images; --svm-max caps the SVM, which alone takes many minutes on 60,000.

    python benchmarks/classic_speed.py [--mnist ../shared/data] [--sizes 5000,60000] [--svm-max 60000]
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from _bench import forget_results, print_machine

os.environ.setdefault("LAYERLENS_CACHE", tempfile.mkdtemp(prefix="layerlens-bench-"))

from app_test import app_test  # noqa: E402
from layerlens.checkpoints import ModelCache  # noqa: E402
from layerlens.classic import MODELS, classic_config, fit_classic, pixel_features  # noqa: E402
from layerlens.data import SAMPLE, default_cache_dir, load_dataset  # noqa: E402
from layerlens.training import preset_train_config, subset_indices  # noqa: E402
from streamlit_server import CHROMIUM, cold_and_cached_render, streamlit_app  # noqa: E402

PAGE = "pages/4_classic.py"
def page_times() -> dict:
    """First render with cold caches and a cached rerun of the page, in AppTest."""
    data = load_dataset(SAMPLE)
    ModelCache(default_cache_dir() / "models").get_or_train(preset_train_config("tiny", data), data)  # not timed
    forget_results()  # nothing fitted yet, on disk either
    at = app_test()  # a fresh server's caches
    at.run()
    at.switch_page(PAGE)
    start = time.perf_counter()
    at.run(timeout=300)
    first = time.perf_counter() - start
    assert not at.exception and not at.error, (at.exception, at.error)
    start = time.perf_counter()
    at.run()
    again = time.perf_counter() - start
    models = {r.label: {"test_accuracy": round(r.test_accuracy, 4), "fit_seconds": round(r.fit_seconds, 2),
                        "predict_seconds": round(r.predict_seconds, 3), "train_images": r.train_images}
              for r in at.session_state["classic_models"]}
    cnn = at.session_state["current_model"].metrics
    return {"case": "traditional ML page, default data, AppTest", "first_render_seconds": round(first, 2),
            "cached_rerun_seconds": round(again, 3), "cnn_test_accuracy": cnn["test_accuracy"], "models": models}


def browser_times(pause_s: float, kept: bool = False, warm_up: bool = True) -> dict:
    """The same in Chromium, on a fresh server: from clicking the page's link on Home (pause_s after Home is drawn:
    meanwhile the server imports scikit-learn and, with warm_up, fits the page's first models in the background) to
    the last change of the page, cold, then cached. kept: the fitted models the last server left on disk are kept,
    as when a teacher starts the server again."""
    if not kept:
        forget_results()
    env = {"LAYERLENS_CACHE": os.environ["LAYERLENS_CACHE"], "LAYERLENS_WARM_UP": "1" if warm_up else "0"}
    with streamlit_app(env) as url:
        first, cached = cold_and_cached_render(url, "", "Right now", "Traditional ML", "White box or black box?",
                                               pause_s)
    case = "server started again, the fitted models on disk" if kept else "nothing on disk"
    case += "" if warm_up else ", no warm-up (LAYERLENS_WARM_UP=0)"
    return {"case": f"traditional ML page, default data, Chromium, clicked {pause_s:g} s after Home, {case}",
            "first_render_seconds": round(first, 2), "cached_render_seconds": round(cached, 2)}


def mnist_models(folder: str, sizes: list[int], svm_max: int) -> None:
    data = load_dataset("mnist", data_dir=folder)
    x_test, y_test = pixel_features(data.x_test), data.y_test.numpy()
    for size in sizes:
        idx = subset_indices(len(data.x_train), size, seed=0)
        x, y = pixel_features(data.x_train[idx]), data.y_train.numpy()[idx]
        for name in MODELS:
            if name == "svm" and len(idx) > svm_max:
                print(json.dumps({"case": "full MNIST, raw pixels", "model": MODELS[name].label, "train_images":
                                  len(idx), "skipped": f"SVM above --svm-max {svm_max}"}), flush=True)
                continue
            result = fit_classic(classic_config(name, dataset="mnist"), x, y, x_test, y_test, data.num_classes)
            print(json.dumps({"case": "full MNIST, raw pixels", "model": result.label, "train_images": len(idx),
                              "test_accuracy": round(result.test_accuracy, 4),
                              "fit_seconds": round(result.fit_seconds, 2),
                              "predict_seconds": round(result.predict_seconds, 2)}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", help="folder holding torchvision's MNIST (e.g. ../shared/data)")
    parser.add_argument("--sizes", default="5000,60000", help="training-set sizes for full MNIST")
    parser.add_argument("--svm-max", type=int, default=60_000, help="largest training set the SVM is fitted on")
    args = parser.parse_args()
    print_machine()
    print(json.dumps(page_times()), flush=True)
    if Path(CHROMIUM).exists():
        for pause in (0, 5):  # clicked at once, or after reading Home for 5 s
            print(json.dumps(browser_times(pause)), flush=True)
        print(json.dumps(browser_times(5, warm_up=False)), flush=True)
        print(json.dumps(browser_times(0, kept=True)), flush=True)
    if args.mnist:
        mnist_models(args.mnist, [int(s) for s in args.sizes.split(",")], args.svm_max)


if __name__ == "__main__":
    main()

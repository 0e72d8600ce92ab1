"""Training speed: the app's fit() against a bare PyTorch loop on the same model and data.

Prints the machine first (its sgemm rate), then one JSON line per case: seconds and test accuracy of the app's
training, images/second of the app's training steps and of a bare loop (same model, optimizer, schedule and batches),
their ratio, and the training's achieved GFLOP/s (operation count over seconds) with its share of the sgemm rate.

    python benchmarks/train_speed.py [--data-dir ../shared/data] [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from layerlens.data import DatasetUnavailable, load_dataset  # noqa: E402
from layerlens.jobs import training_flops  # noqa: E402
from layerlens.machine import describe  # noqa: E402
from layerlens.nets import Net  # noqa: E402
from layerlens.training import TrainConfig, fit, memory_format, preset_train_config  # noqa: E402

CASES = [("mnist-sample", "tiny"), ("mnist", "lenet"), ("cifar10", "deep")]


def bare_images_per_second(config: TrainConfig, x: torch.Tensor, y: torch.Tensor) -> float:
    """The same training as fit(), written as the shortest PyTorch loop: no callbacks, history or checks."""
    torch.manual_seed(config.seed)
    model = Net(config.net).to(memory_format=memory_format(config.net))
    x = x.contiguous(memory_format=memory_format(config.net))
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    total = config.epochs * math.ceil(len(x) / config.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, config.learning_rate, total_steps=total)
    seconds = 0.0
    for _ in range(config.epochs):
        model.train()
        start = time.perf_counter()
        perm = torch.randperm(len(x))
        for i in range(0, len(x), config.batch_size):
            idx = perm[i:i + config.batch_size]
            xb = x[idx]
            if config.augment:
                flip = torch.rand(len(idx)) < 0.5
                xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
            loss = nn.functional.cross_entropy(model(xb), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
        seconds += time.perf_counter() - start
    return len(x) * config.epochs / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path,
                        default=Path(os.environ.get("LAYERLENS_DATA", ROOT.parent / "shared" / "data")))
    parser.add_argument("--repeats", type=int, default=3, help="runs of each; the median is printed")
    parser.add_argument("--only", help="run just this dataset's case")
    args = parser.parse_args()
    machine = describe()
    print(json.dumps(machine), flush=True)  # the machine first: figures compare by its sgemm rate
    for dataset, preset in CASES:
        if args.only and dataset != args.only:
            continue
        repeats = 1 if dataset == "cifar10" else args.repeats  # ~80 s a run
        try:
            data = load_dataset(dataset, args.data_dir, cache_dir=Path("/tmp/layerlens-bench"))
        except DatasetUnavailable as err:
            print(json.dumps({"dataset": dataset, "skipped": str(err)}))
            continue
        config = preset_train_config(preset, data)
        fit(preset_train_config(preset, data, epochs=1, train_size=2000), data)  # warm-up
        app, bare = [], []
        for _ in range(repeats):  # alternate so both see the same machine state
            app.append(fit(config, data))
            bare.append(bare_images_per_second(config, data.x_train, data.y_train))
        seconds = statistics.median(r.metrics["seconds"] for r in app)
        flops = training_flops(config, len(data.x_train), len(data.x_test))  # forward + backward, and the scoring
        app_ips = statistics.median(r.metrics["images_per_second"] for r in app)
        bare_ips = statistics.median(bare)
        print(json.dumps({
            "dataset": dataset, "preset": preset, "params": app[0].metrics["params"], "epochs": config.epochs,
            "train_images": app[0].metrics["train_images"], "seconds": seconds,
            "test_accuracy": min(r.metrics["test_accuracy"] for r in app),
            "app_images_per_second": app_ips, "bare_images_per_second": round(bare_ips, 1),
            "app_over_bare": round(app_ips / bare_ips, 3), "threads": torch.get_num_threads(),
            "training_gflops": round(flops / seconds / 1e9, 2),
            "share_of_sgemm": round(flops / seconds / 1e9 / machine["sgemm_gflops"], 3),
            "device": app[0].metrics["device"]}), flush=True)


if __name__ == "__main__":
    main()

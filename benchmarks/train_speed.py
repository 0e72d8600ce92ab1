"""Training speed: the app's fit() against a bare PyTorch loop on the same model and data.

Prints the machine first (its sgemm rate), then one JSON line per case: seconds and test accuracy of the app's
training, images/second of the app's training steps and of a bare loop (same model, optimizer, schedule and batches),
their ratio, and the training's achieved GFLOP/s (operation count over seconds) with its share of the sgemm rate.

    python benchmarks/train_speed.py [--data-dir ../shared/data] [--repeats 3]
    python benchmarks/train_speed.py --recipes [--only fashion-mnist] [--seeds 2]
    python benchmarks/train_speed.py --layouts
    python benchmarks/train_speed.py --first-channels
    python benchmarks/train_speed.py --reorder
    python benchmarks/train_speed.py --pool-first
    python benchmarks/train_speed.py --compile

--layouts times one training step of each preset (batch 128, Adam) in NCHW and in channels-last (where
nets.BatchNorm2d runs few channels in NCHW), best of 3 rounds, and prints their ratio: why fit() trains channels-last.

--first-channels times a training step of `deep` (batch 128, channels-last) with 16, 24 and 32 channels in its
first block, best of 3 rounds: why `deep` starts with 16 (PyTorch's channels-last batch-norm is slow on 24).

--reorder times a training step of each preset through Net.forward, which runs each ReLU after its pooling (the same
numbers on a quarter of the values), and through its layers in their order, as inspection runs them (in training,
Net.forward also pools before batch-norm: both changes together).

--pool-first times a training step of each preset with each block's batch-norm after its pooling, as Net.forward
trains now (conv → pool → batch-norm → ReLU), and before it (conv → batch-norm → pool → ReLU), taking turns.

--compile times torch.compile (inductor, C++ kernels) against eager per preset, and says whether the compiling pays
back within the preset's recipe: how many steps it would take, against how many the recipe has.

--recipes trains every candidate recipe of each dataset (architecture and training settings) and prints the table
that chose the recipe each dataset starts with: seconds, the seconds scaled to the reference machine of issue 12
(a 70 GFLOP/s sgemm), test accuracy, achieved GFLOP/s and its share of sgemm, and whether it meets the target.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from _bench import DATA_DIR, dataset_or_skip, print_machine
from layerlens.jobs import training_flops
from layerlens.nets import Net
from layerlens.training import (PRESET_TRAINING, RECOMMENDED_PRESET, TRAINING_LAYOUT, TrainConfig, fit,
                                preset_train_config)

CASES = [("mnist-sample", "tiny"), ("mnist", "lenet"), ("fashion-mnist", "wide"), ("cifar10", "deep")]

REFERENCE_SGEMM = 70.0  # GFLOP/s: the AVX2 laptop-class machine the targets are set on
TARGETS = {"mnist-sample": (0.97, 4), "mnist": (0.99, 20), "fashion-mnist": (0.92, 30), "cifar10": (0.80, 120)}
# dataset → (preset, training settings, architecture changes), as tried; the first is the recipe each started with
# (before issue 12), and the one equal to its preset's PRESET_TRAINING is the one it starts with now
CANDIDATES = {
    "mnist-sample": [("tiny", dict(epochs=8, batch_size=64, learning_rate=0.01), {}),
                     ("tiny", dict(epochs=4, batch_size=64, learning_rate=0.01), {}),
                     ("tiny", dict(epochs=4, batch_size=128, learning_rate=0.02), {}),
                     ("tiny", dict(epochs=5, batch_size=128, learning_rate=0.02), {}),
                     ("tiny", dict(epochs=4, batch_size=256, learning_rate=0.04), {})],
    "mnist": [("lenet", dict(epochs=4, batch_size=128, learning_rate=0.01), {}),
              ("lenet", dict(epochs=1, batch_size=64, learning_rate=0.01), {}),
              ("lenet", dict(epochs=2, batch_size=128, learning_rate=0.02), {}),
              ("lenet", dict(epochs=2, batch_size=256, learning_rate=0.02), {}),
              # after epoch 1, a share of the digits drawn by their loss: half for 2 epochs is the recipe now
              ("lenet", dict(epochs=3, batch_size=256, learning_rate=0.02, hardest=0.5), {}),
              ("lenet", dict(epochs=4, batch_size=256, learning_rate=0.02, hardest=0.33), {}),
              ("tiny", dict(epochs=2, batch_size=128, learning_rate=0.02), {})],
    "fashion-mnist": [("lenet", dict(epochs=4, batch_size=128, learning_rate=0.01), {}),
                      ("tiny", dict(epochs=3, batch_size=128, learning_rate=0.02), {}),
                      ("tiny", dict(epochs=3, batch_size=128, learning_rate=0.02), dict(channels=(16, 32), dense=64)),
                      ("lenet", dict(epochs=3, batch_size=128, learning_rate=0.02), dict(channels=(16, 32))),
                      ("wide", dict(epochs=2, batch_size=128, learning_rate=0.02), {}),
                      ("wide", dict(epochs=3, batch_size=128, learning_rate=0.02), {}),
                      ("wide", dict(epochs=3, batch_size=128, learning_rate=0.02, augment=True), {}),
                      ("wide", dict(epochs=4, batch_size=256, learning_rate=0.02), {}),
                      ("wide", dict(epochs=4, batch_size=128, learning_rate=0.02), {}),
                      # after epoch 1, only the hardest images (the highest loss when last seen): TrainConfig.hardest
                      ("wide", dict(epochs=4, batch_size=128, learning_rate=0.02, hardest=0.33), {}),
                      ("wide", dict(epochs=5, batch_size=128, learning_rate=0.02, hardest=0.25), {}),
                      ("wide", dict(epochs=5, batch_size=128, learning_rate=0.02, hardest=0.33), {}),
                      ("wide", dict(epochs=6, batch_size=128, learning_rate=0.02, hardest=0.25), {})],
    "cifar10": [("deep", dict(epochs=4, batch_size=128, learning_rate=0.005), dict(channels=(24, 48, 96, 192))),
                ("deep", dict(epochs=4, batch_size=128, learning_rate=0.005), {}),  # 16 first-layer channels
                ("deep", dict(epochs=5, batch_size=128, learning_rate=0.005), {}),
                ("deep", dict(epochs=2, batch_size=128, learning_rate=0.005), {}),
                ("deep", dict(epochs=4, batch_size=256, learning_rate=0.01), {}),
                ("deep", dict(epochs=5, batch_size=256, learning_rate=0.01), {}),
                ("deep", dict(epochs=8, batch_size=256, learning_rate=0.01), dict(channels=(16, 32, 64, 128))),
                ("deep", dict(epochs=8, batch_size=256, learning_rate=0.02), dict(channels=(16, 32, 64, 128))),
                ("deep", dict(epochs=10, batch_size=256, learning_rate=0.01), dict(channels=(16, 32, 64, 128))),
                # after epoch 1, a share of the photos drawn by their loss: two thirds for 5 epochs is the recipe now
                ("deep", dict(epochs=5, batch_size=128, learning_rate=0.005, hardest=0.66), {}),
                ("deep", dict(epochs=6, batch_size=128, learning_rate=0.005, hardest=0.66), {}),
                ("deep", dict(epochs=7, batch_size=128, learning_rate=0.005, hardest=0.5), {}),
                ("deep", dict(epochs=5, batch_size=128, learning_rate=0.005, hardest=0.75), {})],
}


def bare_images_per_second(config: TrainConfig, x: torch.Tensor, y: torch.Tensor) -> float:
    """The same training as fit(), written as the shortest PyTorch loop: no callbacks, history or checks."""
    torch.manual_seed(config.seed)
    model = Net(config.net).to(memory_format=TRAINING_LAYOUT)
    model.pool_first = config.pool_before_norm and config.net.batch_norm
    x = x.contiguous(memory_format=TRAINING_LAYOUT)
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
            if model.pool_first:
                model.keep_norm_scales_positive()
            scheduler.step()
        seconds += time.perf_counter() - start
    return len(x) * config.epochs / seconds


def step_milliseconds(net, layout: torch.memory_format, batch: int = 128, steps: int = 15) -> float:
    """Best of 3 rounds of `steps` training steps (forward, backward, Adam) on random images, in ms per step."""
    return compare_steps(net, {"forward": lambda model: model}, layout, batch, steps, rounds=3)["forward"]


def compare_steps(net, variants: dict, layout: torch.memory_format = TRAINING_LAYOUT, batch: int = 128,
                  steps: int = 10, rounds: int = 6) -> dict[str, float]:
    """ms per training step (forward, backward, Adam on random images) of each variant, variants[name](model) giving
    the function that runs the model: best of `rounds` rounds of `steps` steps, the variants taking turns in every
    round so that all of them see the same (shared, noisy) machine. Also, per variant, the seconds of its first step
    (where torch.compile compiles)."""
    x = torch.rand(batch, net.in_channels, net.image_size, net.image_size).contiguous(memory_format=layout)
    y = torch.randint(0, net.num_classes, (batch,))
    runs, first = {}, {}
    for name, make in variants.items():
        model = Net(net).to(memory_format=layout).train()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        run = make(model)

        def step(run=run, optimizer=optimizer):
            loss = nn.functional.cross_entropy(run(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        start = time.perf_counter()
        step()
        first[f"{name}_first_step_s"] = round(time.perf_counter() - start, 2)
        for _ in range(2):
            step()  # warm-up
        runs[name] = step
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(rounds):
        for name, step in runs.items():
            start = time.perf_counter()
            for _ in range(steps):
                step()
            best[name] = min(best[name], (time.perf_counter() - start) / steps)
    return {**{name: ms * 1e3 for name, ms in best.items()}, **first}


def preset_nets():
    """Every preset, fitted to grey 28×28 digits (`deep`: colour 32×32 photos)."""
    from layerlens.nets import PRESETS, preset_config

    for preset in PRESETS:
        c = 3 if preset == "deep" else 1
        yield preset, preset_config(preset, c, 32 if c == 3 else 28, 10, (0.5,) * c, (0.25,) * c)


def reorder_table() -> None:
    """ms per training step of every preset through Net.forward (each ReLU after its pooling) and through its layers
    in their order (conv → batch-norm → ReLU → pool), the same numbers either way."""
    for preset, net in preset_nets():
        ms = compare_steps(net, {"layers_in_order": lambda model: model.layers, "forward": lambda model: model})
        print(json.dumps({"preset": preset, "batch": 128, "layers_in_order_ms_per_step": round(ms["layers_in_order"], 1),
                          "forward_ms_per_step": round(ms["forward"], 1),
                          "speed_up": round(ms["layers_in_order"] / ms["forward"], 2)}), flush=True)


def pool_first_table() -> None:
    """ms per training step of every preset with each block's batch-norm after its pooling (Net.forward in training,
    nets._pool_then_norm) and before it (conv → batch-norm → pool → ReLU, the training order until 2026-12-08)."""

    def pooled_first(model):
        model.pool_first = True
        return model

    for preset, net in preset_nets():
        ms = compare_steps(net, {"norm_first": lambda model: model, "pool_first": pooled_first})
        print(json.dumps({"preset": preset, "batch": 128, "norm_first_ms_per_step": round(ms["norm_first"], 1),
                          "pool_first_ms_per_step": round(ms["pool_first"], 1),
                          "speed_up": round(ms["norm_first"] / ms["pool_first"], 2)}), flush=True)


def compile_table() -> None:
    """torch.compile (inductor) against eager, per preset at its recipe's batch size: the first step's seconds (the
    compiling), ms per step after it, and the steps a run would need before the compile pays back, against the steps
    of its recipe (a recipe's last, smaller batch would compile once more; not counted)."""
    train_images = {"tiny": 4000, "lenet": 60000, "wide": 60000, "deep": 50000}  # the sample's 4,000; full sets
    for preset, net in preset_nets():
        batch, epochs = PRESET_TRAINING[preset]["batch_size"], PRESET_TRAINING[preset]["epochs"]
        recipe_steps = epochs * math.ceil(train_images[preset] / batch)
        ms = compare_steps(net, {"eager": lambda model: model, "compiled": lambda model: torch.compile(model)},
                           batch=batch, rounds=4)
        saved = (ms["eager"] - ms["compiled"]) / 1e3
        pay_back = math.ceil(ms["compiled_first_step_s"] / saved) if saved > 0 else None
        print(json.dumps({"preset": preset, "batch": batch, "eager_ms_per_step": round(ms["eager"], 1),
                          "compiled_ms_per_step": round(ms["compiled"], 1),
                          "compile_seconds": ms["compiled_first_step_s"], "steps_to_pay_back": pay_back,
                          "recipe_steps": recipe_steps,
                          "pays_back": pay_back is not None and pay_back < recipe_steps}), flush=True)


def layout_table() -> None:
    """ms per training step of every preset in NCHW and in channels-last, and the speed-up."""
    for preset, net in preset_nets():
        nchw = step_milliseconds(net, torch.contiguous_format)
        last = step_milliseconds(net, torch.channels_last)
        print(json.dumps({"preset": preset, "batch": 128, "nchw_ms_per_step": round(nchw, 1),
                          "channels_last_ms_per_step": round(last, 1), "speed_up": round(nchw / last, 2)}),
              flush=True)


def first_channels_table() -> None:
    """ms per training step of `deep` with 16, 24 and 32 first-block channels (the rest as the preset has them)."""
    from layerlens.nets import PRESETS, preset_config

    net = preset_config("deep", 3, 32, 10, (0.5,) * 3, (0.25,) * 3)
    for first in (16, 24, 32):
        channels = (first, *PRESETS["deep"]["channels"][1:])
        ms = step_milliseconds(dataclasses.replace(net, channels=channels), TRAINING_LAYOUT)
        print(json.dumps({"preset": "deep", "channels": list(channels), "batch": 128,
                          "channels_last_ms_per_step": round(ms, 1),
                          "block1_batch_norm_ms_per_million_values": round(batch_norm_ms_per_million(first), 2)}),
              flush=True)


def batch_norm_ms_per_million(channels: int, side: int = 32, batch: int = 128) -> float:
    """Forward and backward of a channels-last batch-norm on (batch, channels, side, side), best of 5 rounds of 10,
    in ms per million values."""
    norm = nn.BatchNorm2d(channels)
    x = torch.randn(batch, channels, side, side).contiguous(memory_format=TRAINING_LAYOUT).requires_grad_()
    grad = torch.randn_like(x)
    best = float("inf")
    for round_ in range(6):  # the first warms up
        start = time.perf_counter()
        for _ in range(10):
            norm(x).backward(grad)
        if round_:
            best = min(best, (time.perf_counter() - start) / 10)
    return best * 1e3 / (x.numel() / 1e6)


def recipe_table(args, machine: dict) -> None:
    """Train each candidate recipe, print a JSON line per run and then the markdown table that chose the recipes."""
    rows = []
    for dataset, candidates in CANDIDATES.items():
        if args.only and dataset != args.only:
            continue
        data = dataset_or_skip(dataset, args.data_dir)
        if data is None:
            continue
        fit(preset_train_config(candidates[0][0], data, epochs=1, train_size=2000), data)  # warm-up
        target_accuracy, target_seconds = TARGETS[dataset]
        for preset, settings, net in candidates:
            config = preset_train_config(preset, data, **settings)
            config = dataclasses.replace(config, net=dataclasses.replace(config.net, **net))
            runs = [fit(dataclasses.replace(config, seed=seed), data) for seed in range(args.seeds)]
            seconds = statistics.median(r.metrics["seconds"] for r in runs)
            accuracy = min(r.metrics["test_accuracy"] for r in runs)
            gflops = training_flops(config, len(data.x_train), len(data.x_test)) / seconds / 1e9
            scaled = seconds * machine["sgemm_gflops"] / REFERENCE_SGEMM
            row = {"dataset": dataset, "preset": preset, **settings, **{k: list(v) if isinstance(v, tuple) else v
                                                                          for k, v in net.items()},
                   "params": runs[0].metrics["params"], "seconds": seconds, "seconds_at_70": round(scaled, 1),
                   "test_accuracy": accuracy, "seeds": args.seeds, "training_gflops": round(gflops, 1),
                   "share_of_sgemm": round(gflops / machine["sgemm_gflops"], 3),
                   "meets_target": accuracy >= target_accuracy and scaled <= target_seconds,
                   "chosen": preset == RECOMMENDED_PRESET[dataset] and settings == PRESET_TRAINING[preset] and not net}
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("\n| dataset | preset | changes | epochs | batch | lr | seconds | at 70 GFLOP/s | accuracy (worst seed) "
          "| GFLOP/s | share of sgemm | target met | chosen |\n|" + " --- |" * 13)
    for row in rows:
        changes = ", ".join(f"{k}={row[k]}" for k in ("channels", "dense", "augment", "hardest") if k in row) or "—"
        print(f"| {row['dataset']} | {row['preset']} | {changes} | {row['epochs']} | {row['batch_size']} | "
              f"{row['learning_rate']} | {row['seconds']:.1f} | {row['seconds_at_70']:.1f} | "
              f"{row['test_accuracy']:.2%} | {row['training_gflops']} | {row['share_of_sgemm']:.0%} | "
              f"{'yes' if row['meets_target'] else 'no'} | {'**chosen**' if row['chosen'] else ''} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each; the median is printed")
    parser.add_argument("--only", help="run just this dataset's case")
    parser.add_argument("--recipes", action="store_true", help="train every candidate recipe and print the table")
    parser.add_argument("--seeds", type=int, default=1, help="--recipes: seeds per candidate (the worst counts)")
    parser.add_argument("--layouts", action="store_true", help="time a training step in NCHW and channels-last")
    parser.add_argument("--reorder", action="store_true", help="time a training step through Net.forward and "
                        "through the layers in their order")
    parser.add_argument("--pool-first", action="store_true", help="time a training step with each batch-norm after "
                        "its pooling (now) and before it")
    parser.add_argument("--compile", action="store_true", help="time torch.compile against eager, compile included")
    parser.add_argument("--first-channels", action="store_true", help="time a deep training step with 16, 24 and "
                        "32 first-block channels")
    args = parser.parse_args()
    machine = print_machine()
    if args.recipes:
        recipe_table(args, machine)
        return
    if args.layouts:
        layout_table()
        return
    if args.first_channels:
        first_channels_table()
        return
    if args.reorder:
        reorder_table()
        return
    if args.compile:
        compile_table()
        return
    if args.pool_first:
        pool_first_table()
        return
    for dataset, preset in CASES:
        if args.only and dataset != args.only:
            continue
        repeats = 1 if dataset == "cifar10" else args.repeats  # ~80 s a run
        data = dataset_or_skip(dataset, args.data_dir)
        if data is None:
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

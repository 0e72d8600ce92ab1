"""Command line: `python -m layerlens train --dataset NAME --preset NAME --json` trains as the app does
(`--ray local|auto|ray://HOST:10001` trains on a Ray cluster instead of in this process); `python -m layerlens warm
LESSON` trains before class every model a lesson's steps show, into the cache the app's server reads."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .checkpoints import ModelCache, models_dir, save_checkpoint
from .data import SAMPLE, default_cache_dir, load_dataset, shown_name
from .lessons import LESSONS
from .nets import PRESETS
from .training import RECOMMENDED_PRESET, fit, preset_train_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m layerlens", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a CNN and report its accuracy and speed")
    train.add_argument("--dataset", default=SAMPLE, help="mnist-sample, mnist, fashion-mnist, cifar10 or folder:PATH")
    train.add_argument("--preset", choices=sorted(PRESETS), help="architecture (default: the dataset's recommended one)")
    train.add_argument("--epochs", type=int, help="epochs (default: the preset's)")
    train.add_argument("--train-size", type=int, default=0, help="train on this many images (0 = all)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--data-dir", type=Path, help="dataset folder (default: $LAYERLENS_DATA or ./data)")
    train.add_argument("--out", type=Path, help="save the checkpoint here, e.g. models/my-model.pt")
    train.add_argument("--json", action="store_true", help="print one JSON object")
    train.add_argument("--ray", metavar="ADDRESS", help="train on a Ray cluster: local (start one here), auto (the "
                       "cluster this machine joined with `ray start`) or ray://HOST:10001")
    warm = sub.add_parser("warm", help="train every model a lesson needs, so no step of it waits in class")
    warm.add_argument("lesson", choices=sorted(LESSONS))
    warm.add_argument("--data-dir", type=Path, help="the server's data folder (default: $LAYERLENS_DATA or ./data); "
                      "the models go into its cache, where the server finds them ($LAYERLENS_CACHE overrides both)")
    args = parser.parse_args(argv)
    if args.command == "warm":
        return warm_lesson(args.lesson, args.data_dir)

    try:
        data = load_dataset(args.dataset, args.data_dir)
        preset = args.preset or RECOMMENDED_PRESET.get(args.dataset, "tiny")
        overrides = {"train_size": args.train_size, "seed": args.seed}
        if args.epochs is not None:
            overrides["epochs"] = args.epochs
        config = preset_train_config(preset, data, **overrides)
        if args.ray:
            from .remote import ray_fit  # Ray is imported only when asked for

            result = ray_fit(config, data, address=args.ray)
        else:
            result = fit(config, data)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.out:
        save_checkpoint(result, args.out)
    report = {"dataset": args.dataset, "preset": preset, **{k: v for k, v in result.metrics.items() if k != "dataset"},
              "diverged": result.diverged, "backend": "ray" if args.ray else "local"}
    if args.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            print(f"{key:>18}: {value}")
    return 1 if result.diverged else 0


def warm_lesson(name: str, data_dir: Path | None) -> int:
    """Train (or find ready) every model of the lesson, in the server's model cache; one line per model."""
    lesson = LESSONS[name]
    try:
        data = load_dataset(lesson.dataset, data_dir)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    cache = ModelCache(default_cache_dir(data_dir) / "models", shipped=models_dir())
    for config in lesson.configs(data):
        ready = cache.get(config)
        start = time.perf_counter()
        result = ready or cache.get_or_train(config, data)
        how = "ready" if ready else f"trained in {time.perf_counter() - start:.1f} s"
        print(f"{config.key()[:12]}  {shown_name(config.dataset)}, {result.metrics['train_images']:,} images, "
              f"{config.epochs} epochs: "
              f"{result.metrics['test_accuracy']:.1%} test, {how}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

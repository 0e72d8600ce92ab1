"""Filters & features speed: top-patch search and feature visualisation for one layer.

Times, for the CIFAR-10 `deep` preset (or a saved checkpoint) on 10,000 test images: the search for
every channel's strongest activation in one layer and in all layers (one pass), cropping the top 9
patches per channel, and growing 12 feature visualisations for 100 steps. Compute time does not depend
on the weights, so an untrained network of the preset is timed unless --model names a checkpoint.

    python benchmarks/features_speed.py [--data-dir ../shared/data] [--model models/x.pt]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from _bench import DATA_DIR, dataset_or_skip, print_machine
from layerlens.checkpoints import load_checkpoint
from layerlens.features import channel_maxima, top_patches, visualise_channels
from layerlens.nets import Net
from layerlens.training import preset_train_config


def timed(work):
    start = time.perf_counter()
    result = work()
    return result, round(time.perf_counter() - start, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--model", type=Path, help="a checkpoint to time instead of the untrained preset")
    args = parser.parse_args()
    print_machine()
    if args.model:
        model = load_checkpoint(args.model).model
        dataset = load_checkpoint(args.model).config.dataset
    else:
        dataset = "cifar10"
    data = dataset_or_skip(dataset, args.data_dir)
    if data is None:
        return
    if not args.model:
        model = Net(preset_train_config("deep", data).net)
    images = data.x_test[:10_000]
    blocks = len(model.config.channels)
    deepest = f"act{blocks}"
    channel_maxima(model, images[:500], [deepest])  # warm-up
    one, one_s = timed(lambda: channel_maxima(model, images, [deepest])[deepest])
    _, all_s = timed(lambda: channel_maxima(model, images, [f"act{i}" for i in range(1, blocks + 1)]))
    top, crop_s = timed(lambda: top_patches(model, images, deepest, k=9, maxima=one))
    _, vis_s = timed(lambda: visualise_channels(model, deepest, list(range(12)), steps=100))
    print(json.dumps({"dataset": dataset, "images": len(images), "layer": deepest, "channels": top.values.shape[0],
                      "receptive_field": top.field.size, "search_one_layer_seconds": one_s,
                      "search_all_layers_seconds": all_s, "crop_top9_seconds": crop_s,
                      "top_patches_one_layer_seconds": round(one_s + crop_s, 3),
                      "feature_visualisation_12_channels_100_steps_seconds": vis_s}))


if __name__ == "__main__":
    main()

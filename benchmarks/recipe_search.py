"""Recipe search beyond TrainConfig: what the app's training cannot express yet, tried on the same model and data.

train_speed.py --recipes compares recipes the app can train (preset, channels, epochs, batch, learning rate). This
script tries the rest, in a bare PyTorch loop with the same Net, channels-last layout, one-cycle schedule and batches:
label smoothing, SGD with Nesterov momentum and weight decay, AdamW, schedule shapes, weight averaging (EMA),
test-time mirroring (the mean of a photo's and its mirror image's probabilities), random shifts of up to `translate`
pixels (a random crop of the reflect-padded image), three of airbench's ideas for fast CIFAR-10 (Keller Jordan,
2024): alternating mirroring (mirror="alternate"), first kernels started as patch whitening (whiten=True), and its
network shape, two convs per block (double=widths), which the app's pages cannot show, and training on the hardest
images only (hard=share: after the first full_epochs, each epoch trains on that share of the images, those with the
highest loss when last seen, pick="top", drawn with chances in proportion to it, pick="loss", or at random,
pick="random"; a cheap form of
selective backprop, Jiang et al. 2019), and freezing the first conv blocks (freeze=n: blocks 1..n stop learning after
freeze_after epochs, 0 = never learn; their backward pass is skipped, FreezeOut, Brock et al. 2017),
pool_first=True (in training each block conv → pool → batch-norm → ReLU, airbench's order: batch-norm on a quarter of
the values; once trained the same network as the pages show, as training keeps batch-norm's scales at 0 or more;
the app's TrainConfig.pool_before_norm since 2026-12-08, nets._pool_then_norm), bare_first=True (block 1 without batch-norm, its
conv with a bias), first_share=s (the first epoch on that share of the images at random; the rest start at an
untrained network's loss); train_size=n trains on the first n images only. It prints the machine, then
one JSON line per recipe: seconds of training, test accuracy, and with --mirror-test the accuracy with test-time
mirroring.

    python benchmarks/recipe_search.py --dataset fashion-mnist            # the Fashion-MNIST candidates below
    python benchmarks/recipe_search.py --dataset cifar10 --mirror-test    # CIFAR-10's
    python benchmarks/recipe_search.py --dataset cifar10 --recipe "preset='deep', epochs=2, opt='sgd', lr=0.1"

None of these beat the app's recipes by more than a seed's noise (about 0.3 points) at the same seconds
(README, "Training recipes"), so TrainConfig has none of them, and the network keeps one conv per block, except
training on the hardest images, which the app does now (TrainConfig.hardest, drawn by loss): on Fashion-MNIST 92.0% in
47 s where 3 full epochs take 59 s for 91.6%, on CIFAR-10 a point more (79.3% against 78.2%, seeds 0–3) in the same
time with two thirds of the photos; on a small set the network trained on its hardest images alone loses whole classes
(README).
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import time
from pathlib import Path

import torch
from torch import nn

from _bench import DATA_DIR, dataset_or_skip, print_machine
from layerlens.nets import Net, preset_config
from layerlens.training import TRAINING_LAYOUT

CANDIDATES = {
    "fashion-mnist": [
        dict(preset="wide", epochs=2),
        dict(preset="wide", epochs=2, smoothing=0.1),
        dict(preset="wide", epochs=2, batch=64, lr=0.01),
        dict(preset="wide", epochs=2, opt="sgd", lr=0.2, decay=5e-4, smoothing=0.1),
        dict(preset="wide", epochs=3),
        dict(preset="wide", epochs=3, smoothing=0.1),
        dict(preset="wide", epochs=3, warm_up=0.15, anneal="linear"),
        dict(preset="wide", epochs=3, batch=256, lr=0.04),
        dict(preset="wide", epochs=3, opt="sgd", lr=0.2, decay=5e-4, smoothing=0.1),
        dict(preset="wide", epochs=3, opt="adamw", lr=0.01, decay=0.05, smoothing=0.1),
        dict(preset="wide", epochs=3, opt="sgd", lr=0.2, decay=5e-4, smoothing=0.1, net=dict(channels=(8, 32, 64))),
        dict(preset="wide", epochs=2, smoothing=0.1, net=dict(channels=(16, 48, 96))),
        dict(preset="wide", epochs=2, smoothing=0.1, net=dict(first_kernel_size=5)),
        dict(preset="wide", epochs=2, smoothing=0.1, net=dict(dropout=0.2, dense=128)),
        dict(preset="wide", epochs=3, translate=1),
        dict(preset="wide", epochs=4, hard=0.33),
        dict(preset="wide", epochs=5, hard=0.33),
        dict(preset="wide", epochs=5, hard=0.25),
        dict(preset="wide", epochs=4, hard=0.5, full_epochs=2),
        dict(preset="wide", epochs=5, hard=0.33, pick="loss"),
        dict(preset="wide", epochs=5, hard=0.33, pick="loss", freeze=1),
        dict(preset="wide", epochs=5, hard=0.33, pick="loss", freeze=2),
        dict(preset="wide", epochs=5, hard=0.33, pick="loss", freeze=1, freeze_after=0),
        dict(preset="wide", epochs=8, hard=0.33, pick="loss", freeze=2),
        dict(preset="wide", epochs=5, hard=0.33, pick="loss", pool_first=True),
        dict(preset="wide", epochs=5, hard=0.33, pick="loss", bare_first=True),
        dict(preset="wide", epochs=6, hard=0.33, pick="loss", first_share=0.5),
    ],
    "cifar10": [
        dict(preset="deep", epochs=4, lr=0.005, mirror=True),
        dict(preset="deep", epochs=4, lr=0.005, mirror=True, smoothing=0.1),
        dict(preset="deep", epochs=4, lr=0.01, mirror=True, smoothing=0.1),
        dict(preset="deep", epochs=4, opt="sgd", lr=0.1, decay=5e-4, mirror=True, smoothing=0.1),
        dict(preset="deep", epochs=4, batch=64, opt="sgd", lr=0.05, decay=5e-4, mirror=True, smoothing=0.1),
        dict(preset="deep", epochs=4, opt="sgd", lr=0.1, decay=5e-4, mirror=True, smoothing=0.1,
             net=dict(first_kernel_size=0)),
        dict(preset="deep", epochs=4, opt="sgd", lr=0.1, decay=5e-4, mirror=True, smoothing=0.1, net=dict(dense=128)),
        dict(preset="deep", epochs=3, opt="sgd", lr=0.1, decay=5e-4, mirror=True, smoothing=0.1,
             net=dict(channels=(16, 64, 128, 256))),
        dict(preset="deep", epochs=4, lr=0.005, mirror="alternate"),
        dict(preset="deep", epochs=4, lr=0.005, mirror=True, whiten=True),
        dict(preset="deep", epochs=2, lr=0.005, mirror=True),
        dict(preset="deep", epochs=2, lr=0.005, mirror=True, whiten=True),
        dict(preset="deep", epochs=2, lr=0.005, mirror=True, double=(16, 24, 48, 96)),
        dict(preset="deep", epochs=3, lr=0.005, mirror=True, double=(16, 24, 48, 96)),
        dict(preset="deep", epochs=4, lr=0.005, mirror=True, translate=2),
        dict(preset="deep", epochs=6, lr=0.005, hard=0.33),
        dict(preset="deep", epochs=7, lr=0.005, hard=0.33),
        dict(preset="deep", epochs=4, lr=0.005, mirror=True, freeze=1),
        dict(preset="deep", epochs=5, lr=0.005, mirror=True, freeze=1),
        # after epoch 1, a share drawn by loss: two thirds for 5 epochs is the app's recipe since 2026-12-07 night
        dict(preset="deep", epochs=6, lr=0.005, mirror=True, hard=0.66, pick="loss"),
        dict(preset="deep", epochs=6, lr=0.005, mirror=True, hard=0.66, pick="random"),
        dict(preset="deep", epochs=5, lr=0.005, mirror=True, hard=0.66, pick="loss"),
        dict(preset="deep", epochs=7, lr=0.005, mirror=True, hard=0.66, pick="loss"),
        dict(preset="deep", epochs=6, lr=0.005, mirror=True, hard=0.5, pick="loss"),
        dict(preset="deep", epochs=5, lr=0.005, mirror=True, hard=0.75, pick="loss"),
        dict(preset="deep", epochs=6, lr=0.005, mirror=True, hard=0.66, pick="loss", pool_first=True),
        dict(preset="deep", epochs=6, lr=0.005, mirror=True, hard=0.66, pick="loss", bare_first=True),
        dict(preset="deep", epochs=6, lr=0.005, mirror=True, hard=0.66, pick="loss", warm_up=0.15, anneal="linear"),
        dict(preset="deep", epochs=6, lr=0.005, mirror=True, hard=0.66, pick="loss", ema=0.995),
        dict(preset="deep", epochs=6, batch=64, lr=0.0035, mirror=True, hard=0.66, pick="loss"),
    ],
}


def train(data, preset: str, epochs: int, batch: int = 128, lr: float = 0.02, opt: str = "adam",
          smoothing: float = 0.0, decay: float = 0.0, mirror: bool = False, ema: float = 0.0, warm_up: float = 0.3,
          anneal: str = "cos", net: dict | None = None, seed: int = 0, mirror_test: bool = False,
          whiten: bool = False, double: tuple[int, ...] = (), translate: int = 0, hard: float = 0.0,
          full_epochs: int = 1, pick: str = "top", train_size: int = 0, freeze: int = 0,
          freeze_after: int = 1, pool_first: bool = False, bare_first: bool = False, first_share: float = 1.0) -> dict:
    """Train one recipe in a bare loop; its seconds and test accuracy (and with mirror_test, test-time mirroring's)."""
    config = preset_config(preset, data.channels, data.image_size, data.num_classes, data.mean, data.std)
    config = dataclasses.replace(config, **(net or {}))
    torch.manual_seed(seed)
    model = (double_conv_net(config, double) if double else Net(config, seed=seed)).to(memory_format=TRAINING_LAYOUT)
    if bare_first:
        without_first_norm(model)
    if pool_first and isinstance(model, Net):
        model.pool_first = True
    x, y = data.x_train.contiguous(memory_format=TRAINING_LAYOUT), data.y_train
    if train_size:
        x, y = x[:train_size], y[:train_size]
    if whiten and double:
        raise ValueError("whiten starts the app's Net's first kernels; the double-conv network has none by that name.")
    if whiten:
        whiten_first_kernels(model, data.x_train[:5000])
    if opt == "sgd":
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=decay)
    else:
        optimizer = (torch.optim.AdamW if opt == "adamw" else torch.optim.Adam)(model.parameters(), lr=lr,
                                                                                weight_decay=decay)
    kept = max(1, round(hard * len(x))) if hard else len(x)
    first = max(1, round(first_share * len(x)))
    steps = sum(math.ceil(((first if e == 0 else len(x)) if e < full_epochs or not hard else kept) / batch)
                for e in range(epochs))
    # first_share < 1: the first epoch trains on that share at random; the others start at an untrained network's loss
    last_loss = torch.full((len(x),), float("inf") if first_share >= 1 else math.log(data.num_classes))
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=steps,
                                                   pct_start=warm_up, anneal_strategy=anneal)
    generator = torch.Generator().manual_seed(seed)
    average = copy.deepcopy(model) if ema else None
    padded = nn.functional.pad(data.x_train, (translate,) * 4, mode="reflect") if translate else None
    start = time.perf_counter()
    first_flips = torch.rand(len(x), generator=generator) < 0.5
    for epoch in range(epochs):
        if freeze and epoch == freeze_after:
            frozen(model, freeze)
        model.train()
        order = torch.randperm(len(x), generator=generator)
        if epoch == 0:
            order = order[:first]
        if hard and epoch >= full_epochs:  # selective training: the `hard` share of images with the highest last loss
            if pick == "top":
                order = last_loss.topk(kept).indices
            elif pick == "random":  # the same number of images, whatever their loss: what choosing by loss adds
                order = torch.randperm(len(x), generator=generator)[:kept]
            else:  # drawn without replacement, each image with a chance in proportion to its last loss
                order = torch.multinomial(last_loss + 1e-3, kept, replacement=False, generator=generator)
            order = order[torch.randperm(len(order), generator=generator)]
        for i in range(0, len(order), batch):
            idx = order[i:i + batch]
            xb = x[idx] if not translate else shifted(padded, idx, translate, generator)
            if mirror == "alternate":  # airbench's: random halves in epoch 1, then each photo the other way round
                flip = first_flips[idx] ^ bool(epoch % 2)
                xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
            elif mirror:
                flip = torch.rand(len(idx), generator=generator) < 0.5
                xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
            losses = nn.functional.cross_entropy(model(xb), y[idx], label_smoothing=smoothing, reduction="none")
            last_loss[idx] = losses.detach()
            loss = losses.mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if pool_first:  # as the app's fit does: pooling before batch-norm needs it
                model.keep_norm_scales_positive()
            schedule.step()
            if average is not None:
                with torch.no_grad():
                    for mean, now in zip(average.state_dict().values(), model.state_dict().values()):
                        mean.lerp_(now, 1 - ema) if mean.dtype.is_floating_point else mean.copy_(now)
    seconds = time.perf_counter() - start
    scored = (average or model).eval()
    with torch.no_grad():
        probabilities = torch.cat([scored(data.x_test[i:i + 1000]).softmax(1) for i in range(0, len(data.x_test), 1000)])
        result = {"seconds": round(seconds, 1),
                  "test_accuracy": round((probabilities.argmax(1) == data.y_test).float().mean().item(), 4)}
        if mirror_test:
            mirrored = torch.cat([scored(data.x_test[i:i + 1000].flip(3)).softmax(1)
                                  for i in range(0, len(data.x_test), 1000)])
            result["mirrored_test_accuracy"] = round(
                ((probabilities + mirrored).argmax(1) == data.y_test).float().mean().item(), 4)
    return result


def without_first_norm(model: Net) -> None:
    """Block 1 without batch-norm: its conv gets a bias instead (conv → ReLU → pool), so no batch-norm runs on the
    biggest maps."""
    from layerlens.nets import FIRST_KERNEL_INIT_SCALE, _pool_then_norm, _pool_then_relu

    model.layers.bn1 = nn.Identity()
    with torch.no_grad():
        model.layers.conv1.weight.div_(FIRST_KERNEL_INIT_SCALE)  # PyTorch's own start: no batch-norm to rescale it
    model.layers.conv1.bias = nn.Parameter(torch.zeros(model.layers.conv1.out_channels))
    model._steps = _pool_then_relu(list(model.layers.children()))
    model._pooled_first = _pool_then_norm(list(model.layers.children()))


def frozen(model: Net, blocks: int) -> None:
    """Blocks 1..blocks stop learning: their kernels and batch-norm scales get no gradient, so the backward pass
    stops at the input of the first block still learning (their batch-norms still normalise each batch by its own
    statistics)."""
    for block in model.feature_info[:blocks]:
        for name in (block.conv, block.norm):
            if name:
                getattr(model.layers, name).requires_grad_(False)


def shifted(padded: torch.Tensor, idx: torch.Tensor, by: int, generator: torch.Generator) -> torch.Tensor:
    """Each image of the batch moved by up to `by` pixels each way (a random crop of the reflect-padded image)."""
    n, c, h, w = len(idx), padded.shape[1], padded.shape[2] - 2 * by, padded.shape[3] - 2 * by
    dy, dx = torch.randint(0, 2 * by + 1, (2, n), generator=generator)
    rows = (dy[:, None] + torch.arange(h))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w))[:, None, None, :]
    crop = padded[idx[:, None, None, None], torch.arange(c)[None, :, None, None], rows, cols]
    return crop.contiguous(memory_format=TRAINING_LAYOUT)


def double_conv_net(config, widths: tuple[int, ...]) -> nn.Module:
    """Not the app's network: airbench's shape, small. A 3×3 conv to widths[0] channels, then per later width a block
    of two 3×3 convs (conv → pool → batch-norm → ReLU → conv → batch-norm → ReLU), then global max-pooling and the
    classifier: what a page of one conv per block cannot show, tried to see what it would buy."""
    from layerlens.nets import Normalize

    def conv(c_in, c_out):
        return nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)

    layers = [Normalize(config.mean, config.std), conv(config.in_channels, widths[0]), nn.BatchNorm2d(widths[0]),
              nn.ReLU()]
    for c_in, c_out in zip(widths, widths[1:]):
        layers += [conv(c_in, c_out), nn.MaxPool2d(2), nn.BatchNorm2d(c_out), nn.ReLU(),
                   conv(c_out, c_out), nn.BatchNorm2d(c_out), nn.ReLU()]
    layers += [nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(widths[-1], config.num_classes)]
    return nn.Sequential(*layers)


def whiten_first_kernels(model: Net, images: torch.Tensor) -> None:
    """Start block 1's kernels as airbench does: the leading eigenvectors of the images' patch covariance, scaled to
    whiten, each with its negative (half as many eigenvectors as kernels)."""
    conv = model.layers.conv1
    k, out = conv.kernel_size[0], conv.out_channels
    if out % 2:
        raise ValueError(f"whiten needs an even number of first-block channels (each eigenvector and its negative), "
                         f"not {out}.")
    with torch.no_grad():
        patches = nn.functional.unfold(model.layers.normalize(images), k, padding=k // 2)  # (N, C·k·k, positions)
        patches = patches.transpose(1, 2).reshape(-1, patches.shape[1])[::7].double()
        values, vectors = torch.linalg.eigh(torch.cov(patches.T))
        top = vectors[:, -(out // 2):].T / (values[-(out // 2):, None] + 1e-2).sqrt()
        conv.weight.copy_(torch.cat([top, -top]).view_as(conv.weight).float())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted({*CANDIDATES, "mnist-sample", "mnist"}), default="fashion-mnist",
                        help="whose candidates to train; with --recipe, mnist-sample and mnist too")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--recipe", help="one recipe instead of the list, as keyword arguments of train()")
    parser.add_argument("--mirror-test", action="store_true", help="also score with test-time mirroring")
    args = parser.parse_args()
    if not args.recipe and args.dataset not in CANDIDATES:
        parser.error(f"{args.dataset} has no list of candidates: name one with --recipe")
    print_machine()
    data = dataset_or_skip(args.dataset, args.data_dir)
    if data is None:
        return
    recipes = [eval(f"dict({args.recipe})")] if args.recipe else CANDIDATES[args.dataset]  # noqa: S307 (a CLI flag)
    for recipe in recipes:
        result = train(data, **recipe, mirror_test=args.mirror_test)
        shown = {k: ({n: list(v) if isinstance(v, tuple) else v for n, v in val.items()} if k == "net" else val)
                 for k, val in recipe.items()}
        print(json.dumps({"dataset": args.dataset, **shown, **result}), flush=True)


if __name__ == "__main__":
    main()

"""What each channel has learned: receptive fields, top-activating patches, feature visualisation, kernels."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .nets import Net, NetConfig, ReceptiveField
from .training import History


def receptive_fields(net: NetConfig) -> dict[str, ReceptiveField]:
    """Receptive field of every conv-block layer, from the architecture alone (NetConfig.feature_info)."""
    return {layer: block.receptive_field(layer) for block in net.feature_info() for layer in block.layers}


def _prefix(model: Net, layer: str) -> nn.Sequential:
    """The network up to and including layer (later layers are not computed)."""
    names = [name for name, _ in model.layers.named_children()]
    if layer not in names:
        raise ValueError(f"No layer {layer!r}; this network has {names}.")
    return model.layers[:names.index(layer) + 1]


@dataclass
class TopPatches:
    """For each channel of a layer, the k input patches that excite it most."""

    layer: str
    field: ReceptiveField
    values: torch.Tensor  # (C, k) strongest activation of the channel in each patch's image
    image_index: torch.Tensor  # (C, k) which image each patch comes from
    centres: torch.Tensor  # (C, k, 2) (row, col) of the strongest unit in the layer's map
    patches: torch.Tensor  # (C, k, channels, size, size) in [0, 1], zero outside the image


@torch.no_grad()
def channel_maxima(model: Net, images: torch.Tensor, layers: list[str], batch_size: int = 500
                   ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """For each layer: every image's strongest activation per channel (N, C) and where it is (N, C, 2).

    One pass over the images for all layers; only the per-image maxima are kept, so memory stays small.
    """
    if model.training:  # shared models are kept in eval mode: no write to them
        model.eval()
    last = max(layers, key=lambda name: [n for n, _ in model.layers.named_children()].index(name))
    prefix = _prefix(model, last)
    values = {layer: [] for layer in layers}
    places = {layer: [] for layer in layers}
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size]
        for name, module in prefix.named_children():
            x = module(x)
            if name in values:  # (B, C, H, W) → per-channel max and its (row, col)
                best, flat = x.flatten(2).max(dim=2)
                values[name].append(best)
                places[name].append(torch.stack((flat // x.shape[3], flat % x.shape[3]), dim=-1))
    return {layer: (torch.cat(values[layer]), torch.cat(places[layer])) for layer in layers}


def crop(image: torch.Tensor, field: ReceptiveField, row: int, col: int) -> torch.Tensor:
    """The receptive-field window of unit (row, col) cut from image (C, H, W); zero where it leaves the image."""
    half = (field.size - 1) / 2
    top = round(field.start + row * field.jump - half)
    left = round(field.start + col * field.jump - half)
    c, h, w = image.shape
    out = torch.zeros(c, field.size, field.size, dtype=image.dtype)
    t0, l0 = max(top, 0), max(left, 0)
    t1, l1 = min(top + field.size, h), min(left + field.size, w)
    if t1 > t0 and l1 > l0:
        out[:, t0 - top:t1 - top, l0 - left:l1 - left] = image[:, t0:t1, l0:l1]
    return out


def top_patches(model: Net, images: torch.Tensor, layer: str, k: int = 9,
                maxima: tuple[torch.Tensor, torch.Tensor] | None = None) -> TopPatches:
    """The k images whose patch excites each channel of layer most, cropped to the receptive field."""
    if layer not in receptive_fields(model.config):
        raise ValueError(f"Top patches need a conv-block layer (conv/bn/act/pool), not {layer!r}.")
    values, places = maxima if maxima is not None else channel_maxima(model, images, [layer])[layer]
    k = min(k, len(images))
    best, index = values.topk(k, dim=0)  # (k, C): one patch per image, so k different images per channel
    field = receptive_fields(model.config)[layer]
    centres = places[index, torch.arange(values.shape[1])]  # (k, C, 2)
    patches = torch.stack([
        torch.stack([crop(images[index[j, c]], field, *centres[j, c].tolist()) for j in range(k)])
        for c in range(values.shape[1])])
    return TopPatches(layer, field, best.T.contiguous(), index.T.contiguous(), centres.transpose(0, 1), patches)


def _blur(x: torch.Tensor) -> torch.Tensor:
    """A light 3×3 Gaussian blur per channel: high frequencies are what make raw gradient ascent unreadable."""
    kernel = torch.tensor([1.0, 2.0, 1.0])
    kernel = (kernel[:, None] * kernel[None, :] / 16).expand(x.shape[1], 1, 3, 3)
    return nn.functional.conv2d(nn.functional.pad(x, (1, 1, 1, 1), mode="replicate"), kernel, groups=x.shape[1])


def visualise_channels(model: Net, layer: str, channels: list[int], steps: int = 100, lr: float = 0.1,
                       jitter: int = 2, blur_every: int = 4, decay: float = 0.005, seed: int = 0) -> torch.Tensor:
    """Activation maximisation: images (len(channels), C, H, W) in [0, 1] that excite each channel most.

    Starts from faint noise around grey and climbs the gradient of the channel's centre unit before its
    activation function (a ReLU that is off passes no gradient), with the regularisers that keep small
    images legible: random jitter, a periodic blur and a pull back to grey. centre_field() crops the result
    to what that unit sees.
    """
    net = model.config
    prefix = _prefix(model, pre_activation(model, layer))
    if model.training:  # shared models are kept in eval mode: no write to them
        model.eval()
    generator = torch.Generator().manual_seed(seed)
    image = (0.5 + 0.05 * torch.randn(len(channels), net.in_channels, net.image_size, net.image_size,
                                      generator=generator)).requires_grad_(True)
    optimizer = torch.optim.Adam([image], lr=lr)
    wanted = torch.tensor(channels)
    for step in range(steps):
        dy, dx = (int(v) for v in torch.randint(-jitter, jitter + 1, (2,), generator=generator))
        out = prefix(torch.roll(image, shifts=(dy, dx), dims=(2, 3)))  # (n, C, H, W)
        # the centre unit, like one neuron: a map's mean would be linear in the pixels for block 1 and
        # be maximised by a flat colour; one unit wants a pattern inside its receptive field
        target = out[torch.arange(len(channels)), wanted, out.shape[2] // 2, out.shape[3] // 2]
        # the gradient for the image alone: nothing lands in the (shared) model's weights
        (image.grad,) = torch.autograd.grad(-target.sum(), image)
        optimizer.step()
        with torch.no_grad():
            image.sub_(decay * (image - 0.5))
            if blur_every and (step + 1) % blur_every == 0:
                image.copy_(_blur(image))
            image.clamp_(0, 1)
    return image.detach()


def pre_activation(model: Net, layer: str) -> str:
    """The layer just before layer's activation function (act2 → bn2, or conv2 without batch-norm)."""
    block = model.config.block_of(layer)
    return block.pre_activation if layer == block.act else layer


def centre_field(model: Net, layer: str, images: torch.Tensor) -> torch.Tensor:
    """Crop images (n, C, H, W) to the receptive field of layer's centre unit: what that neuron sees."""
    block = model.config.block_of(layer)
    side, field = block.side(layer), block.receptive_field(layer)
    return torch.stack([crop(image, field, side // 2, side // 2) for image in images])


def kernel_orientation(kernel: torch.Tensor) -> tuple[float, float]:
    """Dominant edge orientation in degrees (0 = horizontal edge, 90 = vertical) and how clearly oriented
    (0 = a blob or flat, 1 = a clean edge), from the kernel's gradient structure tensor."""
    k = kernel.detach().float().mean(0).numpy() if kernel.ndim == 3 else kernel.detach().float().numpy()
    if k.shape[0] < 2:
        return 0.0, 0.0
    gy, gx = np.gradient(k)
    jxx, jyy, jxy = (gx * gx).sum(), (gy * gy).sum(), (gx * gy).sum()
    gradient_angle = 0.5 * math.atan2(2 * jxy, jxx - jyy)  # direction of greatest change
    edge = (math.degrees(gradient_angle) + 90) % 180  # the edge runs across that direction
    spread = math.hypot(jxx - jyy, 2 * jxy)
    coherence = spread / (jxx + jyy) if jxx + jyy > 1e-12 else 0.0
    return edge, coherence


def orientation_label(kernel: torch.Tensor) -> str:
    """A short label for a kernel: the edge direction it detects, or 'blob' when it has none."""
    angle, coherence = kernel_orientation(kernel)
    if coherence < 0.3:
        return "blob"
    return ["—", "╲", "|", "╱"][round(angle / 45) % 4]  # 0° horizontal, 45°, 90° vertical, 135°


def sort_by_orientation(kernels: torch.Tensor) -> list[int]:
    """Kernel indices ordered by edge direction, blobs last, so similar detectors sit together."""
    keys = []
    for i, kernel in enumerate(kernels):
        angle, coherence = kernel_orientation(kernel)
        keys.append((coherence < 0.3, round(angle / 45) % 4, i))
    return [i for *_, i in sorted(keys)]


def settling_order(history: History, net: NetConfig) -> list[tuple[str, float]]:
    """Conv layers with their mean distance from their final form over the epochs between start and end,
    soonest settled first."""
    distance = history.distance_to_final
    convs = {block.conv for block in net.feature_info()}
    means = {name: sum(d[1:-1]) / max(1, len(d) - 2) for name, d in distance.items() if name in convs}
    return sorted(means.items(), key=lambda item: item[1])

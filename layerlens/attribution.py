"""What matters to one prediction: hide parts of the image, follow the gradient, switch channels off."""
from __future__ import annotations

import torch
from torch import nn

from .inspection import run_layers
from .nets import Net


@torch.no_grad()
def occlusion_map(model: Net, image: torch.Tensor, target: int, patch: int = 6,
                  fill: torch.Tensor | None = None) -> torch.Tensor:
    """(H, W): how much the probability of `target` drops when a patch×patch square of grey covers each pixel
    (averaged over every square position that covers it). fill: (C,) grey per channel, default 0.5."""
    c, h, w = image.shape
    fill = torch.full((c,), 0.5) if fill is None else fill
    base = model(image[None]).softmax(1)[0, target]
    stride = max(1, patch // 3)  # squares overlap by two thirds: a smooth map at a ninth of the cost
    positions = [(r, q) for r in range(0, h - patch + 1, stride) for q in range(0, w - patch + 1, stride)]
    drops = torch.zeros(h, w)
    covered = torch.zeros(h, w)
    for start in range(0, len(positions), 256):  # one batch of hidden squares at a time
        chunk = positions[start:start + 256]
        batch = image.expand(len(chunk), c, h, w).clone()
        for i, (r, q) in enumerate(chunk):
            batch[i, :, r:r + patch, q:q + patch] = fill[:, None, None]
        drop = base - model(batch).softmax(1)[:, target]  # (n,)
        for i, (r, q) in enumerate(chunk):
            drops[r:r + patch, q:q + patch] += drop[i]
            covered[r:r + patch, q:q + patch] += 1
    return drops / covered.clamp_min(1)


def saliency_map(model: Net, image: torch.Tensor, target: int) -> torch.Tensor:
    """(H, W): how strongly the score of `target` reacts to each pixel, |∂ score / ∂ pixel| (largest channel).

    The gradient is taken with respect to the image alone (torch.autograd.grad), so nothing lands in the weights'
    .grad: the model may be shared by every visitor."""
    x = image[None].clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(x)[0, target], x)
    return grad[0].abs().amax(0)


class KnockedOut(nn.Module):
    """The model with some channels of one layer switched off (their outputs set to 0), as a model of its own.

    It runs the shared model's layers one by one and changes nothing in it, so other visitors see the intact
    network while this one looks at the damaged one."""

    def __init__(self, model: Net, layer: str, channels: list[int]):
        super().__init__()
        self.model, self.layer, self.channels = model, layer, list(channels)
        self.training = False  # set here, not by .eval(), which would reach into the shared model

    def forward(self, x):  # (N, C, H, W) in [0, 1] → (N, classes) logits
        return run_layers(self.model, x, keep=["classifier"], switched_off=(self.layer, self.channels))["classifier"]


def knocked_out(model: Net, layer: str, channels: list[int]) -> KnockedOut:
    """The model with the named layer's chosen channels outputting 0, as if those neurons were switched off."""
    if not hasattr(model.layers, layer):
        raise ValueError(f"No layer {layer!r} in this network.")
    return KnockedOut(model, layer, channels)


@torch.no_grad()
def knocked_out_probabilities(model: Net, layer: str, channels: list[int], image: torch.Tensor) -> torch.Tensor:
    """(classes,): the probabilities the model gives image (C, H, W) with layer's chosen channels switched off."""
    return knocked_out(model, layer, channels)(image[None]).softmax(1)[0]

"""What matters to one prediction: hide parts of the image, follow the gradient, switch channels off."""
from __future__ import annotations

from contextlib import contextmanager

import torch

from .inspection import single_thread
from .nets import Net


@single_thread()
@torch.no_grad()
def occlusion_map(model: Net, image: torch.Tensor, target: int, patch: int = 6,
                  fill: torch.Tensor | None = None) -> torch.Tensor:
    """(H, W): how much the probability of `target` drops when a patch×patch square of grey covers each pixel
    (averaged over every square position that covers it). fill: (C,) grey per channel, default 0.5."""
    model.eval()
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


@single_thread()
def saliency_map(model: Net, image: torch.Tensor, target: int) -> torch.Tensor:
    """(H, W): how strongly the score of `target` reacts to each pixel, |∂ score / ∂ pixel| (largest channel)."""
    model.eval()
    x = image[None].clone().requires_grad_(True)
    model(x)[0, target].backward()
    return x.grad[0].abs().amax(0)


@contextmanager
def knocked_out(model: Net, layer: str, channels: list[int]):
    """While inside, the named layer's chosen channels output 0, as if those neurons were switched off."""
    def zero(_module, _inputs, output):
        output = output.clone()
        output[:, channels] = 0
        return output

    handle = getattr(model.layers, layer).register_forward_hook(zero)
    try:
        yield model
    finally:
        handle.remove()

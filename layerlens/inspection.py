"""Looking inside a trained Net: every layer's output through forward hooks that always come off."""
from __future__ import annotations

from collections import OrderedDict
from contextlib import contextmanager

import torch

from .nets import Net


@contextmanager
def capture(model: Net, names: list[str] | None = None):
    """Record the output of each named layer (all by default) while the block runs; hooks are always removed."""
    outputs: OrderedDict[str, torch.Tensor] = OrderedDict()
    handles = []
    try:
        for name, module in model.layers.named_children():
            if names is None or name in names:
                handles.append(module.register_forward_hook(
                    lambda _m, _inp, out, name=name: outputs.__setitem__(name, out.detach())))
        yield outputs
    finally:
        for handle in handles:
            handle.remove()


@torch.no_grad()
def layer_outputs(model: Net, images: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
    """Every layer's output, in order, for images (N, C, H, W) in [0, 1]; the model is put in eval mode."""
    model.eval()
    with capture(model) as outputs:
        model(images)
    return outputs


def layer_table(model: Net) -> list[dict]:
    """One row per layer: name, kind, output shape (per image) and learned parameters."""
    net = model.config
    dummy = torch.zeros(1, net.in_channels, net.image_size, net.image_size)
    outputs = layer_outputs(model, dummy)
    rows = [{"layer": "input", "kind": "image", "output shape": "×".join(map(str, dummy.shape[1:])), "parameters": 0}]
    for name, module in model.layers.named_children():
        rows.append({"layer": name, "kind": type(module).__name__,
                     "output shape": "×".join(map(str, outputs[name].shape[1:])),
                     "parameters": sum(p.numel() for p in module.parameters())})
    return rows


@torch.no_grad()
def confusion_matrix(model: Net, x: torch.Tensor, y: torch.Tensor, num_classes: int,
                     batch_size: int = 256) -> torch.Tensor:
    """Counts (true class, predicted class) over a labelled set."""
    model.eval()
    counts = torch.zeros(num_classes, num_classes, dtype=torch.long)
    for i in range(0, len(x), batch_size):
        pred = model(x[i:i + batch_size]).argmax(1)
        counts.index_put_((y[i:i + batch_size], pred), torch.ones_like(pred), accumulate=True)
    return counts

"""Looking inside a trained Net: every layer's output through forward hooks that always come off."""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn

from .nets import Net, NetConfig


@torch.no_grad()
def run_layers(model: Net, images: torch.Tensor, keep: list[str] | None = None, until: str | None = None,
               switched_off: tuple[str, list[int]] | None = None) -> OrderedDict[str, torch.Tensor]:
    """Run the network one named layer at a time and return the outputs of the layers in `keep` (all by default).

    No hooks and no change to the model: a model shared by every visitor can be looked into from many threads at
    once. until: stop after this layer. switched_off: (layer, channels) whose outputs are set to 0 on the way.
    """
    if model.training:  # a model in the shared cache is always in eval mode; anything else is put there
        model.eval()
    outputs: OrderedDict[str, torch.Tensor] = OrderedDict()
    x = images
    for name, module in model.layers.named_children():
        x = module(x)
        if switched_off is not None and name == switched_off[0] and switched_off[1]:
            x = x.clone()
            x[:, switched_off[1]] = 0
        if keep is None or name in keep:
            outputs[name] = x
        if name == until:
            break
    return outputs


def layer_outputs(model: Net, images: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
    """Every layer's output, in order, for images (N, C, H, W) in [0, 1]."""
    return run_layers(model, images)


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


def confusion_counts(y_true: torch.Tensor, y_pred: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(classes, classes) counts of (true class, predicted class) pairs: rows true, columns predicted."""
    counts = torch.zeros(num_classes, num_classes, dtype=torch.long)
    counts.index_put_((torch.as_tensor(y_true), torch.as_tensor(y_pred)), torch.ones(len(y_true), dtype=torch.long),
                      accumulate=True)
    return counts


@torch.no_grad()
def confusion_matrix(model: Net, x: torch.Tensor, y: torch.Tensor, num_classes: int,
                     batch_size: int = 256) -> torch.Tensor:
    """Counts (true class, predicted class) of a model over a labelled set."""
    predictions = torch.cat([model(x[i:i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])
    return confusion_counts(y, predictions, num_classes)


@dataclass(frozen=True, eq=False)
class NeuronSum:
    """One neuron's arithmetic: inputs × weights, summed with the bias, through the activation."""
    layer: str  # "conv2", "dense" or "classifier"
    inputs: torch.Tensor  # what it sees: a (C_in, k, k) patch of the layer before, or the (D,) vector before
    weights: torch.Tensor  # same shape as inputs; batch-norm folded in, as it is when predicting
    bias: float
    total: float  # (inputs × weights).sum() + bias: the pre-activation
    output: float  # after the activation (the classifier's is the raw score, its logit)
    folded: bool  # whether a batch-norm was folded into weights and bias

    @property
    def products(self) -> torch.Tensor:
        return self.inputs * self.weights


@torch.no_grad()
def neuron_sum(model: Net, image: torch.Tensor, layer: str, channel: int, row: int = 0, col: int = 0,
               outputs: OrderedDict[str, torch.Tensor] | None = None) -> NeuronSum:
    """The arithmetic of one neuron for image (C, H, W): channel `channel` at (row, col) of conv layer `layer`,
    or neuron `channel` of "dense" or "classifier". outputs: layer_outputs of this image, if already computed."""
    outputs = outputs if outputs is not None else layer_outputs(model, image[None])
    names = list(outputs)
    module = getattr(model.layers, layer)
    before = outputs[names[names.index(layer) - 1]][0]  # this layer's input
    weight, bias = module.weight[channel], module.bias[channel] if module.bias is not None else torch.tensor(0.0)
    position = names.index(layer)
    after = names[position + 1] if position + 1 < len(names) else None  # the classifier has nothing after it
    folded = after is not None and isinstance(getattr(model.layers, after), nn.BatchNorm2d)
    if folded:  # eval-mode batch-norm is y = scale·z + shift per channel: one neuron with new weights and bias
        bn = getattr(model.layers, after)
        scale = bn.weight[channel] / torch.sqrt(bn.running_var[channel] + bn.eps)
        weight, bias = weight * scale, (bias - bn.running_mean[channel]) * scale + bn.bias[channel]
        after = names[names.index(after) + 1]
    if isinstance(module, nn.Conv2d):
        k, pad = module.kernel_size[0], module.padding[0]
        padded = nn.functional.pad(before, (pad, pad, pad, pad))  # zeros outside the image, as the conv sees it
        inputs = padded[:, row:row + k, col:col + k]  # (C_in, k, k)
        where = (0, channel, row, col)
    else:
        inputs, where = before, (0, channel)
    total = float((inputs * weight).sum() + bias)
    output = total if after is None else float(outputs[after][where])  # through the activation
    return NeuronSum(layer, inputs.clone(), weight.clone(), float(bias), total, output, folded)


def neuron_layers(net: NetConfig) -> dict[str, str]:
    """The layers whose neurons weigh inputs (each block's conv, dense, classifier), with their names in words."""
    return ({b.conv: f"block {b.index} ({b.conv})" for b in net.feature_info()}
            | ({"dense": "dense layer"} if net.dense else {}) | {"classifier": "output layer (classifier)"})


def softmax_steps(logits: torch.Tensor) -> dict[str, torch.Tensor]:
    """Softmax spelled out: scores → e^(score − top score) → divided by their sum = probabilities."""
    exps = torch.exp(logits - logits.max())  # subtracting the top score changes nothing and keeps e^x small
    return {"logits": logits, "exps": exps, "probabilities": exps / exps.sum()}

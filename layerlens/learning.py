"""Learning under the microscope: one step of gradient descent, with every number it involves."""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from .nets import Net, weighted_layers


@dataclass(frozen=True, eq=False)
class StepReport:
    """What one gradient-descent step did: the error before, the signal each layer got, the change, the error after."""
    loss_before: float
    probs_before: torch.Tensor  # (N, classes)
    grad_norms: dict[str, float]  # per layer with weights: the size of the error signal that reached it
    gradients: dict[str, torch.Tensor]  # per layer: ∂loss/∂weight, the weight's shape
    updates: dict[str, torch.Tensor]  # per layer: the change each weight received, −learning rate × gradient
    loss_after: float
    probs_after: torch.Tensor  # (N, classes)
    model: Net  # the stepped copy; the model passed in is untouched


def gradient_step(model: Net, images: torch.Tensor, labels: torch.Tensor, learning_rate: float) -> StepReport:
    """One step of plain gradient descent (SGD, no momentum) on (images, labels), on a copy of the model.

    The copy stays in evaluation mode (batch-norm uses its stored statistics, dropout is off), so that
    "before" and "after" are the same function of the weights, and only the weights change.
    """
    stepped = copy.deepcopy(model).eval()
    logits = stepped(images)
    loss = nn.functional.cross_entropy(logits, labels)
    stepped.zero_grad(set_to_none=True)
    loss.backward()
    layers = weighted_layers(stepped)
    before = {name: m.weight.detach().clone() for name, m in layers.items()}
    gradients = {name: m.weight.grad.detach().clone() for name, m in layers.items()}
    torch.optim.SGD(stepped.parameters(), lr=learning_rate).step()
    with torch.no_grad():
        after_logits = stepped(images)
        loss_after = nn.functional.cross_entropy(after_logits, labels).item()
    return StepReport(loss.item(), logits.detach().softmax(1), {n: g.norm().item() for n, g in gradients.items()},
                      gradients, {n: m.weight.detach() - before[n] for n, m in layers.items()}, loss_after,
                      after_logits.softmax(1), stepped)

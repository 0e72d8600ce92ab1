"""Learning under the microscope: one step of gradient descent, with every number it involves."""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, replace
from typing import Callable

import torch
from torch import nn

from .classic import curve_sizes
from .nets import Net, NetConfig, weighted_layers
from .training import TrainConfig, evaluate


@dataclass(frozen=True, eq=False)
class StepReport:
    """What one gradient-descent step did: the error before, the signal each layer got, the change, the error after."""
    loss_before: float
    grad_norms: dict[str, float]  # per layer with weights: the size of the error signal that reached it
    gradients: dict[str, torch.Tensor]  # per layer: ∂loss/∂weight, the weight's shape
    updates: dict[str, torch.Tensor]  # per layer: the change each weight received, −learning rate × gradient
    loss_after: float
    model: Net  # the stepped copy; the model passed in is untouched


def gradient_step(model: Net, images: torch.Tensor, labels: torch.Tensor, learning_rate: float) -> StepReport:
    """One step of plain gradient descent (SGD, no momentum) on (images, labels), on a copy of the model.

    The copy stays in evaluation mode (batch-norm uses its stored statistics, dropout is off), so that
    "before" and "after" are the same function of the weights, and only the weights change.
    """
    stepped = copy.deepcopy(model).eval()
    loss = nn.functional.cross_entropy(stepped(images), labels)
    stepped.zero_grad(set_to_none=True)
    loss.backward()
    layers = weighted_layers(stepped)
    before = {name: m.weight.detach().clone() for name, m in layers.items()}
    gradients = {name: m.weight.grad.detach().clone() for name, m in layers.items()}
    torch.optim.SGD(stepped.parameters(), lr=learning_rate).step()
    with torch.no_grad():
        loss_after = nn.functional.cross_entropy(stepped(images), labels).item()
    return StepReport(loss.item(), {n: g.norm().item() for n, g in gradients.items()}, gradients,
                      {n: m.weight.detach() - before[n] for n, m in layers.items()}, loss_after, stepped)


def random_start(config: NetConfig, seed: int = 0) -> Net:
    """The network before any learning: exactly the random weights fit() starts from with this seed."""
    return Net(config, seed=seed).eval()


def layer_changes(report: StepReport) -> list[dict]:
    """Per layer with weights: how big the error signal and the update were, against the weights themselves."""
    rows = []
    for name, layer in weighted_layers(report.model).items():
        update = report.updates[name]
        before = layer.weight.detach() - update
        rows.append({"layer": name, "weights": update.numel(), "gradient size": report.grad_norms[name],
                     "update size": update.norm().item(),
                     "update ÷ weights": update.norm().item() / max(before.norm().item(), 1e-12),
                     "largest single update": update.abs().max().item()})
    return rows


def batch_indices(available: int, size: int, step: int) -> torch.Tensor:
    """The random training batch of a hand-taken step: the same for the same step number, so the step the page
    previews is the step the button then takes."""
    return torch.randint(available, (min(size, available),), generator=torch.Generator().manual_seed(step))


def descend(model: Net, images: torch.Tensor, labels: torch.Tensor, learning_rate: float, steps: int,
            batch_size: int = 0, first_step: int = 0) -> tuple[Net, list[float]]:
    """`steps` steps of plain gradient descent on a copy of model (in evaluation mode, like gradient_step).

    Each step learns from all of (images, labels), or with batch_size from the batch_indices of its step number
    (counting from first_step). Returns the stepped copy and each step's loss (before its update); stops early
    once the loss is no longer a number, because then the weights have blown up.
    """
    stepped = copy.deepcopy(model).eval()
    optimizer = torch.optim.SGD(stepped.parameters(), lr=learning_rate)
    losses = []
    for step in range(first_step, first_step + steps):
        pick = batch_indices(len(images), batch_size, step) if batch_size else slice(None)
        loss = nn.functional.cross_entropy(stepped(images[pick]), labels[pick])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if not math.isfinite(losses[-1]):
            break
    return stepped, losses


@dataclass
class HandSteps:
    """A network a visitor steps by hand: where it started, the model now, each step's loss and the test accuracy
    after each batch of steps (steps taken, accuracy; NaN once the weights blew up)."""

    source: tuple  # what it started from: (model key, "random" or "trained")
    model: Net
    losses: list[float]
    checks: list[tuple[int, float]]

    @classmethod
    def start(cls, source: tuple, model: Net, x_test: torch.Tensor, y_test: torch.Tensor) -> "HandSteps":
        return cls(source, model, [], [(0, evaluate(model, x_test, y_test)[1])])

    @property
    def blown(self) -> bool:
        """Whether the last step's loss is no longer a number: the weights blew up."""
        return bool(self.losses) and not math.isfinite(self.losses[-1])

    def take(self, count: int, images: torch.Tensor, labels: torch.Tensor, learning_rate: float, batch_size: int,
             x_test: torch.Tensor, y_test: torch.Tensor) -> None:
        """count more steps (see descend), then score the test images."""
        self.model, losses = descend(self.model, images, labels, learning_rate, count, batch_size,
                                     first_step=len(self.losses))
        self.losses = self.losses + losses
        self.checks.append((len(self.losses), float("nan") if self.blown else evaluate(self.model, x_test, y_test)[1]))


FRACTIONS = (0.01, 0.03, 0.1, 0.3, 1.0)  # of a small training set, for "more data"
CURVE_FROM = 1000  # from this many training images on, "more data" trains on the learning-curve sizes


def data_sizes(available: int) -> list[int]:
    """Training-set sizes for "more data, better accuracy": the Traditional ML page's learning-curve sizes (100, 300,
    1,000, 3,000, …, all), so that each page finds the networks the other trained; 1%, 3%, 10%, 30% and all of a set
    smaller than CURVE_FROM images."""
    if available >= CURVE_FROM:
        return curve_sizes(available)
    return sorted({max(1, round(f * available)) for f in FRACTIONS})


LESSON_IMAGES = 5000  # the "goes wrong" lessons retrain on at most this many images, so each takes seconds


def lesson_base(config: TrainConfig, available: int) -> TrainConfig:
    """The visitor's own recipe on at most LESSON_IMAGES training images: the healthy run the lessons break."""
    if available <= LESSON_IMAGES or 0 < config.train_size <= LESSON_IMAGES:
        return config
    return replace(config, train_size=LESSON_IMAGES)


@dataclass(frozen=True)
class Scenario:
    """A way to make learning fail on purpose: what to change, what goes wrong, and why."""
    title: str
    change: Callable[[TrainConfig], TrainConfig]
    explanation: str


def _sigmoid_deep(config: TrainConfig) -> TrainConfig:
    """As many 3×3 blocks as the image allows (up to 4), sigmoid everywhere, no batch-norm to rescue it."""
    blocks = min(4, config.net.image_size.bit_length() - 1)  # each block halves the image: 28 → 14 → 7 → 3 → 1
    net = replace(config.net, channels=(8, 16, 32, 64)[:blocks], kernel_size=3, first_kernel_size=0, padding=True,
                  activation="sigmoid", batch_norm=False, dense=32, dropout=0.0)
    return replace(config, net=net, optimizer="sgd", learning_rate=0.05, schedule="constant")


SCENARIOS = {
    "too_high": Scenario(
        "Learning rate far too high", lambda c: replace(c, optimizer="sgd", learning_rate=20.0, schedule="constant"),
        "Each step moves the weights by the learning rate times the gradient. When the learning rate is huge the "
        "step overshoots the valley it was meant to go down, lands higher up on the other side, and the next, "
        "steeper gradient throws it further still: the loss jumps around or explodes to infinity."),
    "too_low": Scenario(
        "Learning rate far too low", lambda c: replace(c, optimizer="sgd", learning_rate=1e-6, schedule="constant"),
        "The gradient points the right way, but each step is so tiny that after hundreds of steps the weights "
        "have hardly moved: the loss stays where it started and the network is still guessing."),
    "sigmoid": Scenario(
        "Sigmoid activations in a deeper network", _sigmoid_deep,
        "A sigmoid's slope is at most 0.25 and almost 0 once its input is large. Feeding the error back multiplies "
        "it by that slope at every layer, so by the first layers it has all but vanished: their weights barely "
        "change, and the network learns slowly or not at all. ReLU's slope is 1 wherever it fires."),
    "overfit": Scenario(
        "A tiny training set and many epochs", lambda c: replace(c, train_size=50, epochs=60, batch_size=16,
                                                                 augment=False),
        "With only 50 examples the network can remember each one instead of learning what digits have in "
        "common: training accuracy reaches 100% while test accuracy stays far lower. That gap is overfitting. "
        "More data (or less capacity, dropout, augmentation) closes it."),
}

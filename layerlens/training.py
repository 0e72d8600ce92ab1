"""Training: fit(config, data, on_step) with history, divergence detection and device pick-up."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from .data import CIFAR10, FASHION_MNIST, MNIST, SAMPLE, ImageData, mirror_by_default, shown_name
from .nets import Net, NetConfig, SeededDropout, check_types, parameter_counts, weighted_layers

OPTIMIZERS = ("adam", "sgd")
EPOCH_TEST_IMAGES = 2000  # at most this many test images scored after each epoch but the last (which scores all)
MIN_EPOCH_TEST_IMAGES = 500  # and at least this many (where the test set has them): a curve steady to about 2 points
SCHEDULES = ("onecycle", "constant")
MIN_FOCUSED_STEPS = 100  # training on the hardest images only (TrainConfig.hardest) where it keeps this many updates

# Recommended training settings per preset (the Train page and the CLI start from these): the fastest recipe found to
# reach each dataset's target accuracy, `python benchmarks/train_speed.py --recipes` prints the table that chose them.
PRESET_TRAINING = {
    # The grey presets train pooling before batch-norm (TrainConfig.pool_before_norm): 1.1–1.3× faster in the app's
    # fit for the same accuracy (seeds taking turns, sgemm 175–182: the sample 1.16–1.51 s against 1.47–1.75 s, mean
    # 97.6% both; MNIST 6.1–6.2 s against 6.9–7.7 s, 99.18% against 99.22%; Fashion-MNIST 13.9–16.2 s against
    # 17.8–19.8 s, 92.1% against 92.0%). `deep` does not: on CIFAR-10 it lost 0.4 points (79.06% against 79.44%, seeds
    # 0 and 1 twice) for a step only 1.16× faster.
    # the offline sample: 1 full epoch, then 4 on half the images, drawn by their loss: 97.2–98.2% (mean 97.6%) over
    # seeds 0–10 in 2.5–2.9 s, where 4 full epochs gave 97.1–98.0% (mean 97.5%) in 3.3–3.7 s (sgemm 68–70, README)
    "tiny": dict(epochs=5, batch_size=64, learning_rate=0.01, hardest=0.5, pool_before_norm=True),
    # MNIST: 1 full epoch, then 2 on half the digits, drawn by their loss: 99.15–99.29% (mean 99.22%, seeds 0–3), where
    # 2 full epochs, as many digits and updates, gave 98.98–99.16% (mean 99.08%) (README, "Training recipes")
    "lenet": dict(epochs=3, batch_size=256, learning_rate=0.02, hardest=0.5, pool_before_norm=True),
    # after epoch 1, a third of the images, drawn by their loss (TrainConfig.hardest): Fashion-MNIST 91.8–92.3% in
    # 46–55 s at sgemm 68–69, where 3 full epochs take 59 s for 91.6–91.9% (README, "Training recipes")
    "wide": dict(epochs=5, batch_size=128, learning_rate=0.02, hardest=0.33, pool_before_norm=True),
    # after epoch 1, two thirds of the photos, drawn by their loss, for 5 epochs: CIFAR-10 78.6–79.7% (mean 79.3%, seeds
    # 0–3) where 4 full epochs give 77.9–78.6% (mean 78.2%) in about the same time, as they train about as many photos
    # (215,000 against 200,000); two thirds at random gave 78.2–78.5% (README, "Training recipes")
    "deep": dict(epochs=6, batch_size=128, learning_rate=0.005, hardest=0.66),
}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a trained model: data, architecture and training settings."""

    net: NetConfig = field(default_factory=NetConfig)
    dataset: str = SAMPLE
    optimizer: str = "adam"
    learning_rate: float = 0.01
    batch_size: int = 64
    epochs: int = 8
    train_size: int = 0  # 0 = every training image
    schedule: str = "onecycle"  # one-cycle warms up then anneals the learning rate: fast, stable
    augment: bool = False  # random horizontal flips (for photos, not digits)
    seed: int = 0
    # after epoch 1, each epoch trains only on this share of the training images, drawn by their loss when the network
    # last saw them (mostly those it gets wrong), where the run keeps MIN_FOCUSED_STEPS updates; 1.0 = every image
    hardest: float = 1.0
    # in training, each conv block pools its conv's maps before batch-norm and the activation (nets._pool_then_norm):
    # a step 1.2–1.3× faster, and once trained the same network, layer for layer, as the pages show it
    pool_before_norm: bool = False

    def validate(self) -> None:
        """Raise ValueError with a message a student can act on."""
        if not isinstance(self.net, NetConfig):
            raise ValueError("The network's settings are missing.")
        self.net.validate()
        check_types({"learning_rate": self.learning_rate, "hardest": self.hardest}, (int, float))
        check_types({name: getattr(self, name) for name in ("batch_size", "epochs", "train_size", "seed")}, int)
        check_types({"dataset": self.dataset, "optimizer": self.optimizer, "schedule": self.schedule}, str)
        check_types({"augment": self.augment, "pool_before_norm": self.pool_before_norm}, bool)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"Unknown optimizer {self.optimizer!r}; choose one of {OPTIMIZERS}.")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"Unknown schedule {self.schedule!r}; choose one of {SCHEDULES}.")
        if not 0 < self.learning_rate < math.inf:
            raise ValueError(f"The learning rate must be positive (got {self.learning_rate}).")
        if self.batch_size < 1 or self.epochs < 1 or self.train_size < 0:
            raise ValueError("Batch size and epochs must be at least 1, and the training size not negative.")
        if not 0 < self.hardest <= 1:
            raise ValueError(f"The share of hardest images trained on after epoch 1 must be above 0% and at most "
                             f"100% (got {self.hardest:.0%}).")

    def hardest_images(self, images: int) -> int:
        """How many of `images` training images each epoch after the first trains on: the config's share, or every
        image where the share would leave the run fewer than MIN_FOCUSED_STEPS weight updates. On a small set one epoch
        teaches too little for the losses to say which images are hard, and fewer updates cost the most there: 300
        sample digits, 8 epochs, fall from 81.6% to 25–27% on half of them, chosen by loss or at random alike
        (README, "Training recipes")."""
        if self.hardest >= 1:
            return images
        kept = max(1, round(self.hardest * images))
        return kept if self._updates(images, kept) >= MIN_FOCUSED_STEPS else images

    def updates(self, images: int) -> int:
        """Weight updates a training on `images` images takes: one per batch, every epoch."""
        return self._updates(images, self.hardest_images(images))

    def _updates(self, images: int, later: int) -> int:  # every image in epoch 1, `later` of them in each epoch after
        return math.ceil(images / self.batch_size) + math.ceil(later / self.batch_size) * (self.epochs - 1)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        return cls(**{**d, "net": NetConfig.from_dict(d["net"])})

    def key(self) -> str:
        """Stable hash of the config: the cache key for the model it trains. A setting added later is left out
        while it has the value that trains as before it existed, so saved models keep their keys."""
        settings = self.to_dict()
        if settings["hardest"] == 1:
            del settings["hardest"]
        if not (settings["pool_before_norm"] and self.net.batch_norm):  # without batch-norm it trains as before
            del settings["pool_before_norm"]
        return hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class Progress:
    """What on_step receives after every optimisation step."""

    epoch: int  # 1-based
    step: int  # 1-based, over the whole run
    total_steps: int
    loss: float
    accuracy: float  # on this batch
    epoch_done: bool = False  # True on the last step of an epoch, when test accuracy is known
    test_accuracy: float | None = None


@dataclass
class History:
    """What training did, step by step and epoch by epoch: what the pages draw.

    A model trained before a field was added loads with that field empty (History.from_dict)."""

    step_loss: list[float] = field(default_factory=list)
    step_accuracy: list[float] = field(default_factory=list)  # on each step's batch
    epoch_train_loss: list[float] = field(default_factory=list)
    epoch_train_accuracy: list[float] = field(default_factory=list)
    # on the first epoch_test_images(…) test images after each epoch but the last, which scores all of them
    epoch_test_loss: list[float] = field(default_factory=list)
    epoch_test_accuracy: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)  # since the start, at each epoch's end
    kernels: list[torch.Tensor] = field(default_factory=list)  # first-layer weights at the start, then per epoch
    # the whole network's state_dict at the start and after epochs 1, 2, 4, … before the last
    states: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)
    # per weighted layer, per epoch from 0: 1 − cosine similarity to its final weights, and the distance from its
    # start relative to that start's size
    distance_to_final: dict[str, list[float]] = field(default_factory=dict)
    distance_from_init: dict[str, list[float]] = field(default_factory=dict)
    grad_norm: dict[str, list[float]] = field(default_factory=dict)  # per weighted layer, per step

    @property
    def epochs(self) -> int:
        """Epochs completed (a diverged run stops inside one)."""
        return len(self.epoch_test_accuracy)

    def to_dict(self) -> dict:
        """Plain lists, dicts and tensors: what a checkpoint stores (torch.load(weights_only=True) reads it)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        """From to_dict's output, or an older checkpoint's: fields it lacks start empty, unknown ones are dropped."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def check(self) -> None:
        """ValueError naming a field that is not what the pages draw (a checkpoint may hold anything)."""
        def numbers(values) -> bool:
            return isinstance(values, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                    for v in values)

        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "kernels":
                fine = isinstance(value, list) and all(isinstance(k, torch.Tensor) and k.ndim == 4 for k in value)
            elif f.name == "states":
                fine = isinstance(value, dict) and all(isinstance(e, int) and isinstance(s, dict)
                                                       for e, s in value.items())
            elif f.name in ("distance_to_final", "distance_from_init", "grad_norm"):  # per layer
                fine = isinstance(value, dict) and all(isinstance(k, str) and numbers(v) for k, v in value.items())
            else:
                fine = numbers(value)
            if not fine:
                raise ValueError(f"{f.name.replace('_', ' ')} holds something other than what LayerLens records")


@dataclass(eq=False)
class TrainResult:
    """A trained model with its config, history and metrics. Shared results are read-only: nothing may change the
    model's weights once it is trained (model_key caches a digest of them)."""

    model: Net
    config: TrainConfig
    history: History
    metrics: dict  # test_accuracy, train_accuracy, seconds, train_seconds, images_per_second, ...
    diverged: str | None = None  # the explanation, when training blew up


def weights_digest(model: nn.Module) -> str:
    """A short hash of every weight and buffer: two models with the same numbers get the same digest."""
    digest = hashlib.sha1()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def model_key(result: TrainResult) -> str:
    """What a result computed from this model depends on: its config and its weights (computed once per result).

    The config alone is not enough: a checkpoint loaded from models/ can share a config with a model trained on
    this server and still have other weights."""
    key = result.__dict__.get("_model_key")
    if key is None:
        key = result.__dict__["_model_key"] = f"{result.config.key()}-{weights_digest(result.model)}"
    return key


def model_at_epoch(result: TrainResult, epoch: int | None) -> Net:
    """The network as it was after `epoch` (0: its random start), from the states its history kept; None: the trained
    model itself. KeyError for an epoch whose state was not kept (see History.states)."""
    if epoch is None:
        return result.model
    model = Net(result.config.net).eval()
    model.load_state_dict(result.history.states[epoch])
    return model


# Fewer weight updates than this are too few to learn from, whatever the learning rate. Batch-norm makes it worse:
# on test images it uses running averages that move 10% of the way (momentum 0.1) at each update, so after n updates
# 0.9**n of their random start is left: 43% after 8, under 1% after 50.
FEW_UPDATES = 50


def updates_taken(result: TrainResult) -> int:
    """How many times training changed the weights: one update per batch, every epoch."""
    if result.history.step_loss:
        return len(result.history.step_loss)
    m = result.metrics  # a checkpoint from before step losses were kept, and before TrainConfig.hardest: all images
    return m["epochs"] * math.ceil(m["train_images"] / result.config.batch_size)


def training_problem(result: TrainResult) -> str | None:
    """What went wrong in words, when training diverged or the network ends no better than guessing (diagnosed
    before advising: too few updates is its own lesson, not the learning rate's)."""
    if result.diverged:
        return result.diverged
    classes = result.config.net.num_classes
    if result.metrics["test_accuracy"] < 1.5 / classes:
        updates, config = updates_taken(result), result.config
        if updates < FEW_UPDATES:
            batches = math.ceil(result.metrics["train_images"] / config.batch_size)
            return (f"The network is no better than guessing: {result.metrics['test_accuracy']:.0%} right, where "
                    f"picking a class at random gets {1 / classes:.0%}, because it took only {updates} "
                    f"step{'s' if updates != 1 else ''} ({result.metrics['epochs']} epoch"
                    f"{'s' if result.metrics['epochs'] != 1 else ''} of {batches} batch{'es' if batches != 1 else ''}"
                    f" of up to {config.batch_size} images), too few to learn"
                    + (", and batch-norm's running averages, which it uses on test images, have not settled"
                       if config.net.batch_norm else "")
                    + f". Use a smaller batch or more epochs, so that it takes at least {FEW_UPDATES} steps.")
        return (f"The network is no better than guessing: {result.metrics['test_accuracy']:.0%} right, where picking a "
                f"class at random gets {1 / classes:.0%}. Its loss is stuck, so the error fed back no longer changes "
                f"the weights usefully. A learning rate far too high (here {result.config.learning_rate:g}) knocks the "
                f"neurons into a state where they never fire again; far too low, and they barely move. "
                f"Try a learning rate near 0.01.")
    return None


# Channels-last: oneDNN's convolutions and max-pooling run fastest so on CPU (batch-norm on few channels switches back
# by itself, see nets.BatchNorm2d). A training step against NCHW at batch 128, 2-core AVX2: `tiny` 1.4–1.7×, `lenet`
# 0.9–1.3×, `wide` 1.8×, `deep` 1.4× (python benchmarks/train_speed.py --layouts).
TRAINING_LAYOUT = torch.channels_last


def pick_device() -> torch.device:
    """CUDA if present, then Apple's MPS, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> tuple[float, float]:
    """Mean cross-entropy loss and accuracy of model on (x, y)."""
    if model.training:  # shared models are kept in eval mode: no write to them
        model.eval()
    device = next(model.parameters()).device
    loss, correct = 0.0, 0
    for i in range(0, len(x), batch_size):
        xb, yb = x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
        logits = model(xb)
        loss += nn.functional.cross_entropy(logits, yb, reduction="sum").item()
        correct += (logits.argmax(1) == yb).sum().item()
    return loss / len(x), correct / len(x)


def epoch_test_images(train_images: int, test_images: int) -> int:
    """How many test images are scored after each epoch but the last: the first EPOCH_TEST_IMAGES, and no more than
    3 per training image, so that scoring costs at most about one epoch of training (a forward pass is about a third
    of a training step). A small training set runs many short epochs, and scoring 2,000 images after each took more
    than its training: 50 digits × 60 epochs, 2.8 s of 4.6 s; 40 digits × 40 epochs, 2.5 s of 5.6 s."""
    return min(test_images, EPOCH_TEST_IMAGES, max(MIN_EPOCH_TEST_IMAGES, 3 * train_images))


def subset_indices(available: int, size: int, seed: int) -> torch.Tensor:
    """The first `size` positions of a seeded shuffle of range(available); all of them, in order, for 0.

    Smaller sizes are prefixes of larger ones, so a learning curve adds images rather than swapping them.
    """
    if not size or size >= available:
        return torch.arange(available)
    return torch.randperm(available, generator=torch.Generator().manual_seed(seed))[:size]


def training_subset(config: TrainConfig, data: ImageData) -> tuple[torch.Tensor, torch.Tensor]:
    """The first train_size images of a seeded shuffle (all of them when train_size is 0)."""
    n = len(data.x_train)
    if not config.train_size or config.train_size >= n:
        return data.x_train, data.y_train
    idx = subset_indices(n, config.train_size, config.seed)
    return data.x_train[idx], data.y_train[idx]


MIN_CURVE_STEPS = 200  # weight updates a CNN on a small training set still gets
MAX_CURVE_EPOCHS = 40


def curve_train_config(config: TrainConfig, size: int, available: int) -> TrainConfig:
    """The CNN's recipe on its first `size` training images.

    Small sets get smaller batches and more epochs, at least MIN_CURVE_STEPS updates, so the
    network is not starved of updates: only the amount of data changes, not the amount of training.
    The recipe's share of hardest images stays where the point still gets MIN_CURVE_STEPS updates with it (Fashion-
    MNIST's 30,000 images: 547 updates, in less than half the time of 5 full epochs); a smaller set trains on every
    image every epoch. Skipping images there would halve its updates: the sample's 100 / 3,000 digits got 85.6% /
    97.1% with 105 / 143 updates, against 87.2% / 97.7% with 200 / 235 (seeds 0 and 1, README).
    """
    if size >= available:
        return dataclasses.replace(config, train_size=0)
    batch = min(config.batch_size, max(8, size // 10))
    epochs = max(config.epochs, min(MAX_CURVE_EPOCHS, math.ceil(MIN_CURVE_STEPS / math.ceil(size / batch))))
    point = dataclasses.replace(config, train_size=size, batch_size=batch, epochs=epochs)
    skips = point.hardest_images(size) < size  # the share applies (TrainConfig.hardest_images)
    return point if skips and point.updates(size) >= MIN_CURVE_STEPS else dataclasses.replace(point, hardest=1.0)


def _divergence_message(epoch: int, step: int, config: TrainConfig) -> str:
    return (f"Training diverged in epoch {epoch} (step {step}): the loss became infinite or not-a-number. "
            f"Each update overshot so far that the weights blew up. With a learning rate of "
            f"{config.learning_rate:g} the steps are too big for this network: try a smaller learning rate "
            f"(or turn batch-norm on).")


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().cpu().clone() for name, tensor in model.state_dict().items()}


class Recorder:
    """Observes training: after each step's backward pass, and after each epoch's scoring. Writes what it saw into
    the History at the end."""

    def step(self, model: Net) -> None:
        pass

    def epoch(self, model: Net, epoch: int, last: bool) -> None:
        pass

    def write(self, history: History) -> None:
        pass


class Kernels(Recorder):
    """The first layer's kernels at the start and after every epoch: the filters as they form."""

    def __init__(self, model: Net):
        self.kernels = [model.layers.conv1.weight.detach().cpu().clone()]

    def epoch(self, model, epoch, last):
        self.kernels.append(model.layers.conv1.weight.detach().cpu().clone())

    def write(self, history):
        history.kernels = self.kernels


class States(Recorder):
    """The whole network at the start and after epochs 1, 2, 4, 8, … (the final one is the model itself), so that
    what each layer represents can be measured as training goes on."""

    def __init__(self, model: Net):
        self.states = {0: _cpu_state(model)}

    def epoch(self, model, epoch, last):
        if not last and epoch & (epoch - 1) == 0:  # a power of two
            self.states[epoch] = _cpu_state(model)

    def write(self, history):
        history.states = self.states


class Weights(Recorder):
    """Every weighted layer's weights after each epoch, to measure at the end when each one reached its final form
    and how far it moved; and the size of the error signal reaching each layer at every step."""

    def __init__(self, model: Net):
        self.layers = {name: m.weight for name, m in weighted_layers(model).items()}
        self.snapshots = {name: [w.detach().clone()] for name, w in self.layers.items()}
        self.grad_norms = []

    def step(self, model):
        # kept on the device and stacked once at the end: no per-step sync, so recording costs ~nothing
        self.grad_norms.append(torch.stack([w.grad.detach().norm() for w in self.layers.values()]))

    def epoch(self, model, epoch, last):
        for name, w in self.layers.items():
            self.snapshots[name].append(w.detach().clone())

    def write(self, history):
        # 1 − cosine similarity to the final weights: 0 once a layer has its final form (blind to the weights'
        # overall scale, which batch-norm makes meaningless)
        history.distance_to_final = {
            name: [1 - nn.functional.cosine_similarity(w.flatten(), shots[-1].flatten(), dim=0).item()
                   for w in shots] for name, shots in self.snapshots.items()}
        history.distance_from_init = {name: [((w - shots[0]).norm() / shots[0].norm()).item() for w in shots]
                                      for name, shots in self.snapshots.items()}
        norms = (torch.stack(self.grad_norms).cpu() if self.grad_norms
                 else torch.zeros(0, len(self.layers)))  # (steps, layers)
        history.grad_norm = {name: norms[:, i].tolist() for i, name in enumerate(self.layers)}


@dataclass
class _Run:
    """One training run's moving parts."""

    config: TrainConfig
    model: Net
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None
    generator: torch.Generator  # batches and mirror flips
    x: torch.Tensor
    y: torch.Tensor
    history: History
    recorders: list[Recorder]
    on_step: Callable[[Progress], None] | None
    step: int = 0
    images: int = 0  # trained on so far, counting each time an image is seen
    diverged: str | None = None
    # per training image, its loss and whether the network got it right when it last trained on it (when the run
    # skips images: TrainConfig.hardest_images)
    last_loss: torch.Tensor | None = None
    last_correct: torch.Tensor | None = None

    @property
    def total_steps(self) -> int:
        return self.config.updates(len(self.x))

    def order(self, epoch: int) -> torch.Tensor:
        """The images epoch trains on, in a seeded random order: all of them, or after epoch 1 the config's share,
        drawn by their loss when last seen."""
        n = len(self.x)
        kept = self.config.hardest_images(n)
        if epoch == 1 or kept == n:
            return torch.randperm(n, generator=self.generator).to(self.x.device)
        # drawn without replacement, each image with a chance in proportion to its loss when last seen: mostly those it
        # still gets wrong, now and then one it got right (so that an image it has since forgotten comes back)
        chosen = torch.multinomial(self.last_loss.cpu() + 1e-3, kept, replacement=False, generator=self.generator)
        return chosen[torch.randperm(kept, generator=self.generator)].to(self.x.device)


def _start(config: TrainConfig, data: ImageData, device: torch.device,
           on_step: Callable[[Progress], None] | None) -> _Run:
    """A fresh Net, its optimiser and schedule, the training images on the device, and the recorders."""
    # every random draw comes from the run's own generators, never torch's global one, which other visitors' threads
    # share: the same config gives the same model whoever trains it, whenever
    model = Net(config.net, seed=config.seed).to(device, memory_format=TRAINING_LAYOUT)
    model.pool_first = config.pool_before_norm and config.net.batch_norm
    generator = torch.Generator(device="cpu").manual_seed(config.seed)
    for module in model.modules():
        if isinstance(module, SeededDropout):
            module.generator = torch.Generator(device=device).manual_seed(config.seed + 1)
    x, y = training_subset(config, data)
    x, y = x.to(device).contiguous(memory_format=TRAINING_LAYOUT), y.to(device)
    if config.optimizer == "adam":
        optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=config.learning_rate, momentum=0.9)
    run = _Run(config, model, optimizer, None, generator, x, y, History(),
               [Kernels(model), States(model), Weights(model)], on_step)
    if config.hardest_images(len(x)) < len(x):
        run.last_loss = torch.zeros(len(x), device=x.device)
        run.last_correct = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    if config.schedule == "onecycle":
        run.scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, config.learning_rate,
                                                            total_steps=run.total_steps)
    return run


def train_epoch(run: _Run, epoch: int) -> tuple[float, float]:
    """One pass over the training images (run.order) in a seeded random order; returns its mean loss and accuracy
    (on the images seen so far, when the loss blows up and the run stops). An epoch on the hardest images only returns
    them over all training images, each as the network last saw it."""
    config, model, x, y, bs = run.config, run.model, run.x, run.y, run.config.batch_size
    model.train()
    perm = run.order(epoch)
    n = len(perm)
    loss_sum, correct, seen = 0.0, 0, 0
    for i in range(0, n, bs):
        idx = perm[i:i + bs]
        xb, yb = x[idx], y[idx]
        if config.augment:  # mirror half the batch: a photo's mirror image shows the same class
            flip = (torch.rand(len(idx), generator=run.generator) < 0.5).to(x.device)
            xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
        logits = model(xb)
        right = logits.detach().argmax(1) == yb
        if run.last_loss is None:
            loss = nn.functional.cross_entropy(logits, yb)
        else:  # each image's loss, kept: the next epochs draw their images by it
            losses = nn.functional.cross_entropy(logits, yb, reduction="none")
            loss = losses.mean()
            run.last_loss[idx] = losses.detach()
            run.last_correct[idx] = right
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for recorder in run.recorders:
            recorder.step(model)
        run.optimizer.step()
        if model.pool_first:  # pooling before batch-norm needs its scales at 0 or more (nets._pool_then_norm)
            model.keep_norm_scales_positive()
        if run.scheduler:
            run.scheduler.step()
        run.step += 1
        run.images += len(idx)
        loss_value, batch_correct = loss.item(), right.sum().item()
        batch_accuracy = batch_correct / len(yb)
        run.history.step_loss.append(loss_value)
        run.history.step_accuracy.append(batch_accuracy)
        if not math.isfinite(loss_value):
            run.diverged = _divergence_message(epoch, run.step, config)
            break
        loss_sum += loss_value * len(yb)
        correct += batch_correct
        seen += len(yb)
        if run.on_step and i + bs < n:
            run.on_step(Progress(epoch, run.step, run.total_steps, loss_value, batch_accuracy))
    if n < len(x) and not run.diverged:
        return run.last_loss.mean().item(), run.last_correct.float().mean().item()
    return loss_sum / max(seen, 1), correct / max(seen, 1)


def fit(config: TrainConfig, data: ImageData, on_step: Callable[[Progress], None] | None = None,
        device: torch.device | None = None) -> TrainResult:
    """Train a fresh Net on data as config says; report every step to on_step."""
    config.validate()
    if (config.net.in_channels, config.net.image_size, config.net.num_classes) != \
            (data.channels, data.image_size, data.num_classes):
        raise ValueError(f"This network expects {config.net.in_channels}×{config.net.image_size}² images in "
                         f"{config.net.num_classes} classes, but {shown_name(data.name)} has {data.channels}×"
                         f"{data.image_size}² images in {data.num_classes} classes.")
    device = device or pick_device()
    run = _start(config, data, device, on_step)
    history, model = run.history, run.model
    x_test, y_test = data.x_test.to(device), data.y_test.to(device)
    train_seconds, start = 0.0, time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        epoch_start = time.perf_counter()
        train_loss, train_accuracy = train_epoch(run, epoch)
        train_seconds += time.perf_counter() - epoch_start
        if run.diverged:
            break
        # the test set at the end; before that its first few, enough for the curve and much cheaper when a small
        # training set runs for many epochs (60 epochs on 50 CIFAR-10 photos: 91 s → ~20 s; epoch_test_images)
        last = epoch == config.epochs
        if last:  # scored as it is shared and as it loads from a checkpoint: in the standard layout (see _finished)
            model.to(memory_format=torch.contiguous_format)
        scored = len(x_test) if last else epoch_test_images(len(run.x), len(x_test))
        test_loss, test_accuracy = evaluate(model, x_test[:scored], y_test[:scored])
        history.epoch_train_loss.append(train_loss)
        history.epoch_train_accuracy.append(train_accuracy)
        history.epoch_test_loss.append(test_loss)
        history.epoch_test_accuracy.append(test_accuracy)
        history.epoch_seconds.append(time.perf_counter() - start)
        for recorder in run.recorders:
            recorder.epoch(model, epoch, last)
        if on_step:
            on_step(Progress(epoch, run.step, run.total_steps, history.step_loss[-1], history.step_accuracy[-1],
                             True, test_accuracy))
    seconds = time.perf_counter() - start
    for recorder in run.recorders:
        recorder.write(history)
    return TrainResult(_finished(model), config, history,
                       _metrics(run, data.name, device, seconds, train_seconds), run.diverged)


def _finished(model: Net) -> Net:
    """The trained model as it is shared: on the CPU, in eval mode, without gradients or random generators, its
    weights in the standard (NCHW) layout. A model loaded from its checkpoint has them so; left channels-last from
    training, the same weights gave outputs 1e-7 apart on AVX-512 machines (oneDNN picks another kernel per layout)."""
    model.eval()
    model.pool_first = False  # as a model loaded from its checkpoint: the pages' order, whatever mode it is put in
    model.to(memory_format=torch.contiguous_format)
    model.zero_grad(set_to_none=True)  # the last step's gradients are no part of the trained model
    for module in model.modules():
        if isinstance(module, SeededDropout):
            module.generator = None  # a generator is no weight: the trained model carries none
    return model.cpu()


def _metrics(run: _Run, dataset: str, device: torch.device, seconds: float, train_seconds: float) -> dict:
    n, history = len(run.x), run.history
    images = run.images
    return {
        "dataset": dataset,
        "params": sum(parameter_counts(run.model).values()),
        "epochs": history.epochs,
        "train_images": n,
        "seconds": round(seconds, 3),
        "train_seconds": round(train_seconds, 3),
        "images_per_second": round(images / max(train_seconds, 1e-9), 1),
        # a diverged model's weights are not numbers any more: it has no accuracy
        "test_accuracy": float("nan") if run.diverged else history.epoch_test_accuracy[-1],
        "train_accuracy": float("nan") if run.diverged else history.epoch_train_accuracy[-1],
        "device": str(device),
    }


# The preset each dataset starts with.
RECOMMENDED_PRESET = {SAMPLE: "tiny", MNIST: "lenet", FASHION_MNIST: "wide", CIFAR10: "deep"}
DEFAULT_PRESET = RECOMMENDED_PRESET[SAMPLE]  # everyone's first model, on the offline sample


def preset_train_config(preset: str, data: ImageData, **overrides) -> TrainConfig:
    """The preset's architecture fitted to data, with the preset's recommended training settings."""
    from .nets import preset_config

    net = preset_config(preset, data.channels, data.image_size, data.num_classes, data.mean, data.std)
    settings = {**PRESET_TRAINING[preset], "augment": mirror_by_default(data.name), **overrides}
    return TrainConfig(net=net, dataset=data.name, **settings)

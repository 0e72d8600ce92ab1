"""CNNs built from a frozen config: conv blocks, then a dense classifier."""
from __future__ import annotations

import dataclasses
import math
from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn

ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": lambda: nn.LeakyReLU(0.1),
}


MAX_BLOCKS = 4  # conv blocks a network may have: 28×28 digits halve to 1×1 after 4 poolings (of 3×3 kernels)


def check_types(settings: dict, kind: type | tuple[type, ...]) -> None:
    """ValueError naming the first setting that is not of kind (True and False count as no number): a checkpoint or
    a link may carry anything, and a word where a number belongs would fail far from here."""
    for name, value in settings.items():
        if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
            wanted = {bool: "on or off", str: "a word", int: "a whole number", tuple: "a list of whole numbers"}.get(kind, "a number")
            raise ValueError(f"The setting {name.replace('_', ' ')} must be {wanted}, not {value!r}.")


@dataclass(frozen=True)
class ReceptiveField:
    """Which input pixels one unit of a layer sees: size and jump (stride) in pixels, centre of unit (0, 0)."""

    size: int
    jump: int
    start: float


@dataclass(frozen=True)
class BlockInfo:
    """One conv block, as timm's feature_info describes a stage: its layers' names, width, map sizes and what one
    unit sees of the input."""

    index: int  # 1-based
    conv: str
    norm: str | None  # the batch-norm layer, when the network has them
    act: str
    pool: str
    channels: int
    kernel: int
    conv_size: int  # side of the maps after the conv and activation, before pooling
    size: int  # side after pooling
    field: ReceptiveField  # of one unit of the conv, batch-norm and activation maps
    pooled_field: ReceptiveField  # of one unit after pooling

    @property
    def layers(self) -> tuple[str, ...]:
        """The block's layers in order: conv, [batch-norm], activation, pooling."""
        return tuple(name for name in (self.conv, self.norm, self.act, self.pool) if name)

    @property
    def pre_activation(self) -> str:
        """The layer whose output the activation function takes: batch-norm, or the conv without it."""
        return self.norm or self.conv

    def side(self, layer: str) -> int:
        """Side of layer's maps."""
        return self.size if layer == self.pool else self.conv_size

    def receptive_field(self, layer: str) -> ReceptiveField:
        return self.pooled_field if layer == self.pool else self.field


@dataclass(frozen=True)
class NetConfig:
    """Architecture of a small CNN; the input description comes from the dataset."""

    in_channels: int = 1
    image_size: int = 28
    num_classes: int = 10
    mean: tuple[float, ...] = (0.1307,)
    std: tuple[float, ...] = (0.3081,)
    channels: tuple[int, ...] = (8, 16, 32)  # one entry per conv block
    kernel_size: int = 3
    first_kernel_size: int = 0  # block 1's kernel, when it differs (bigger first kernels show clearer edges)
    padding: bool = True  # "same" padding keeps the map size through each conv
    batch_norm: bool = True
    activation: str = "relu"
    dropout: float = 0.0
    dense: int = 32  # width of the hidden dense layer; 0 = straight to the classifier

    def kernel(self, block: int) -> int:
        """Kernel size of conv block (1-based)."""
        return self.first_kernel_size if block == 1 and self.first_kernel_size else self.kernel_size

    def feature_sizes(self) -> list[int]:
        """Side length of the feature map after each conv block (can reach <= 0)."""
        return [block.size for block in self.feature_info()]

    def feature_info(self) -> list[BlockInfo]:
        """Every conv block's layer names, channels, map sizes and receptive fields: what pages and inspection use
        instead of building or parsing layer names."""
        blocks, side = [], self.image_size
        size, jump, start = 1, 1, 0.0  # receptive field of one input pixel
        for i, channels in enumerate(self.channels, start=1):
            k = self.kernel(i)
            pad = k // 2 if self.padding else 0
            size, start = size + (k - 1) * jump, start + ((k - 1) / 2 - pad) * jump  # conv, stride 1
            field = ReceptiveField(size, jump, start)
            size, start, jump = size + jump, start + 0.5 * jump, jump * 2  # 2×2 max-pool, stride 2
            conv_side = side if self.padding else side - k + 1
            side = conv_side // 2 if conv_side >= 1 else conv_side
            blocks.append(BlockInfo(i, f"conv{i}", f"bn{i}" if self.batch_norm else None, f"act{i}", f"pool{i}",
                                    channels, k, conv_side, side, field, ReceptiveField(size, jump, start)))
        return blocks

    def block_of(self, layer: str) -> BlockInfo:
        """The conv block a layer belongs to; ValueError for a layer outside the conv blocks."""
        for block in self.feature_info():
            if layer in block.layers:
                return block
        raise ValueError(f"{layer!r} is not a layer of this network's conv blocks.")

    def validate(self) -> None:
        """Raise ValueError, in words a student can act on, if this network cannot be built."""
        check_types({name: getattr(self, name) for name in ("in_channels", "image_size", "num_classes", "kernel_size",
                                                             "first_kernel_size", "dense")}, int)
        check_types({"channels": self.channels, "mean": self.mean, "std": self.std}, tuple)
        check_types({f"channels of block {i}": c for i, c in enumerate(self.channels, start=1)}, int)
        check_types({"dropout": self.dropout, **{f"{name} {i}": v for name in ("mean", "std")
                                                 for i, v in enumerate(getattr(self, name), start=1)}}, (int, float))
        check_types({"padding": self.padding, "batch_norm": self.batch_norm}, bool)
        check_types({"activation": self.activation}, str)
        if not 1 <= len(self.channels) <= MAX_BLOCKS:
            raise ValueError(f"Use 1 to {MAX_BLOCKS} conv blocks (got {len(self.channels)}).")
        if any(c < 1 for c in self.channels):
            raise ValueError("Every conv block needs at least one channel.")
        for k in (self.kernel_size, self.first_kernel_size or 1):
            if k < 1 or k % 2 == 0:
                raise ValueError(f"Kernel size must be an odd number ≥ 1 (got {k}).")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"Unknown activation {self.activation!r}; choose one of {sorted(ACTIVATIONS)}.")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"Dropout must be in [0, 1) (got {self.dropout}).")
        if len(self.mean) != self.in_channels or len(self.std) != self.in_channels:
            raise ValueError("mean and std need one value per input channel.")
        size = self.image_size
        for block, _ in enumerate(self.channels, start=1):
            k = self.kernel(block)
            conv_out = size if self.padding else size - k + 1
            if conv_out < 2:
                raise ValueError(
                    f"Block {block} gets a {size}×{size} map; a {k}×{k} "
                    f"kernel{'' if self.padding else ' without padding'} then 2×2 pooling leaves less than "
                    f"1 pixel. Use fewer blocks, a smaller kernel{'' if self.padding else ', or turn padding on'}."
                )
            size = conv_out // 2

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "NetConfig":
        d = dict(d)
        for key in ("mean", "std", "channels"):
            d[key] = tuple(d[key])
        return cls(**d)


FIRST_KERNEL_INIT_SCALE = 0.1


class Normalize(nn.Module):
    """Maps [0, 1] pixels to zero mean, unit variance with the dataset's statistics."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x):
        return (x - self.mean) / self.std


class SeededDropout(nn.Dropout):
    """Dropout that draws its masks from `generator` when one is set (fit sets its own), not from torch's global
    generator: other visitors' threads draw from that one too, so a cached model would depend on who trained it."""

    generator: torch.Generator | None = None

    def forward(self, x):
        if not self.training or self.p == 0 or self.generator is None:
            return super().forward(x)
        keep = torch.empty_like(x).bernoulli_(1 - self.p, generator=self.generator)
        return x * keep / (1 - self.p)


SMALL_BATCH_NORM = 16  # fewer channels than this: batch-norm runs in NCHW (see BatchNorm2d)


class BatchNorm2d(nn.BatchNorm2d):
    """nn.BatchNorm2d that runs a channels-last map of few channels in NCHW on the CPU.

    Training runs channels-last, where the CPU's convolutions and max-pooling are fastest (pooling 8×28×28 maps:
    0.8 ms against 3.5 ms), but PyTorch's channels-last batch-norm is slow on few channels (8 channels of 28×28 at
    batch 128: 3.9 + 7.6 ms forward + backward against 1.1 + 3.4 ms). Two copies cost less (a training step of
    `tiny`: 12 ms against 17 ms in NCHW; benchmarks/train_speed.py --layouts). Same parameters and state_dict as
    nn.BatchNorm2d.
    """

    def forward(self, x):
        if x.device.type == "cpu" and x.shape[1] < SMALL_BATCH_NORM and \
                x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
            return super().forward(x.contiguous()).contiguous(memory_format=torch.channels_last)
        return super().forward(x)


def init_weights(model: nn.Module, generator: torch.Generator) -> None:
    """PyTorch's default initialisation of every conv and linear layer, drawn from generator (not the global one)."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
                if module.bias is not None:
                    bound = 1 / math.sqrt(module.weight[0].numel())  # 1/√fan_in
                    nn.init.uniform_(module.bias, -bound, bound, generator=generator)


class Net(nn.Module):
    """conv → [batch-norm] → activation → max-pool, per block; then flatten → dense → classifier.

    Every step is its own named child so inspection can run (and show) them one by one. The weights start
    from a generator seeded with `seed`: the same seed gives the same network in any thread.
    """

    def __init__(self, config: NetConfig, seed: int = 0):
        super().__init__()
        config.validate()
        self.config = config
        act = ACTIVATIONS[config.activation]
        layers: list[tuple[str, nn.Module]] = [("normalize", Normalize(config.mean, config.std))]
        c_in = config.in_channels
        blocks = config.feature_info()
        for block in blocks:
            k, c_out = block.kernel, block.channels
            layers.append((block.conv, nn.Conv2d(c_in, c_out, k, padding=k // 2 if config.padding else 0,
                                                 bias=not config.batch_norm)))
            if block.norm:
                layers.append((block.norm, BatchNorm2d(c_out)))
            layers.append((block.act, act()))
            layers.append((block.pool, nn.MaxPool2d(2)))
            c_in = c_out
        side = blocks[-1].size
        flat = c_in * side * side
        layers.append(("flatten", nn.Flatten()))
        if config.dropout:
            layers.append(("dropout", SeededDropout(config.dropout)))
        if config.dense:
            layers.append(("dense", nn.Linear(flat, config.dense)))
            layers.append(("dense_act", act()))
            flat = config.dense
        layers.append(("classifier", nn.Linear(flat, config.num_classes)))
        self.layers = nn.Sequential(OrderedDict(layers))
        init_weights(self, torch.Generator().manual_seed(seed))
        if config.batch_norm:
            # Batch-norm makes block 1's output blind to its kernels' scale, so start them small: what the
            # kernels learn then shows in them, instead of staying buried in their random start.
            with torch.no_grad():
                self.layers.conv1.weight.mul_(FIRST_KERNEL_INIT_SCALE)

        # forward's order: each block's ReLU after its pooling instead of before (see _pool_then_relu), and in
        # training with pool_first set (fit sets it from TrainConfig.pool_before_norm), its batch-norm after its
        # pooling too (see _pool_then_norm)
        layers = list(self.layers.children())
        self._steps = _pool_then_relu(layers)
        self._pooled_first = _pool_then_norm(layers)
        self.pool_first = False

    def forward(self, x):  # (N, C, H, W) in [0, 1] → (N, classes) logits
        for step in self._pooled_first if self.training and self.pool_first else self._steps:
            x = step(x)
        return x

    def keep_norm_scales_positive(self) -> None:
        """Clamp every batch-norm scale at 0 or more: after each weight update when training pools first
        (see _pool_then_norm)."""
        with torch.no_grad():
            for module in self.layers:
                if isinstance(module, nn.BatchNorm2d):
                    module.weight.clamp_(min=0)

    @property
    def feature_info(self) -> list[BlockInfo]:
        """Each conv block's layer names, channels, sizes and receptive fields (NetConfig.feature_info)."""
        return self.config.feature_info()


def _pool_then_relu(layers: list) -> list:
    """The layers in forward's order, with every ReLU that a max-pool follows moved after that pool, in place.

    The same numbers, forward and backward: the largest of four ReLUs is the ReLU of the largest of the four, and the
    gradient reaches the same pixel (the largest, when it is positive; none otherwise). The ReLU then runs on a quarter
    of the values, on the pooling's own fresh output: a training step of `deep` 1.17× faster, of `wide` 1.07×, of `tiny`
    and `lenet` 1.03–1.04× (train_speed.py --reorder, sgemm 181).
    Inspection and the pages still run `layers` one by one, in their order: conv → batch-norm → ReLU → pool.
    """
    steps, i = [], 0
    while i < len(layers):
        module = layers[i]
        pool = layers[i + 1] if i + 1 < len(layers) else None
        if type(module) is nn.ReLU and isinstance(pool, nn.MaxPool2d) and not pool.return_indices:
            steps += [pool, torch.relu_]
            i += 2
        else:
            steps.append(module)
            i += 1
    return steps


def _pool_then_norm(layers: list[nn.Module]) -> list:
    """The layers in the order training runs them when it pools first (Net.pool_first, TrainConfig.pool_before_norm):
    every block conv → batch-norm → activation → max-pool runs conv → max-pool → batch-norm → activation, so that
    batch-norm and the activation work on a quarter of the values (airbench's order).

    Once trained, it is the network the pages show, in their order. In evaluation batch-norm is a fixed scale and shift
    per channel; with a scale of 0 or more (training keeps it so: Net.keep_norm_scales_positive), it and each of the
    activations (all rise with their input) keep the largest of four values the largest, so pooling first or last
    gives the same numbers. What pooling first changes is training: batch-norm's batch statistics, and the running
    averages it keeps for test images, are those of the pooled maps. A training step at batch 128 is 1.2–1.3× faster
    (`tiny` 1.33×, `lenet` 1.24×, `wide` 1.22×, `deep` 1.16×; train_speed.py --pool-first, sgemm 182).
    """
    steps, i = [], 0
    while i < len(layers):
        block = layers[i:i + 4]
        if len(block) == 4 and isinstance(block[0], nn.Conv2d) and isinstance(block[1], nn.BatchNorm2d) and \
                isinstance(block[3], nn.MaxPool2d) and not block[3].return_indices:
            conv, norm, act, pool = block
            steps += [conv, pool, norm, torch.relu_ if type(act) is nn.ReLU else act]
            i += 4
        else:
            steps.append(layers[i])
            i += 1
    return _pool_then_relu(steps)  # blocks without batch-norm: ReLU after pooling, as in evaluation


def weighted_layers(model: Net) -> dict[str, nn.Module]:
    """The layers with a weight matrix or kernel (conv and linear), in order."""
    return {name: m for name, m in model.layers.named_children() if isinstance(m, (nn.Conv2d, nn.Linear))}


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """Learned parameters per named layer (layers without parameters are left out)."""
    counts = {}
    for name, module in model.layers.named_children():
        n = sum(p.numel() for p in module.parameters())
        if n:
            counts[name] = n
    return counts


PRESETS: dict[str, dict] = {
    # Three small blocks, ~15,000 parameters: trains in seconds on the 5,000-digit sample.
    "tiny": dict(channels=(8, 16, 32), kernel_size=3, batch_norm=True, activation="relu", dense=32),
    # LeCun's classic shape (6 and 16 channels, 5×5 kernels), with ReLU and batch-norm.
    "lenet": dict(channels=(6, 16), kernel_size=5, padding=False, batch_norm=True, activation="relu", dense=84),
    # Three blocks twice as wide as tiny, ~61,000 parameters: enough channels to tell a shirt from a pullover
    # (Fashion-MNIST: 91.9% in 3 epochs, where lenet gets 89.1% in 4; benchmarks/train_speed.py --recipes).
    "wide": dict(channels=(16, 32, 64), kernel_size=3, batch_norm=True, activation="relu", dense=64),
    # Four blocks for colour photos: edges → motifs → parts → objects (CIFAR-10: 79% after 1 full epoch and 5 on the
    # hardest two thirds, 50–70 s on 2 AVX-512 cores at sgemm 180, 3–4× that on AVX2). 16 first-layer channels,
    # not 24: PyTorch's channels-last batch-norm is 2.2–2.8× slower per value on 24 channels than on 16 or 32, so a
    # step took 63–76 ms with 24 against 51–57 ms with 16 (train_speed.py --first-channels, sgemm 190) for the same
    # accuracy.
    "deep": dict(channels=(16, 48, 96, 192), kernel_size=3, first_kernel_size=5, batch_norm=True, activation="relu",
                 dense=0),
}


def preset_config(name: str, in_channels: int, image_size: int, num_classes: int,
                  mean: tuple[float, ...], std: tuple[float, ...]) -> NetConfig:
    """The named preset architecture, fitted to a dataset's input shape."""
    if name not in PRESETS:
        raise ValueError(f"Unknown preset {name!r}; choose one of {sorted(PRESETS)}.")
    return NetConfig(in_channels=in_channels, image_size=image_size, num_classes=num_classes,
                     mean=tuple(mean), std=tuple(std), **PRESETS[name])

"""Networks from configs: shapes, validation in words, parameter counts, presets."""
from __future__ import annotations

import copy
import dataclasses
import json

import pytest
import torch

from layerlens.nets import ACTIVATIONS, PRESETS, BatchNorm2d, Net, NetConfig, parameter_counts, preset_config


def grey(**kw) -> NetConfig:
    return NetConfig(**{"in_channels": 1, "image_size": 28, "num_classes": 10, **kw})


def colour(**kw) -> NetConfig:
    return NetConfig(**{"in_channels": 3, "image_size": 32, "num_classes": 10, "mean": (0.5, 0.5, 0.5),
                        "std": (0.25, 0.25, 0.25), **kw})


@pytest.mark.parametrize("config", [
    grey(),
    grey(channels=(8,)),
    grey(channels=(4, 8, 16, 32), dense=0),
    grey(channels=(6, 16), kernel_size=5, padding=False, batch_norm=False, dense=84),
    grey(image_size=12, num_classes=3, channels=(4, 8), kernel_size=1, dropout=0.5),
    colour(channels=(8, 16)),
    colour(channels=(8, 16, 32, 64), kernel_size=5, dropout=0.25, num_classes=4),
    colour(channels=(4,), kernel_size=7, padding=False, dense=0),
], ids=lambda c: f"{c.in_channels}x{c.image_size}-{len(c.channels)}blocks-k{c.kernel_size}")
def test_output_is_one_logit_per_class(config):
    model = Net(config).eval()
    x = torch.rand(5, config.in_channels, config.image_size, config.image_size)
    out = model(x)
    assert out.shape == (5, config.num_classes)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_every_activation_builds_and_is_used(activation):
    model = Net(grey(channels=(4, 8), activation=activation))
    out = model(torch.rand(2, 1, 28, 28))
    assert out.shape == (2, 10)
    expected = type(ACTIVATIONS[activation]())
    assert isinstance(model.layers.act1, expected) and isinstance(model.layers.dense_act, expected)


def test_layers_are_named_steps_in_order():
    model = Net(grey(channels=(4, 8), dropout=0.2))
    assert [name for name, _ in model.layers.named_children()] == [
        "normalize", "conv1", "bn1", "act1", "pool1", "conv2", "bn2", "act2", "pool2",
        "flatten", "dropout", "dense", "dense_act", "classifier"]
    no_extras = Net(grey(channels=(4,), batch_norm=False, dense=0))
    assert [name for name, _ in no_extras.layers.named_children()] == [
        "normalize", "conv1", "act1", "pool1", "flatten", "classifier"]


def _forward_names(model: Net, steps: str = "_steps") -> list[str]:
    """The names of the modules Net.forward runs (or, with steps="_pooled_first", when it trains pooling first)."""
    names = {id(m): n for n, m in model.layers.named_children()}
    return [names[id(s)] for s in getattr(model, steps) if isinstance(s, torch.nn.Module)]


def _through(steps, x):
    for step in steps:
        x = step(x)
    return x


@pytest.mark.parametrize("config", [
    grey(channels=(8, 16, 32)),
    grey(channels=(6, 16), kernel_size=5, padding=False, batch_norm=False, dense=84),  # odd maps: 7×7 → 3×3
    colour(channels=(16, 48, 96, 192), first_kernel_size=5, dense=0),
    grey(channels=(4, 8), activation="tanh"),
], ids=lambda c: f"{len(c.channels)}blocks-{c.activation}-bn{c.batch_norm}")
def test_forward_gives_the_numbers_and_gradients_of_the_layers_in_their_order(config):
    # forward runs each ReLU after its pooling (nets._pool_then_relu); the pages run the layers in their own order.
    # (Training with pool_first set, below, also pools before batch-norm.)
    for mode in ("eval", "train"):
        model = getattr(Net(config, seed=3), mode)()
        x = torch.rand(16, config.in_channels, config.image_size, config.image_size).contiguous(
            memory_format=torch.channels_last)
        fast, plain = model(x), model.layers(x)
        assert torch.equal(fast, plain)
        grads = []
        for out in (fast, plain):
            model.zero_grad()
            torch.nn.functional.cross_entropy(out, torch.arange(16) % 10).backward(retain_graph=True)
            grads.append([p.grad.clone() for p in model.parameters()])
        for a, b in zip(*grads):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    copied = copy.deepcopy(model)  # what the Learning page and the exports work on: its own layers, not the original's
    for steps in ("_steps", "_pooled_first"):
        assert [id(s) for s in getattr(copied, steps) if isinstance(s, torch.nn.Module)] == \
            [id(copied.layers.get_submodule(n)) for n in _forward_names(model, steps)]
    reordered = [getattr(step, "__name__", type(step).__name__) for step in model._steps]
    if config.activation == "relu":
        assert "ReLU" not in reordered[:-3] and reordered.count("relu_") == len(config.channels)
    else:
        assert "relu_" not in reordered


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_training_pools_before_batch_norm_and_the_trained_network_is_the_one_the_pages_show(activation):
    config = grey(channels=(8, 16, 32), activation=activation)
    model = Net(config, seed=3).train()
    model.pool_first = True  # as fit sets it from TrainConfig.pool_before_norm
    by_hand = copy.deepcopy(model)  # the same weights and batch-norm running averages
    x = torch.rand(32, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    # training: conv → pool → batch-norm → activation, so batch-norm normalises the pooled maps
    h = by_hand.layers.normalize(x)
    for block in config.feature_info():
        layer = by_hand.layers.get_submodule
        h = layer(block.act)(layer(block.norm)(layer(block.pool)(layer(block.conv)(h))))
    h = by_hand.layers.classifier(by_hand.layers.dense_act(by_hand.layers.dense(h.flatten(1))))
    assert torch.equal(model(x), h)
    assert torch.equal(model.layers.bn1.running_mean, by_hand.layers.bn1.running_mean)
    assert not torch.equal(model(x), model.layers(x))  # the layers in their order would normalise the unpooled maps
    model.pool_first = False
    assert torch.equal(model(x), model.layers(x))  # training as before
    model.pool_first = True
    # training keeps every batch-norm scale at 0 or more, here pushed below it on purpose
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(5):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), torch.arange(32) % 10).backward()
        optimizer.step()
        if step == 4:
            with torch.no_grad():
                model.layers.bn2.weight[:4] = -1.0
        model.keep_norm_scales_positive()
    scales = torch.cat([m.weight for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)])
    assert (scales >= 0).all() and (model.layers.bn2.weight[:4] == 0).all()
    # so once trained, pooling first or last gives the same numbers: the network the pages show, layer by layer
    model.eval()
    x = torch.randn(64, 1, 28, 28)
    with torch.no_grad():
        pooled_first, in_order = _through(model._pooled_first, x), model.layers(x)
    if activation == "relu":
        assert torch.equal(pooled_first, in_order)
    else:  # the same up to the last bit of a vectorised tanh or sigmoid
        torch.testing.assert_close(pooled_first, in_order, rtol=1e-6, atol=1e-6)
    # a negative scale would turn each block's max-pooling into a min-pooling: that is what the clamp prevents
    with torch.no_grad():
        model.layers.bn1.weight[0] = -1.0
        assert not torch.allclose(_through(model._pooled_first, x), model.layers(x))


def test_normalize_uses_the_dataset_statistics():
    model = Net(grey(mean=(0.25,), std=(0.5,)))
    x = torch.full((1, 1, 28, 28), 0.75)
    assert torch.allclose(model.layers.normalize(x), torch.ones_like(x))


def test_impossible_network_is_refused_with_a_fix():
    config = grey(image_size=12, channels=(4, 8, 16, 32), kernel_size=7, padding=False)
    # 12 → conv 7 without padding → 6 → pool → 3: block 2 gets a 3×3 map, smaller than its kernel
    fix = "Use fewer blocks, a smaller kernel, or turn padding on"
    with pytest.raises(ValueError, match=rf"Block 2 gets a 3×3 map.*{fix}"):
        config.validate()
    with pytest.raises(ValueError, match="fewer blocks"):
        Net(config)


def test_the_refusal_names_the_block_that_runs_out_of_pixels():
    # 28 → conv 7 without padding → 22 → pool → 11 → 5 → 2: block 3 gets 2×2, a 7×7 kernel cannot fit
    with pytest.raises(ValueError, match="Block 3 gets a 2×2 map"):
        grey(channels=(4, 8, 16, 32), kernel_size=7, padding=False).validate()
    grey(channels=(4, 8), kernel_size=7, padding=False).validate()  # two blocks fit


def test_too_many_blocks_for_a_small_image_with_padding_is_refused():
    # 12 → 6 → 3 → 1: a fourth block would get a 1×1 map
    with pytest.raises(ValueError, match="Block 4 gets a 1×1 map"):
        grey(image_size=12, channels=(4, 4, 4, 4)).validate()
    grey(image_size=12, channels=(4, 4, 4)).validate()


@pytest.mark.parametrize("changes, message", [
    (dict(channels=()), "1 to 4 conv blocks"),
    (dict(channels=(8, 8, 8, 8, 8)), "1 to 4 conv blocks"),
    (dict(channels=(8, 0)), "at least one channel"),
    (dict(kernel_size=4), "odd number"),
    (dict(kernel_size=0), "odd number"),
    (dict(activation="swish"), "Unknown activation 'swish'"),
    (dict(dropout=1.0), "Dropout"),
    (dict(dropout=-0.1), "Dropout"),
    (dict(in_channels=3), "one value per input channel"),
])
def test_bad_settings_are_refused(changes, message):
    config = grey(**changes)
    with pytest.raises(ValueError, match=message):
        config.validate()
    with pytest.raises(ValueError, match=message):
        Net(config)


@pytest.mark.parametrize("config, sizes", [
    (grey(channels=(8, 16, 32)), [14, 7, 3]),
    (grey(channels=(6, 16), kernel_size=5, padding=False), [12, 4]),
    (grey(channels=(4, 4, 4), kernel_size=3, padding=False), [13, 5, 1]),
    (colour(channels=(8, 16, 32, 64)), [16, 8, 4, 2]),
])
def test_feature_sizes(config, sizes):
    assert config.feature_sizes() == sizes


def test_feature_sizes_show_when_the_map_vanishes():
    sizes = grey(image_size=12, channels=(4, 4), kernel_size=7, padding=False).feature_sizes()
    assert sizes[0] == 3 and sizes[1] <= 0


@pytest.mark.parametrize("config", [grey(channels=(6, 16), kernel_size=5, padding=False),
                                    colour(channels=(4, 8, 16, 32), kernel_size=3),
                                    grey(image_size=12, channels=(4, 8), kernel_size=3, padding=False)])
def test_feature_sizes_match_the_real_network(config):
    model = Net(config).eval()
    x = torch.rand(1, config.in_channels, config.image_size, config.image_size)
    seen = []
    for name, layer in model.layers.named_children():
        x = layer(x)
        if name.startswith("pool"):
            assert x.shape[-1] == x.shape[-2]
            seen.append(x.shape[-1])
    assert seen == config.feature_sizes()


def test_parameter_counts_by_hand():
    # 12×12 grey → conv 4 (3×3) → pool 6×6 → conv 8 (3×3) → pool 3×3 → 72 → dense 16 → 3 classes
    config = grey(image_size=12, num_classes=3, channels=(4, 8), kernel_size=3, dense=16)
    with_bn = parameter_counts(Net(config))
    assert with_bn == {
        "conv1": 4 * 1 * 3 * 3,  # batch-norm supplies the shift, so the conv has no bias
        "bn1": 2 * 4,  # a scale and a shift per channel
        "conv2": 8 * 4 * 3 * 3,
        "bn2": 2 * 8,
        "dense": 72 * 16 + 16,
        "classifier": 16 * 3 + 3,
    }
    without_bn = parameter_counts(Net(dataclasses.replace(config, batch_norm=False)))
    assert without_bn == {"conv1": 36 + 4, "conv2": 288 + 8, "dense": 72 * 16 + 16, "classifier": 16 * 3 + 3}


@pytest.mark.parametrize("config", [grey(), colour(channels=(8, 16, 32, 64), dropout=0.3), grey(dense=0)])
def test_parameter_counts_cover_every_parameter(config):
    model = Net(config)
    assert sum(parameter_counts(model).values()) == sum(p.numel() for p in model.parameters())
    assert all(n > 0 for n in parameter_counts(model).values())


def test_config_round_trips_through_a_dict_and_json():
    config = colour(channels=(8, 16, 32), kernel_size=5, padding=False, batch_norm=False, activation="tanh",
                    dropout=0.2, dense=64)
    assert NetConfig.from_dict(config.to_dict()) == config
    assert NetConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config  # lists back to tuples


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("shape", [(1, 28, 10, (0.1307,), (0.3081,)),
                                   (3, 32, 10, (0.49, 0.48, 0.45), (0.25, 0.24, 0.26))], ids=["mnist", "cifar"])
def test_presets_fit_mnist_and_cifar_shapes(preset, shape):
    in_channels, size, classes, mean, std = shape
    config = preset_config(preset, in_channels, size, classes, mean, std)
    config.validate()
    assert (config.in_channels, config.image_size, config.num_classes) == (in_channels, size, classes)
    assert config.channels == PRESETS[preset]["channels"] and config.mean == mean
    model = Net(config).eval()
    assert model(torch.rand(2, in_channels, size, size)).shape == (2, classes)


def test_unknown_preset_is_refused():
    with pytest.raises(ValueError, match="Unknown preset 'huge'"):
        preset_config("huge", 1, 28, 10, (0.5,), (0.5,))


def test_a_bigger_first_kernel_only_changes_block_one():
    config = NetConfig(in_channels=3, image_size=32, num_classes=10, mean=(0.5,) * 3, std=(0.2,) * 3,
                       channels=(4, 8), kernel_size=3, first_kernel_size=5)
    model = Net(config)
    assert model.layers.conv1.kernel_size == (5, 5) and model.layers.conv2.kernel_size == (3, 3)
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    assert config.kernel(1) == 5 and config.kernel(2) == 3
    with pytest.raises(ValueError, match="odd"):
        NetConfig(first_kernel_size=4).validate()


def test_weighted_layers_are_the_convs_and_linears_in_order():
    from layerlens.nets import Net, preset_config, weighted_layers

    tiny = Net(preset_config("tiny", 1, 28, 10, (0.1,), (0.3,)))
    assert list(weighted_layers(tiny)) == ["conv1", "conv2", "conv3", "dense", "classifier"]
    deep = Net(preset_config("deep", 3, 32, 10, (0.5,) * 3, (0.25,) * 3))
    assert list(weighted_layers(deep)) == ["conv1", "conv2", "conv3", "conv4", "classifier"]  # no dense layer


@pytest.mark.parametrize("channels", [3, 8, 24])
def test_batch_norm_matches_torch_in_either_layout(channels):
    """nets.BatchNorm2d switches few channels to NCHW on the CPU; it must compute exactly what nn.BatchNorm2d does:
    outputs, gradients and running statistics, for channels-last and NCHW input alike."""
    torch.manual_seed(channels)
    x = torch.randn(16, channels, 10, 10) * 3 + 1
    grad = torch.randn(16, channels, 10, 10)
    reference = torch.nn.BatchNorm2d(channels)
    ours = BatchNorm2d(channels)
    with torch.no_grad():
        for bn in (reference, ours):
            bn.weight.copy_(torch.linspace(0.5, 2, channels))
            bn.bias.copy_(torch.linspace(-1, 1, channels))
    for layout in (torch.channels_last, torch.contiguous_format):
        a = x.contiguous(memory_format=layout).requires_grad_()
        b = x.clone().requires_grad_()
        out = ours(a)
        assert out.is_contiguous(memory_format=layout)  # the next layer gets the layout it was given
        expected = reference(b)
        torch.testing.assert_close(out, expected)
        got = torch.autograd.grad(out, (a, ours.weight, ours.bias), grad.contiguous(memory_format=layout))
        want = torch.autograd.grad(expected, (b, reference.weight, reference.bias), grad)
        for g, w in zip(got, want):  # sums over 1,600 numbers in another order: equal to float precision
            torch.testing.assert_close(g, w, atol=1e-4, rtol=1e-4)
    assert ours.state_dict().keys() == reference.state_dict().keys()
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(ours.state_dict()[key], value)
    ours.eval(), reference.eval()
    torch.testing.assert_close(ours(x.contiguous(memory_format=torch.channels_last)), reference(x))


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_feature_info_names_every_block_layer_of_the_real_network(preset):
    config = NetConfig(**PRESETS[preset])
    model = Net(config)
    info = model.feature_info
    assert [b.index for b in info] == list(range(1, len(config.channels) + 1))
    names = [name for name, _ in model.layers.named_children()]
    assert [layer for b in info for layer in b.layers] == [n for n in names if n[:-1] in ("conv", "bn", "act", "pool")]
    x, sizes = torch.rand(2, 1, 28, 28), {}
    for name, layer in model.layers.named_children():
        x = layer(x)
        sizes[name] = (x.shape[1], x.shape[-1]) if x.ndim == 4 else None
    for b in info:
        assert sizes[b.act] == (b.channels, b.conv_size) == (b.channels, b.side(b.act))
        assert sizes[b.pool] == (b.channels, b.size) == (b.channels, b.side(b.pool))
        assert b.pre_activation == (b.norm if config.batch_norm else b.conv)
        assert config.block_of(b.pool) is not None and config.block_of(b.pool).index == b.index
    with pytest.raises(ValueError, match="not a layer"):
        config.block_of("classifier")

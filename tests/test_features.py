"""Receptive fields, top-activating patches, feature visualisation and kernel orientation."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from layerlens.features import (ReceptiveField, centre_field, channel_maxima, crop,
                                kernel_orientation, orientation_label, receptive_fields, sort_by_orientation,
                                settling_order, top_patches, visualise_channels)
from layerlens.inspection import layer_outputs
from layerlens.nets import PRESETS, Net, NetConfig
from layerlens.training import History

VERTICAL = torch.tensor([[-1.0, 0.0, 1.0]] * 3)  # responds to a dark-to-light change from left to right
HORIZONTAL = VERTICAL.T


def channel_activation(model: Net, layer: str, images: torch.Tensor, channels: list[int]) -> torch.Tensor:
    """Value of the centre unit of channels[i] on images[i] at layer (what visualise_channels maximises)."""
    out = layer_outputs(model, images)[layer]
    return out[torch.arange(len(channels)), torch.tensor(channels), out.shape[2] // 2, out.shape[3] // 2]


def net(**kw) -> NetConfig:
    return NetConfig(**{"in_channels": 1, "image_size": 28, "num_classes": 10, **kw})


@pytest.mark.parametrize("preset, expected", [
    # (size, jump, start) of act1, act2, ... worked out by hand:
    # 3×3 same-padded convs: 1+2=3; pool → 4 (jump 2, centre 0.5); +2·2=8; pool → 10 (jump 4, 1.5); +2·4=18
    ("tiny", [(3, 1, 0.0), (8, 2, 0.5), (18, 4, 1.5)]),
    # 5×5 valid convs: 5 (centre 2); pool → 6 (jump 2, 2.5); +4·2=14, centre 2.5+2·2=6.5
    ("lenet", [(5, 1, 2.0), (14, 2, 6.5)]),
    # block 1 is 5×5, the rest 3×3, all same-padded: 5; 6→10; 12→20; 24→40
    ("deep", [(5, 1, 0.0), (10, 2, 0.5), (20, 4, 1.5), (40, 8, 3.5)]),
])
def test_receptive_fields_match_hand_computation(preset, expected):
    fields = receptive_fields(net(**PRESETS[preset]))
    got = [(fields[f"act{i}"].size, fields[f"act{i}"].jump, fields[f"act{i}"].start)
           for i in range(1, len(expected) + 1)]
    assert got == expected
    assert fields["conv1"] == fields["bn1"] == fields["act1"]


@pytest.mark.parametrize("preset", ["tiny", "lenet"])
def test_a_units_gradient_stays_inside_its_receptive_field(preset):
    """Autograd as the reference: input pixels outside the window cannot change the unit."""
    torch.manual_seed(0)
    model = Net(dataclasses.replace(net(**PRESETS[preset]), batch_norm=False)).eval()
    fields = receptive_fields(model.config)
    for layer in ("conv1", "conv2"):
        image = torch.rand(1, 1, 28, 28, requires_grad=True)
        names = [n for n, _ in model.layers.named_children()]
        value = model.layers[:names.index(layer) + 1](image)
        row, col = value.shape[2] // 2, value.shape[3] // 2
        value[0, 0, row, col].backward()
        support = image.grad[0, 0].abs() > 0
        window = crop(torch.ones(1, 28, 28), fields[layer], row, col)  # ones inside the window
        f = fields[layer]
        top = round(f.start + row * f.jump - (f.size - 1) / 2)
        left = round(f.start + col * f.jump - (f.size - 1) / 2)
        inside = torch.zeros(28, 28, dtype=torch.bool)
        inside[max(top, 0):top + f.size, max(left, 0):left + f.size] = True
        assert support.any() and not (support & ~inside).any(), layer
        assert window.sum() == inside.sum()


def test_crop_fills_outside_the_image_with_zeros():
    image = torch.arange(16.0).view(1, 4, 4)
    patch = crop(image, ReceptiveField(size=3, jump=1, start=0.0), 0, 0)  # centred on the corner pixel
    assert patch.shape == (1, 3, 3)
    assert patch[0, 0].tolist() == [0, 0, 0] and patch[0, :, 0].tolist() == [0, 0, 0]
    assert patch[0, 1:, 1:].tolist() == [[0, 1], [4, 5]]


@pytest.fixture
def edge_model(tiny_data):
    """One block with hand-set filters: channel 0 detects vertical edges, channel 1 horizontal ones."""
    config = NetConfig(in_channels=1, image_size=12, num_classes=3, mean=(0.0,), std=(1.0,), channels=(2,),
                       kernel_size=3, batch_norm=False, activation="relu", dense=0)
    model = Net(config).eval()
    with torch.no_grad():
        model.layers.conv1.weight.copy_(torch.stack([VERTICAL, HORIZONTAL])[:, None])
        model.layers.conv1.bias.zero_()
    return model


def test_top_patches_rank_the_hand_set_edge_detectors_own_edges_first(edge_model, tiny_data):
    top = top_patches(edge_model, tiny_data.x_test, "act1", k=5)
    assert top.patches.shape == (2, 5, 1, 3, 3) and top.field.size == 3
    labels = tiny_data.y_test[top.image_index]  # (C, k) class of each patch's image
    assert (labels[0] == 0).all(), "vertical-edge channel must rank vertical-bar images first"
    assert (labels[1] == 1).all(), "horizontal-edge channel must rank horizontal-bar images first"
    assert (top.values[:, :-1] >= top.values[:, 1:]).all()  # strongest first
    vertical_patch = top.patches[0, 0, 0]
    assert (vertical_patch[:, 2] - vertical_patch[:, 0]).mean() > 0.5  # dark left, light right: an edge


def test_channel_maxima_agree_with_the_layer_outputs(edge_model, tiny_data):
    values, places = channel_maxima(edge_model, tiny_data.x_test, ["act1"], batch_size=7)["act1"]
    maps = layer_outputs(edge_model, tiny_data.x_test)["act1"]  # (N, C, H, W)
    assert torch.allclose(values, maps.flatten(2).max(2).values)
    n, c = 3, 1
    assert maps[n, c, places[n, c, 0], places[n, c, 1]] == values[n, c]


def test_activation_maximisation_increases_the_target_activation(tiny_result):
    channels = [0, 1, 2, 3]
    start = 0.5 + 0.05 * torch.randn(len(channels), 1, 12, 12, generator=torch.Generator().manual_seed(0))
    grown = visualise_channels(tiny_result.model, "act2", channels, steps=60, seed=0)
    assert grown.shape == start.shape and grown.min() >= 0 and grown.max() <= 1
    before = channel_activation(tiny_result.model, "bn2", start, channels)  # what it climbs: the value before
    after = channel_activation(tiny_result.model, "bn2", grown, channels)  # the ReLU, so "off" channels move too
    assert (after > before).all()
    assert (channel_activation(tiny_result.model, "act2", grown, channels)
            >= channel_activation(tiny_result.model, "act2", start, channels)).all()


def test_unknown_or_dense_layers_are_refused(tiny_result, tiny_data):
    with pytest.raises(ValueError, match="not a layer"):
        visualise_channels(tiny_result.model, "act9", [0], steps=1)
    with pytest.raises(ValueError, match="conv-block layer"):
        top_patches(tiny_result.model, tiny_data.x_test, "dense")


def test_kernel_orientation_and_labels():
    assert kernel_orientation(VERTICAL)[0] == pytest.approx(90) and orientation_label(VERTICAL) == "|"
    assert kernel_orientation(HORIZONTAL)[0] == pytest.approx(0) and orientation_label(HORIZONTAL) == "—"
    diagonal = torch.tensor([[1.0, 1, 0], [1, 0, -1], [0, -1, -1]])  # light above-left of a "/" line
    assert orientation_label(diagonal) == "╱"
    assert orientation_label(diagonal.flip(1)) == "╲"
    spot = torch.tensor([[0.0, 0, 0], [0, 1, 0], [0, 0, 0]])
    assert kernel_orientation(spot)[1] < 0.3 and orientation_label(spot) == "blob"
    colour = torch.stack([VERTICAL, VERTICAL, VERTICAL])  # (3, k, k): channels are averaged
    assert orientation_label(colour) == "|"


def test_sort_by_orientation_groups_directions_and_puts_blobs_last():
    spot = torch.zeros(3, 3)
    spot[1, 1] = 1
    kernels = torch.stack([spot, VERTICAL, HORIZONTAL, -VERTICAL])[:, None]  # (4, 1, 3, 3)
    assert sort_by_orientation(kernels) == [2, 1, 3, 0]


def test_centre_field_crops_what_the_centre_neuron_sees(tiny_result):
    fields = receptive_fields(tiny_result.model.config)
    images = torch.rand(2, 1, 12, 12)
    for layer in ("act1", "act2"):
        assert centre_field(tiny_result.model, layer, images).shape == (2, 1, fields[layer].size, fields[layer].size)
    # block 1's centre unit of a 12×12 map is (6, 6): its 3×3 window is rows and columns 5..7
    assert torch.equal(centre_field(tiny_result.model, "act1", images)[:, :, 1, 1], images[:, :, 6, 6])


def test_settling_order_ranks_conv_layers_by_mean_distance_during_training():
    history = History(distance_to_final={"conv1": [0.5, 0.1, 0.05, 0.0], "conv2": [0.5, 0.3, 0.1, 0.0],
                                         "dense": [0.5, 0.01, 0.0, 0.0]})
    assert settling_order(history, net(channels=(4, 8))) == [("conv1", pytest.approx(0.075)), ("conv2", pytest.approx(0.2))]

"""What matters to a prediction, on a hand-set network whose answer we know in advance."""
from __future__ import annotations

import pytest
import torch

from layerlens.attribution import knocked_out, occlusion_map, saliency_map
from layerlens.training import evaluate


def bar_image(vertical: bool, at: int = 5) -> torch.Tensor:
    image = torch.zeros(1, 12, 12)
    if vertical:
        image[0, :, at] = 1.0
    else:
        image[0, at, :] = 1.0
    return image


def test_the_hand_set_model_reads_bars(edge_model, tiny_data):
    assert edge_model(bar_image(True)[None]).argmax() == 0 and edge_model(bar_image(False)[None]).argmax() == 1
    assert edge_model(torch.zeros(1, 1, 12, 12)).argmax() == 2
    assert evaluate(edge_model, tiny_data.x_test, tiny_data.y_test)[1] > 0.9


def test_occlusion_hurts_most_where_the_bar_is(edge_model):
    image = bar_image(True, at=8)
    drops = occlusion_map(edge_model, image, target=0, patch=3, fill=torch.zeros(1))
    assert drops.shape == (12, 12)
    by_column = drops.mean(0)
    assert int(by_column.argmax()) in (7, 8, 9)  # hiding the bar matters; hiding the empty left half does not
    assert by_column[:4].abs().max() < 1e-6


def test_saliency_is_largest_on_and_beside_the_bar(edge_model):
    saliency = saliency_map(edge_model, bar_image(True, at=3), target=0)
    assert saliency.shape == (12, 12)
    assert int(saliency.mean(0).argmax()) in (2, 3, 4) and saliency[:, 8:].max() == 0


@torch.no_grad()
def test_knocking_out_the_vertical_detector_hurts_vertical_bars_only(edge_model, tiny_data):
    vertical = bar_image(True)[None]
    base = edge_model(vertical).softmax(1)[0, 0]
    without_vertical_model = knocked_out(edge_model, "act1", [0])
    without_vertical = without_vertical_model(vertical).softmax(1)[0, 0]
    accuracy_without_vertical = evaluate(without_vertical_model, tiny_data.x_test, tiny_data.y_test)[1]
    without_horizontal = knocked_out(edge_model, "act1", [1])(vertical).softmax(1)[0, 0]
    assert without_vertical < 0.5 < without_horizontal
    assert float(without_horizontal) == pytest.approx(float(base), abs=0.05)
    assert accuracy_without_vertical < evaluate(edge_model, tiny_data.x_test, tiny_data.y_test)[1] - 0.2
    assert torch.equal(edge_model(vertical).softmax(1)[0, 0], base)  # the model itself is untouched
    assert not edge_model.layers.act1._forward_hooks


def test_knocking_out_an_unknown_layer_says_so(edge_model):
    with pytest.raises(ValueError, match="No layer"):
        knocked_out(edge_model, "act9", [0])

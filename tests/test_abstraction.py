"""Linear probes: which layer makes the classes separable by a straight line?"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from layerlens.abstraction import layer_features, linear_probe_accuracy, probe_curve, probe_layers


def test_a_probe_finds_the_transform_that_makes_xor_separable():
    rng = np.random.default_rng(0)
    points = rng.uniform(-1, 1, (600, 2))
    labels = (points[:, 0] * points[:, 1] > 0).astype(int)  # XOR of the signs: no straight line separates it
    features = {"input": points, "product": np.c_[points[:, 0] * points[:, 1], rng.normal(size=(600, 3))]}
    curve = probe_curve(features, labels)
    assert curve["input"] < 0.7 and curve["product"] > 0.9
    assert max(curve, key=curve.get) == "product"


def test_digits_get_more_separable_with_depth_in_a_trained_network_only():
    from layerlens.data import SAMPLE, load_dataset
    from layerlens.nets import Net
    from layerlens.training import fit, preset_train_config

    digits = load_dataset(SAMPLE)
    config = preset_train_config("tiny", digits, train_size=2000, epochs=3)
    images, labels = digits.x_test[:600], digits.y_test[:600].numpy()
    trained = probe_curve(layer_features(fit(config, digits).model, images), labels)
    torch.manual_seed(0)
    untrained = probe_curve(layer_features(Net(config.net), images), labels)
    assert list(trained) == ["input", "pool1", "pool2", "pool3", "dense_act", "classifier"]
    assert trained["classifier"] > trained["pool2"] > trained["input"] + 0.05  # deeper: more separable
    assert max(trained, key=trained.get) in ("pool3", "dense_act", "classifier")  # the last block or after it
    assert untrained["classifier"] < trained["classifier"] - 0.2  # random weights build nothing


def test_probe_layers_run_from_the_first_block_to_the_output(tiny_result):
    assert probe_layers(tiny_result.model) == ["pool1", "pool2", "dense_act", "classifier"]
    features = layer_features(tiny_result.model, torch.rand(7, 1, 12, 12), batch_size=3)
    assert {name: rows.shape[0] for name, rows in features.items()} == dict.fromkeys(features, 7)
    assert features["classifier"].shape[1] == 3


def test_a_probe_is_scored_on_rows_it_did_not_see():
    rng = np.random.default_rng(1)
    noise, labels = rng.normal(size=(400, 50)), rng.integers(0, 2, 400)  # nothing to learn
    assert linear_probe_accuracy(noise, labels) == pytest.approx(0.5, abs=0.1)  # memorising would give 1.0


def test_a_probe_fitted_in_the_span_of_its_rows_has_the_whole_probes_scores():
    """More values than images (CIFAR-10's first layers): the probe is fitted on the fitted rows' coordinates in the
    space they span; an L2-penalised model's weights lie there, so its probabilities on other rows are the same."""
    from sklearn.linear_model import LogisticRegression

    from layerlens.abstraction import in_their_span

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 400))
    labels = np.repeat(np.arange(3), 30)
    rows = (centres[labels] + rng.normal(scale=3, size=(90, 400))).astype(np.float32)
    fit, held_out = rows[::2], rows[1::2]
    seen, unseen = in_their_span(fit, held_out)
    assert seen.shape == (45, 45) and unseen.shape == (45, 45)

    def probabilities(a, b):
        probe = LogisticRegression(C=0.1, solver="newton-cg", tol=1e-10, max_iter=1000).fit(a, labels[::2])
        return probe.predict_proba(b)

    whole = probabilities(fit.astype(np.float64), held_out.astype(np.float64))
    assert np.abs(probabilities(seen.astype(np.float64), unseen.astype(np.float64)) - whole).max() < 1e-4
    assert 0.1 < whole.max(1).mean() < 0.99  # neither a trivial nor a saturated problem
    narrow = fit[:, :60]
    assert in_their_span(narrow, held_out[:, :60])[0] is narrow  # few values: left as they are


def test_a_layer_of_dead_units_is_probed_like_any_other():
    """A wide layer whose every activation is 0 (ReLUs killed by a far too high learning rate) spans nothing: its
    probe can only guess the commonest class, and says so with a number, not an error."""
    labels = np.repeat([0, 1, 2], [40, 30, 30])
    assert linear_probe_accuracy(np.zeros((100, 500), np.float32), labels) == pytest.approx(0.4)


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_maps_are_two_dimensional_and_keep_separate_classes_apart(method):
    from layerlens.abstraction import embedding_2d

    rng = np.random.default_rng(0)
    centres = rng.normal(scale=8, size=(3, 20))
    labels = np.repeat(np.arange(3), 40)
    points = embedding_2d(centres[labels] + rng.normal(size=(120, 20)), method)
    assert points.shape == (120, 2)
    means = np.stack([points[labels == c].mean(0) for c in range(3)])
    spread = max(points[labels == c].std(0).max() for c in range(3))
    gaps = [np.linalg.norm(means[a] - means[b]) for a in range(3) for b in range(a + 1, 3)]
    assert min(gaps) > 2 * spread  # three clusters stay three clusters


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_a_map_of_fewer_images_than_50_wide_features_is_drawn(method):
    """A class's own photos leave a dozen test images with a layer's hundreds of features (t-SNE's first PCA once
    asked for 50 components of 12 images and raised)."""
    from layerlens.abstraction import embedding_2d

    assert embedding_2d(np.random.default_rng(0).normal(size=(12, 300)), method).shape == (12, 2)


def test_class_separation_is_high_for_clusters_and_near_zero_for_noise():
    from layerlens.abstraction import class_separation, embedding_2d

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 50)
    clustered = np.eye(3)[labels] * 10 + rng.normal(size=(150, 3))
    assert class_separation(clustered, labels) > 0.6
    assert abs(class_separation(rng.normal(size=(150, 3)), labels)) < 0.1
    with pytest.raises(ValueError, match="Unknown map"):
        embedding_2d(clustered, "umap")

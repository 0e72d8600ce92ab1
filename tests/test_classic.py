"""Traditional models: features, fitting, learned numbers, learning curves and the white-box views."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from skimage.feature import hog

from layerlens.classic import (MODELS, ClassicConfig, classic_config, cnn_features, cnn_scores_on,
                               cnn_test_probabilities, cost_rows, curve_sizes, feature_matrix, fit_classic, hog_features,
                               learned_numbers, logistic_templates, nearest_neighbours, neighbour_images, pixel_features,
                               read_curves, tree_rules, tree_splits)
from layerlens.inspection import confusion_counts
from layerlens.training import TrainConfig, subset_indices, training_subset


def fitted(model: str, data, features: str = "hog", **settings):
    x_train = feature_matrix(features, data.x_train, hog_cell=3)
    x_test = feature_matrix(features, data.x_test, hog_cell=3)
    config = classic_config(model, features=features, hog_cell=3, **settings)
    return fit_classic(config, x_train, data.y_train.numpy(), x_test, data.y_test.numpy(), data.num_classes)


# --- features ---

def test_pixel_features_are_one_row_per_image():
    images = torch.rand(5, 3, 8, 8)
    rows = pixel_features(images)
    assert rows.shape == (5, 192) and rows.dtype == np.float32
    assert np.array_equal(rows[2], images[2].flatten().numpy())


def test_hog_features_match_scikit_image_for_grey_and_colour(tiny_data):
    grey = hog_features(tiny_data.x_train[:4], cell=3)  # 12 px: 4×4 cells, 3×3 blocks of 2×2 cells × 9 directions
    assert grey.shape == (4, 3 * 3 * 2 * 2 * 9)
    expected = hog(tiny_data.x_train[1, 0].numpy(), orientations=9, pixels_per_cell=(3, 3), cells_per_block=(2, 2))
    assert np.allclose(grey[1], expected, atol=1e-6)
    colour = hog_features(torch.rand(2, 3, 16, 16), cell=4)
    assert colour.shape == (2, 3 * 3 * 2 * 2 * 9)


@pytest.mark.parametrize("cell", [1, 7])
def test_a_hog_cell_that_does_not_fit_is_refused(tiny_data, cell):
    with pytest.raises(ValueError, match="does not fit 12×12"):
        hog_features(tiny_data.x_train[:2], cell)


def test_cnn_features_are_what_the_classifier_reads(tiny_result, tiny_data):
    rows = cnn_features(tiny_result.model, tiny_data.x_test)
    assert rows.shape == (len(tiny_data.x_test), tiny_result.config.net.dense)
    with torch.no_grad():
        logits = tiny_result.model.layers.classifier(torch.from_numpy(rows))
        assert torch.allclose(logits, tiny_result.model(tiny_data.x_test), atol=1e-5)


def test_unknown_features_and_cnn_features_without_a_cnn_are_refused(tiny_data):
    with pytest.raises(ValueError, match="Unknown features"):
        feature_matrix("sift", tiny_data.x_train)
    with pytest.raises(ValueError, match="need the trained CNN"):
        feature_matrix("cnn", tiny_data.x_train)


# --- configs ---

def test_config_fills_defaults_and_keys_on_every_setting():
    config = classic_config("knn", n_neighbors=5, features="pixels", train_size=100)
    assert config.values() == {"n_neighbors": 5}
    assert classic_config("knn").values() == {"n_neighbors": MODELS["knn"].knobs[0].default}
    assert config.key() != classic_config("knn", n_neighbors=7, features="pixels", train_size=100).key()
    assert config.key() != classic_config("knn", n_neighbors=5, features="pixels", train_size=300).key()
    assert config.key() == classic_config("knn", n_neighbors=5, features="pixels", train_size=100).key()


@pytest.mark.parametrize("config, message", [
    (ClassicConfig("perceptron"), "Unknown model"),
    (ClassicConfig("knn", (("depth", 3),)), "has no setting depth"),
    (ClassicConfig("svm", features="cnn"), "need a trained CNN"),
])
def test_impossible_configs_explain_themselves(config, message):
    with pytest.raises(ValueError, match=message):
        config.validate()


# --- fitting ---

@pytest.mark.parametrize("model", list(MODELS))
def test_every_model_learns_the_bars_and_predicts_probabilities(model, tiny_data):
    result = fitted(model, tiny_data)
    assert result.probabilities.shape == (len(tiny_data.x_test), 3)
    assert np.allclose(result.probabilities.sum(1), 1, atol=1e-5)
    assert result.test_accuracy == (result.probabilities.argmax(1) == tiny_data.y_test.numpy()).mean()
    assert result.test_accuracy >= 0.8, result.test_accuracy  # bar direction is what HOG measures
    assert result.train_images == len(tiny_data.x_train)
    assert result.fit_seconds > 0 and result.predict_seconds > 0 and result.learned_numbers > 0


def test_on_raw_pixels_a_tree_is_worse_than_on_edge_directions(tiny_data):
    assert fitted("tree", tiny_data, "pixels").test_accuracy < fitted("tree", tiny_data, "hog").test_accuracy


def test_learned_numbers_count_what_each_model_keeps(tiny_data):
    d = 144  # 12×12 pixels
    assert fitted("logistic", tiny_data, "pixels").learned_numbers == 3 * d + 3
    assert fitted("knn", tiny_data, "pixels").learned_numbers == len(tiny_data.x_train) * (d + 1)
    tree = fitted("tree", tiny_data, "pixels").estimator
    leaves = tree.get_n_leaves()
    assert learned_numbers(tree) == 2 * (tree.tree_.node_count - leaves) + 3 * leaves
    svm = fitted("svm", tiny_data, "pixels").estimator.calibrated_.calibrated_classifiers_[0].estimator
    assert fitted("svm", tiny_data, "pixels").learned_numbers > len(svm.support_) * d
    with pytest.raises(ValueError, match="No parameter count"):
        learned_numbers(object())


def test_probabilities_cover_classes_missing_from_a_small_training_set(tiny_data):
    keep = tiny_data.y_train != 2
    x = pixel_features(tiny_data.x_train[keep])
    result = fit_classic(classic_config("knn"), x, tiny_data.y_train[keep].numpy(),
                         pixel_features(tiny_data.x_test), tiny_data.y_test.numpy(), 3)
    assert result.probabilities.shape == (len(tiny_data.x_test), 3)
    assert (result.probabilities[:, 2] == 0).all()


def test_one_class_of_training_images_is_refused(tiny_data):
    x = pixel_features(tiny_data.x_train[:5])
    with pytest.raises(ValueError, match="at least two classes"):
        fit_classic(classic_config("logistic"), x, np.zeros(5, dtype=int), x, np.zeros(5, dtype=int), 3)


def test_the_svm_calibrates_on_two_images_a_class_and_explains_a_lone_image():
    rng = np.random.default_rng(0)
    x = rng.random((7, 5)).astype(np.float32)
    result = fit_classic(classic_config("svm"), x, np.array([0, 0, 0, 1, 1, 2, 2]), x, np.zeros(7, int), 3)
    assert np.allclose(result.probabilities.sum(1), 1, atol=1e-5)
    with pytest.raises(ValueError, match="at least 2 training images of every class"):
        fit_classic(classic_config("svm"), x, np.array([0, 0, 0, 0, 1, 1, 2]), x, np.zeros(7, int), 3)


def test_k_larger_than_the_training_set_is_cut_to_fit(tiny_data):
    x = pixel_features(tiny_data.x_train[:6])
    result = fit_classic(classic_config("knn", n_neighbors=15), x, tiny_data.y_train[:6].numpy(),
                         pixel_features(tiny_data.x_test), tiny_data.y_test.numpy(), 3)
    assert result.estimator.n_neighbors == 6


# --- training subsets and learning curves ---

def test_classic_and_cnn_subsets_are_the_same_images_and_grow_by_adding(tiny_data, tiny_config):
    small, large = subset_indices(60, 10, seed=3).numpy(), subset_indices(60, 30, seed=3).numpy()
    assert np.array_equal(large[:10], small)
    cnn_x, _ = training_subset(TrainConfig(**{**tiny_config.__dict__, "train_size": 10, "seed": 3}), tiny_data)
    assert torch.equal(cnn_x, tiny_data.x_train[small])
    assert np.array_equal(subset_indices(60, 0, seed=3).numpy(), np.arange(60))


@pytest.mark.parametrize("available, sizes", [
    (60, [60]), (100, [100]), (4000, [100, 300, 1000, 3000, 4000]),
    (60000, [100, 300, 1000, 3000, 10000, 30000, 60000]), (50000, [100, 300, 1000, 3000, 10000, 30000, 50000])])
def test_curve_sizes_are_log_spaced_and_clipped_to_the_data(available, sizes):
    assert curve_sizes(available) == sizes


def test_reading_the_curves_says_what_they_show():
    wins = {"CNN": [(100, 0.88), (1000, 0.95)], "SVM": [(100, 0.75), (1000, 0.92)], "tree": [(100, 0.4), (1000, 0.7)]}
    text = read_curves(wins, "CNN")
    assert "With 100 training images the CNN gets 88.0%, ahead of the best traditional model, SVM (75.0%)" in text
    assert "does not need more data" in text and "gained 7 points" in text
    later = {"CNN": [(100, 0.5), (1000, 0.8), (10000, 0.97)], "SVM": [(100, 0.7), (1000, 0.85), (10000, 0.9)]}
    text = read_curves(later, "CNN")
    assert "behind SVM (70.0%)" in text and "beats every traditional model from 10,000 images on" in text
    mixed = {"CNN": [(100, 0.69), (1000, 0.8), (5000, 0.83)], "SVM": [(100, 0.58), (1000, 0.81), (5000, 0.86)]}
    text = read_curves(mixed, "CNN")
    assert "behind SVM (86.0%)" in text and "a traditional model is ahead at 1,000, 5,000 images" in text
    loses = {"CNN": [(100, 0.5), (1000, 0.6)], "SVM": [(100, 0.7), (1000, 0.85)]}
    assert "a traditional model beats the CNN everywhere" in read_curves(loses, "CNN")
    assert "On all 60,000 training images the CNN reaches 99.1%" in read_curves(
        {"CNN": [(100, 0.8), (1000, 0.9), (60000, 0.991)], "SVM": [(100, 0.7), (1000, 0.85)]}, "CNN")


# --- white boxes ---

def test_tree_splits_and_rules_name_the_pixel_that_decides():
    x = np.zeros((40, 1, 2, 3), dtype=np.float32)
    y = np.arange(40) % 2
    x[y == 1, 0, 1, 2] = 1.0  # class 1 is exactly the images with a bright pixel at row 1, col 2
    rows = x.reshape(40, -1)
    result = fit_classic(classic_config("tree"), rows, y, rows, y, 2)
    splits = tree_splits(result.estimator)
    assert len(splits) == 1 and splits[0]["feature"] == 5 and splits[0]["node"] == 1
    rules = tree_rules(result.estimator, (1, 2, 3), ("dark", "bright"))
    assert rules.splitlines() == ["Q1: is pixel (row 1, col 2) ≤ 0.500?", "    yes → answer: dark (100% of 20 images)",
                                  "    no  → answer: bright (100% of 20 images)"]


def test_logistic_templates_are_one_image_per_class(tiny_data):
    result = fitted("logistic", tiny_data, "pixels")
    templates = logistic_templates(result.estimator, (1, 12, 12))
    assert templates.shape == (3, 1, 12, 12)
    # the 'vertical' template weighs a vertical line up more than a horizontal one
    vertical, horizontal = templates[0, 0].std(dim=0).mean(), templates[0, 0].std(dim=1).mean()
    assert vertical != horizontal


def test_two_classes_still_give_one_template_each(tiny_data):
    keep = tiny_data.y_train < 2
    x = pixel_features(tiny_data.x_train[keep])
    result = fit_classic(classic_config("logistic"), x, tiny_data.y_train[keep].numpy(), x,
                         tiny_data.y_train[keep].numpy(), 2)
    templates = logistic_templates(result.estimator, (1, 12, 12))
    assert templates.shape == (2, 1, 12, 12) and torch.equal(templates[0], -templates[1])


def test_nearest_neighbours_finds_an_identical_training_image(tiny_data):
    result = fitted("knn", tiny_data, "pixels")
    row = pixel_features(tiny_data.x_train[7:8])[0]
    distances, positions = nearest_neighbours(result.estimator, row)
    assert positions[0] == 7 and distances[0] == pytest.approx(0, abs=1e-5)
    assert len(positions) == MODELS["knn"].knobs[0].default and (np.diff(distances) >= 0).all()


def test_neighbour_images_map_a_subset_kNN_back_to_the_whole_training_set(tiny_data):
    size = 40
    idx = subset_indices(len(tiny_data.x_train), size, seed=0)
    x = pixel_features(tiny_data.x_train[idx])
    config = classic_config("knn", features="pixels", train_size=size)
    knn = fit_classic(config, x, tiny_data.y_train[idx].numpy(), x[:5], tiny_data.y_train[idx][:5].numpy(), 3)
    distances, images = neighbour_images(knn, tiny_data.x_train[idx[3]], len(tiny_data.x_train))
    assert images[0] == idx[3] and distances[0] == pytest.approx(0, abs=1e-5)  # the image itself, by its real index


def test_cnn_scores_on_a_subset_and_the_cost_table(tiny_result, tiny_data):
    probs, seconds = cnn_test_probabilities(tiny_result.model, tiny_data.x_test)
    scored = torch.tensor([0, 5, 9])
    picked, picked_seconds, accuracy = cnn_scores_on(probs, seconds, scored, tiny_data.y_test)
    assert np.array_equal(picked, probs[[0, 5, 9]]) and picked_seconds == pytest.approx(seconds * 3 / 30)
    assert accuracy == (probs[[0, 5, 9]].argmax(1) == tiny_data.y_test[[0, 5, 9]].numpy()).mean()
    tree = fitted("tree", tiny_data)
    rows = cost_rows(tiny_result.metrics, accuracy, picked_seconds, {"hog": [tree]})
    assert [r["model"] for r in rows] == ["CNN", tree.label] and rows[1]["features"] == "HOG (hand-made)"
    assert rows[0]["learned numbers"] == tiny_result.metrics["params"] and rows[1]["test accuracy"] == tree.test_accuracy


def test_cnn_probabilities_and_confusion_counts(tiny_result, tiny_data):
    probs, seconds = cnn_test_probabilities(tiny_result.model, tiny_data.x_test)
    assert probs.shape == (30, 3) and np.allclose(probs.sum(1), 1, atol=1e-5) and seconds > 0
    counts = confusion_counts(tiny_data.y_test, torch.from_numpy(probs.argmax(1)), 3)
    assert counts.sum() == 30
    assert counts.trace() / 30 == pytest.approx(tiny_result.metrics["test_accuracy"])


@pytest.mark.parametrize("gram_max_images", [10_000, 10], ids=["numpy kernel matrix", "libsvm's own kernel"])
def test_the_kernel_svm_is_scikit_learns_calibrated_rbf_svm(tiny_data, gram_max_images):
    """KernelSVM hands libsvm a kernel matrix numpy computed (or, for many images, the rows themselves): the same
    model as CalibratedClassifierCV(SVC(gamma="scale")), to float precision."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import SVC

    from layerlens.kernel_svm import KernelSVM

    x, y = pixel_features(tiny_data.x_train), tiny_data.y_train.numpy()
    x_test = pixel_features(tiny_data.x_test)
    ours = KernelSVM(C=5.0, folds=2, gram_max_images=gram_max_images).fit(x, y)
    assert ours.precomputed_ == (len(x) <= gram_max_images)
    reference = CalibratedClassifierCV(SVC(C=5.0, gamma="scale", random_state=0), ensemble=False, cv=2).fit(x, y)
    np.testing.assert_allclose(ours.predict_proba(x_test), reference.predict_proba(x_test), atol=0.01)
    assert (ours.predict(x_test) == reference.predict(x_test)).mean() >= 0.98
    support = reference.calibrated_classifiers_[0].estimator.support_
    assert np.array_equal(ours.calibrated_.calibrated_classifiers_[0].estimator.support_, support)


def test_the_app_starts_without_scikit_learn_and_preload_brings_every_model_in():
    """The server starts without scikit-learn (1.8 s of imports) or torch._dynamo (1.7 s, imported by the first
    optimizer); the preload thread, started once the first page is drawn, imports them, and every model the
    Traditional ML page fits."""
    import os
    import subprocess
    import sys

    probe = ("import sys; import chrome, server, tasks; "
             "early = [m for m in ('sklearn', 'torch._dynamo') if m in sys.modules]; assert not early, early; "
             "server.preload_in_background().join(timeout=100); "
             "missing = [m for m in ('sklearn.linear_model', 'sklearn.tree', 'sklearn.ensemble', 'sklearn.neighbors', "
             "'sklearn.calibration', 'torch._dynamo') if m not in sys.modules]; assert not missing, missing")
    run = subprocess.run([sys.executable, "-c", probe], cwd=Path(__file__).resolve().parents[1], capture_output=True,
                         text=True, timeout=120, env={**os.environ, "LAYERLENS_WARM_UP": "0"})
    assert run.returncode == 0, run.stderr[-2000:]

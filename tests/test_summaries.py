"""The sentence under every chart: computed from the figure's own data, in numbers, on real small inputs."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.tree import DecisionTreeClassifier

from layerlens import summaries
from layerlens.classic import tree_splits
from layerlens.features import orientation_label
from layerlens.formatting import percent, time_left
from layerlens.inspection import confusion_matrix, layer_outputs, layer_table
from layerlens.training import History

CLASSES = ("vertical", "horizontal", "blank")  # conftest's tiny_data


def test_confusion_names_the_share_right_and_the_worst_mix_up():
    counts = torch.tensor([[8, 2, 0], [0, 10, 0], [1, 0, 9]])
    assert summaries.confusion_summary(counts, CLASSES) == (
        "Right on 90.0% of 30 test images; most confused: vertical read as horizontal (2 times).")
    assert summaries.confusion_summary(torch.eye(3, dtype=torch.long) * 5, CLASSES) == (
        "Right on 100.0% of 15 test images: no mistakes.")


def test_confusion_of_a_trained_model_matches_its_accuracy(tiny_result, tiny_data):
    counts = confusion_matrix(tiny_result.model, tiny_data.x_test, tiny_data.y_test, 3)
    sentence = summaries.confusion_summary(counts, tiny_data.classes)
    assert sentence.startswith(f"Right on {percent(tiny_result.metrics['test_accuracy'])} of 30 test images")


def test_confusion_grid_scores_every_model_and_adds_their_mistakes():
    a, b = torch.tensor([[5, 0, 0], [1, 4, 0], [0, 0, 5]]), torch.tensor([[3, 0, 2], [2, 3, 0], [0, 0, 5]])
    assert summaries.confusion_grid_summary([("CNN", a), ("tree", b)], CLASSES) == (
        "Right on the same 15 test images: CNN 93.3%, tree 73.3%; the most common mistake: horizontal read as "
        "vertical (3 times, all models together).")


def test_history_says_how_far_the_loss_fell_and_the_accuracy_reached(tiny_result):
    history = tiny_result.history
    sentence = summaries.history_summary(history)
    assert sentence.startswith("Loss fell from ")
    assert f"over {len(history.step_loss)} steps (6 epochs)" in sentence
    assert sentence.endswith(f"test accuracy {percent(history.epoch_test_accuracy[-1])}, train "
                             f"{percent(history.epoch_train_accuracy[-1])}.")
    diverged = History(step_loss=[2.3, 40.0, math.inf, math.nan])
    assert summaries.history_summary(diverged) == ("Loss went from 2.30 to not-a-number at step 3 of 4: training "
                                                   "diverged.")


def test_the_live_loss_says_where_it_started_where_it_is_and_how_far_the_training_is():
    falling = [2.3] * 10 + [1.0] * 80 + [0.5] * 10
    assert summaries.live_loss_summary(falling, 300) == ("Training loss so far: down from 2.30 (first steps) to 0.50 "
                                                        "(latest steps), step 100 of 300.")
    assert summaries.live_loss_summary([0.5, 0.9], 10).startswith("Training loss so far: up from 0.50")
    assert summaries.live_loss_summary([2.3, math.nan], 10) == ("Loss went from 2.30 to not-a-number at step 2: this "
                                                               "training is diverging.")
    assert summaries.live_loss_summary([], 10) == "No training steps yet."


def test_architecture_counts_layers_channels_and_weights(tiny_result):
    model = tiny_result.model
    weights = sum(p.numel() for p in model.parameters())
    assert summaries.architecture_summary(layer_table(model)) == (
        f"A 1×12×12 image → 2 conv layers (4, 8 channels) → 2 dense layers → 3 class scores; {weights:,} "
        f"learned weights, the most in dense ({model.layers.dense.weight.numel() + 16:,}).")


def test_feature_maps_name_their_range_strongest_and_silent_channels(tiny_result, tiny_data):
    maps = torch.zeros(3, 2, 2)
    maps[1, 0, 0], maps[2] = 2.0, -1.0
    assert summaries.feature_maps_summary(maps, "act9") == (
        "act9: 3 maps of 2×2, values from −1.00 to 2.00; the strongest is channel 1 (peak 2.00); 2 of 3 never rise "
        "above 0.")
    act = layer_outputs(tiny_result.model, tiny_data.x_test[:1])["act1"][0]  # (4, 12, 12)
    assert summaries.feature_maps_summary(act, "act1").startswith(f"act1: 4 maps of {act.shape[1]}×{act.shape[2]}, "
                                                                  "values from 0.00 to ")


def test_probabilities_name_the_likeliest_classes_and_leave_out_zeros():
    assert summaries.probability_summary(torch.tensor([0.1, 0.7, 0.2]), CLASSES) == (
        "Most likely horizontal (70%), then blank (20%) and vertical (10%).")
    assert summaries.probability_summary(torch.tensor([0.001, 0.989, 0.01]), CLASSES) == (
        "Most likely horizontal (99%), then blank (1%).")
    assert summaries.before_after_summary(torch.tensor([0.5, 0.3, 0.2]), torch.tensor([0.2, 0.6, 0.2]), CLASSES,
                                          1) == ("One step moves 'horizontal' from 30.0% to 60.0%; the top answer "
                                                 "goes from 'vertical' (50%) to 'horizontal' (60%).")


def test_kernels_by_edge_direction_or_strongest(edge_model):
    kernels = edge_model.layers.conv1.weight.detach()  # a vertical-bar and a horizontal-bar detector
    labels = [orientation_label(k) for k in kernels]
    assert summaries.kernels_summary(kernels, labels) == (
        "2 kernels of 3×3, values from −1.00 to 2.00; 1 vertical, 1 horizontal.")
    scaled = kernels * torch.tensor([1.0, 3.0]).view(2, 1, 1, 1)
    assert summaries.kernels_summary(scaled, what="gradients").endswith("; the strongest is number 1.")
    assert summaries.kernels_summary(kernels * 0.001, what="gradients").startswith(
        "2 gradients of 3×3, values from −0.001 to 0.002;")  # small numbers keep their digits
    assert summaries.kernels_summary(scaled, what="templates", names=["vertical", "horizontal"]).endswith(
        "the strongest is horizontal.")
    assert summaries.input_kernels_summary(scaled[:, 0], "conv2, channel 0") == (
        "conv2, channel 0: 2 kernels of 3×3, weights from −3.00 to 6.00; it weighs input map 1 most (total size "
        "36.00).")


def test_filmstrip_measures_the_way_from_random_start_to_final_kernels(tiny_result):
    kernels = tiny_result.history.kernels
    assert "at the random start" in summaries.filmstrip_summary(kernels, 0) and " 0% of" in \
        summaries.filmstrip_summary(kernels, 0)
    assert summaries.filmstrip_summary(kernels, len(kernels) - 1).startswith(
        f"The 4 first-layer kernels after epoch {len(kernels) - 1} of {len(kernels) - 1}: weights from ")
    assert "100% of the distance" in summaries.filmstrip_summary(kernels, len(kernels) - 1)


def test_per_layer_lines_and_bars(tiny_result):
    history = tiny_result.history
    settling = summaries.layer_epochs_summary(history.distance_to_final, "distance from the final weights")
    assert settling.startswith("Distance from the final weights after epoch 1 → epoch 6: conv1 ")
    assert settling.count("→ 0.00") == len(history.distance_to_final)  # every layer ends at its final form
    gradients = summaries.gradient_norm_summary(history.grad_norm)
    assert all(f"{name} " in gradients for name in ("conv1", "conv2", "dense", "classifier"))
    assert summaries.layer_values_summary({"conv1": 0.01, "conv2": 0.03, "classifier": 0.2}, "gradient size") == (
        "Gradient size per layer, input side first: conv1 0.01, conv2 0.03, classifier 0.2; the largest, "
        "classifier, is 20× the smallest (conv1).")
    assert summaries.layer_values_summary({"conv1": 0.018, "dense": 0.019}, "gradient size").endswith(
        "the largest, dense, is 1.1× the smallest (conv1).")
    assert summaries.steps_summary([2.3, 9.0, math.inf], [(1, 0.1), (3, 0.1)]) == (
        "3 steps taken: loss 2.30 → not a number from step 3; test accuracy 10.0% → 10.0%.")


def test_model_comparisons():
    rows = [{"model": "SVM", "features": "raw pixels", "accuracy": 0.95},
            {"model": "Decision tree", "features": "HOG", "accuracy": 0.78}]
    assert summaries.accuracy_summary(rows, 0.977) == (
        "Test accuracy: CNN 97.7%; best traditional model SVM on raw pixels, 95.0%; weakest Decision tree on HOG, "
        "78.0%.")
    curves = {"CNN": [(100, 0.6), (4000, 0.977)], "SVM": [(100, 0.7), (300, 0.8), (1000, 0.9)]}
    assert summaries.learning_curve_summary(curves) == (
        "Test accuracy, fewest → most training images: CNN 60.0% (100) → 97.7% (4,000); SVM 70.0% (100) → 90.0% "
        "(1,000).")


def test_abstraction_probes_maps_and_picked_images():
    curves = {"trained": {"input": 0.86, "pool1": 0.9, "classifier": 0.98},
              "random weights": {"input": 0.86, "pool1": 0.7, "classifier": 0.35}}
    assert summaries.probe_summary(curves, 0.1) == (
        "Linear-probe accuracy, input → classifier: trained 86.0% → 98.0%; random weights 86.0% → 35.0%; "
        "guessing 10.0%.")
    assert summaries.maps_summary({"input": 0.02, "pool1": 0.65, "classifier": 0.61}, 1000) == (
        "1,000 test images mapped at 3 layers; separation (silhouette) 0.02 at input → 0.61 at classifier, "
        "highest at pool1 (0.65).")
    assert summaries.maps_summary({"input": math.nan, "classifier": math.nan}, 2) == (
        "2 test images mapped at 2 layers; the separation is undefined for so few images or classes.")
    assert summaries.picked_summary(["1", "7", "1"], 2) == "3 picked test images: 2 '1', 1 '7'; 2 of them shown."


def test_traditional_models_insides(tiny_data):
    assert summaries.neighbours_summary(["7", "7", "9"], np.array([4.21, 4.5, 5.0])) == (
        "Its 3 nearest training images by distance: '7' (4.2), '7' (4.5), '9' (5.0); the vote: '7' (2 of 3).")
    x, y = tiny_data.x_train.reshape(len(tiny_data.x_train), -1).numpy(), tiny_data.y_train.numpy()
    splits = tree_splits(DecisionTreeClassifier(max_depth=3, random_state=0).fit(x, y))
    root = splits[0]
    row, col = divmod(root["feature"], 12)
    assert summaries.tree_summary(splits, (1, 12, 12)) == (
        f"The tree's first {len(splits)} questions ask about {len({s['feature'] for s in splits})} pixels; the "
        f"first, asked of all 60 training images: is pixel (row {row}, col {col}) ≤ {root['threshold']:.2f}?")
    assert summaries.tree_summary([], (1, 12, 12)).startswith("The tree asks no question")


def test_one_neurons_arithmetic():
    inputs, weights = torch.tensor([[1.0, 0.0], [2.0, 1.0]]), torch.tensor([[0.5, 3.0], [-1.5, 0.25]])
    assert summaries.arithmetic_summary(inputs, weights) == (
        "2×2 inputs × weights: the 4 products add up to −2.250; the biggest, −3.000, at row 1, column 0.")
    assert summaries.contribution_summary(torch.tensor([1.2, -0.4, 0.3]), ["map 0", "map 1", "map 2"]) == (
        "3 inputs: 2 add to the sum (most: map 0, +1.20), 1 takes away (most: map 1, −0.40); together 1.10.")
    assert summaries.activation_summary(torch.nn.ReLU(), "relu", 1.234) == "relu(1.23) = 1.23: this neuron fires."
    assert summaries.activation_summary(torch.nn.ReLU(), "relu", -0.5) == (
        "relu(−0.50) = 0.00: this neuron stays silent.")
    heat = torch.zeros(4, 5)
    heat[2, 3] = 1.0
    assert summaries.heatmap_summary(heat, "The drop") == (
        "The drop peaks at row 2, column 3 of 4×5; the top tenth of the pixels hold 100% of it.")


def test_images_vectors_and_depth(tiny_data):
    image = tiny_data.x_test[0]  # (1, 12, 12)
    bright = float((image > 0.5).float().mean())
    assert summaries.image_summary(image, "vertical") == (
        f"A 12×12 grey image labelled 'vertical'; {bright:.0%} of its pixels are brighter than mid-grey.")
    colour = torch.stack([torch.full((2, 3), v) for v in (0.25, 0.5, 1.0)])
    assert summaries.image_summary(colour) == (
        "A 2×3 colour image; mean red 0.25, green 0.50, blue 1.00 (0 dark, 1 full).")
    assert summaries.vector_summary(torch.tensor([0.0, 2.5, -1.0, 0.5]), "dense") == (
        "dense: 2 of 4 neurons above 0; the strongest, neuron 1, at 2.50.")
    assert summaries.depth_summary([(1, 3, 12), (2, 8, 1)]) == (
        "Test patches where each block's strongest channels fire hardest: block 1, 12 patches of 3×3 px; block 2, "
        "1 patch of 8×8 px.")
    assert summaries.patches_summary(2, 8, [["1"] * 3, ["7", "1", "1"]], 4, grown=False) == (
        "Channels 4–5 of block 2, each with its 3 top test patches of 8×8 px; most patches are '1' (5 of 6); all "
        "patches come from one class in 1 of 2 channels.")


@pytest.mark.parametrize("value, text", [(-0.001, "0.00"), (-1.5, "−1.50"), (2.0, "2.00")])
def test_numbers_use_a_real_minus_and_never_minus_zero(value, text):
    assert summaries._n(value) == text


def test_time_left_follows_the_pace_of_the_steps_done():
    assert time_left(4.0, 2, 6) == " · about 8 s left"  # 2 s a step, 4 steps to go
    assert time_left(150.0, 1, 2) == " · about 2 min left"
    assert time_left(1.0, 0, 6) == time_left(9.0, 6, 6) == ""  # nothing to go by yet; nothing left

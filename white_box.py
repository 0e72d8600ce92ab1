"""White box or black box: what a traditional model looks like inside, beside a CNN's first layer (a section of the
Traditional ML page)."""
from __future__ import annotations

import streamlit as st
import torch

import charts
import widgets
from layerlens import plots, summaries
from layerlens.classic import logistic_templates, neighbour_images, tree_rules, tree_splits
from layerlens.images import kernel_tiles

INSIDES = {"logistic": "Logistic regression", "tree": "Decision tree", "knn": "Nearest neighbours", "cnn": "CNN"}


def show(result, data, by_model: dict, image: torch.Tensor) -> None:
    """Pick one model and see how it decides: templates, questions, neighbours, or the CNN's filters."""
    st.subheader("White box or black box?")
    shape, classes = tuple(data.x_train.shape[1:]), data.classes  # (C, H, W)
    views = [name for key, name in INSIDES.items() if key in by_model or key == "cnn"]
    widgets.default("classic_inside", views[0], views)
    inside = st.segmented_control("Look inside", views, key="classic_inside") or views[0]  # only this one is drawn
    if inside == INSIDES["logistic"]:
        templates = logistic_templates(by_model["logistic"].estimator, shape)
        charts.chart(plots.image_grid(kernel_tiles(templates), columns=min(10, len(classes)), labels=list(classes),
                                      tile=64), "classic_templates",
                     summaries.kernels_summary(templates, what="templates (one per class)",
                                               names=[f"'{c}'" for c in classes]))
        st.caption("One weight per pixel and class, drawn as an image: " + ("red pixels count for the class, blue "
                   "against it" if shape[0] == 1 else "colours count for the class, their opposites against it")
                   + ". The score of a class is the sum of pixel × weight: the model is a set of templates you can "
                   "read.")
    elif inside == INSIDES["tree"]:
        tree = by_model["tree"].estimator
        c_map, c_rules = st.columns([2, 3])
        mean, splits = data.x_train[:1000].mean(dim=(0, 1)).numpy(), tree_splits(tree)
        charts.chart(plots.split_pixels_figure(mean, splits, shape[2]), "classic_tree_map",
                     summaries.tree_summary(splits, shape), where=c_map)
        c_rules.code(tree_rules(tree, shape, classes), language=None)
        st.caption(f"The tree's first {len(splits)} questions, marked on the average training image (hover for the "
                   f"question), and where they lead. Pixels are 0 for black and 1 for white. Every answer is a chain "
                   f"of yes/no questions about single pixels; this tree asks up to {tree.get_depth()} of them.")
    elif inside == INSIDES["knn"]:
        distances, neighbours = neighbour_images(by_model["knn"], image, len(data.x_train))
        found = [str(classes[int(data.y_train[i])]) for i in neighbours]
        labels = [f"'{name}', distance {d:.1f}" for name, d in zip(found, distances)]
        charts.chart(plots.image_grid([image] + [data.x_train[i] for i in neighbours], columns=1 + len(neighbours),
                                      tile=80, labels=["this image"] + labels), "classic_neighbours",
                     summaries.neighbours_summary(found, distances))
        st.caption("The chosen test image and its nearest training images by pixel distance; they vote. You can see "
                   "exactly why it answered as it did, but it must keep every training image to do it.")
    else:
        kernels = result.model.layers.conv1.weight.detach()
        charts.chart(plots.image_grid(kernel_tiles(kernels), columns=min(16, len(kernels)), tile=48),
                     "classic_cnn_filters", summaries.kernels_summary(kernels, what="first-layer filters"))
        st.caption(f"The CNN's first-layer filters: edge detectors you can still read. But the answer comes from "
                   f"{result.metrics['params']:,} weights in {len(result.config.net.channels)} layers that build on "
                   "each other; no single weight means anything alone, which is why a CNN is called a black box. "
                   "The Layers and Filters & features pages are ways to look inside it.")

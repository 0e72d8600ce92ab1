"""Filters & features page: what each channel has learned, from edges in block 1 to parts deeper down."""
import streamlit as st
import torch

import charts
import chrome
import server
import tasks
import widgets
from layerlens import plots, summaries
from layerlens.features import (TopPatches, centre_field, channel_maxima, orientation_label, settling_order,
                                sort_by_orientation, top_patches, visualise_channels)
from layerlens.images import kernel_tiles, stretch

chrome.inside_navigation()

PATCH_IMAGES = 10_000  # test images searched for top patches
PER_PAGE = 12  # channels shown at once
VISUALISATION_STEPS = [0, 25, 50, 100, 200]


@server.shared_result("Searching the test images for what excites each channel…")
def block_patches(result) -> dict[int, TopPatches]:
    """Every block's top 9 test patches per channel (one pass over the images, cached per model)."""
    model, images = result.model, server.dataset(result.config.dataset).x_test[:PATCH_IMAGES]
    blocks = model.feature_info
    found = channel_maxima(model, images, [b.act for b in blocks])
    return {b.index: top_patches(model, images, b.act, k=9, maxima=found[b.act]) for b in blocks}


@server.shared_result("Growing images that excite each channel…")
def visualisations(result, layer: str, channels: tuple[int, ...], steps: int) -> torch.Tensor:
    grown = visualise_channels(result.model, layer, list(channels), steps=steps)
    return centre_field(result.model, layer, grown)


def depth_summary(tops: dict[int, TopPatches]) -> None:
    st.subheader("From edges to parts, on one screen")
    summary = []
    for i, top in tops.items():
        strongest = top.values[:, 0].topk(min(4, len(top.values))).indices  # the channels that fire hardest
        summary.append((f"block {i}: {top.field.size}×{top.field.size} px",
                        [top.patches[c, j] for c in strongest for j in range(min(3, top.patches.shape[1]))]))
    shown = [(i, top.field.size, len(tiles)) for (i, top), (_, tiles) in zip(tops.items(), summary)]
    charts.chart(plots.depth_figure(summary), "features_depth", summaries.depth_summary(shown))
    st.caption("Each row is one channel, each tile a test image where it fired hardest. Block 1 sees a few pixels: "
               "edges and colour changes. Each block after it sees a larger patch and combines the last block's "
               "detectors: motifs (corners, curves), then parts of digits or objects.")


def kernels_section(model) -> list[int]:
    """The first layer's kernels sorted by direction, and one deeper channel's kernels; returns the sort order."""
    st.subheader("First-layer kernels: edge detectors")
    kernels, blocks = model.layers.conv1.weight.detach(), model.feature_info
    order = sort_by_orientation(kernels)
    labels = [orientation_label(kernels[i]) for i in order]
    charts.chart(plots.image_grid([kernel_tiles(kernels)[i] for i in order], columns=min(12, len(order)),
                                  labels=labels, tile=40), "features_kernels",
                 summaries.kernels_summary(kernels, labels))
    st.caption("Each tile is one kernel's weights: " + ("its colours are the colours it weighs up, mid-grey is 0. "
               if model.config.in_channels == 3 else "red weighs a pixel up, blue down, white is 0. ") + "The label "
               "is the edge direction it detects, or *blob* for a spot or colour detector; detectors of one direction "
               "sit together.")
    if len(blocks) < 2:
        return order
    c_block, c_channel = st.columns(2)
    block = c_block.selectbox("A deeper block", range(2, len(blocks) + 1), format_func=lambda b: f"block {b}",
                              key="features_kernel_block")
    info = blocks[block - 1]
    deeper = getattr(model.layers, info.conv).weight.detach()  # (C_out, C_in, k, k)
    channel = (c_channel.slider("Its output channel", 0, deeper.shape[0] - 1, key="features_kernel_channel")
               if deeper.shape[0] > 1 else 0)
    charts.chart(plots.feature_grid(deeper[channel], f"{info.conv}, channel {channel}: one {info.kernel}×"
                                    f"{info.kernel} kernel per input channel ({deeper.shape[1]})"),
                 "features_deeper", summaries.input_kernels_summary(deeper[channel], f"{info.conv}, channel {channel}"))
    st.caption("A deeper channel has one kernel per map of the layer before: red weighs that map up, blue down. "
               "It fires where the right earlier detectors fire together: that is how edges become motifs.")
    return order


def excites_and_wants(result, data, tops: dict[int, TopPatches]) -> None:
    """Per channel of a block: the image grown to excite it, and the test patches that excite it most (labelled
    with the class of the image each comes from)."""
    st.subheader("What excites each channel, and what it wants")
    blocks = result.model.feature_info
    c_layer, c_from, c_steps = st.columns(3)
    block = c_layer.selectbox("Block", range(1, len(blocks) + 1), format_func=lambda b: f"block {b}",
                              key="features_block")
    top = tops[block]
    count, k = top.patches.shape[:2]
    first = c_from.slider("First channel shown", 0, count - PER_PAGE, key="features_first") if count > PER_PAGE else 0
    widgets.default("features_steps", 100)
    steps = c_steps.select_slider("Feature-visualisation steps", VISUALISATION_STEPS, key="features_steps")
    channels = tuple(range(first, min(count, first + PER_PAGE)))
    wants = visualisations(result, blocks[block - 1].act, channels, steps) if steps else None
    tiles, labels, classes = [], [], []
    for c in channels:
        tiles += ([stretch(wants[c - first])] if wants is not None else []) + [top.patches[c, j] for j in range(k)]
        found = [str(data.classes[int(data.y_test[top.image_index[c, j]])]) for j in range(k)]
        labels += ([f"ch {c} wants"] if wants is not None else []) + [f"ch {c}: {found[0]}"] + found[1:]
        classes.append(found)
    charts.chart(plots.image_grid(tiles, columns=k + (wants is not None), labels=labels, tile=40), "features_patches",
                 summaries.patches_summary(block, top.field.size, classes, first, wants is not None))
    st.caption(f"Block {block} neurons see {top.field.size}×{top.field.size} pixels. Each row: "
               + ("first the patch grown from grey noise to excite that channel's centre neuron most (*what it "
                  "wants*), then " if steps else "")
               + f"the {k} test patches (out of {min(PATCH_IMAGES, len(data.x_test)):,} images) that excite it most "
               "(*what excites it*), each labelled with its image's class.")


def filmstrip(result, order: list[int]) -> None:
    st.subheader("Training filmstrip: from noise to edge detectors")
    history = result.history
    if not history.kernels:
        st.info("This model was saved before LayerLens kept its kernels after each epoch; retrain it on the Train "
                "page to see them form.")
        return
    widgets.default("features_epoch", len(history.kernels) - 1, range(len(history.kernels)))
    epoch = st.slider("Epoch (0 = the random start)", 0, len(history.kernels) - 1, key="features_epoch")
    charts.chart(plots.image_grid([kernel_tiles(history.kernels[epoch])[i] for i in order],
                                  columns=min(12, len(order)), tile=40), "features_filmstrip",
                 summaries.filmstrip_summary(history.kernels, epoch))
    settled = settling_order(history, result.config.net)
    if not settled:  # a model saved before the distances were recorded
        return
    charts.chart(plots.settling_figure(history), "features_settling",
                 summaries.layer_epochs_summary(history.distance_to_final, "distance from the final weights"))
    measured = ", ".join(f"{name} {mean:.2f}" for name, mean in settled)
    verdict = ("the earlier the layer, the sooner it settled"
               if [n for n, _ in settled] == sorted(n for n, _ in settled)
               else "here the order is not simply first to last")
    st.caption("Top: the first-layer kernels after each epoch, in the same order as above. Bottom: how far each "
               "layer's weights still are from their final form (0 = settled). Early layers usually settle first. "
               f"Measured for this model, mean distance during training: {measured}: {verdict}.")


result, data = tasks.current_model()
tops = block_patches(result)
st.title("🔎 What each channel has learned")
st.markdown("Nobody told this network what to look for. Below, for every layer, are the pieces of test images "
            "that make its channels fire hardest. Each piece is exactly the part of the image one neuron of "
            "that layer can see (its **receptive field**), so the pieces grow with depth.")
depth_summary(tops)
order = kernels_section(result.model)
excites_and_wants(result, data, tops)
filmstrip(result, order)

"""Layers page: one test image, followed through every layer to the output probabilities."""
import streamlit as st
import torch

import charts
import chrome
import tasks
import widgets
from layerlens import plots, summaries
from layerlens.inspection import layer_outputs

chrome.inside_navigation()


def depth_caption(block: int, blocks: int) -> str:
    """What students should notice at this depth."""
    if block == 1:
        return ("**Edges.** Each channel is one small filter slid over the image. It lights up where its pattern is: "
                "an edge at one orientation, a stroke's left or right side, a light-to-dark change.")
    if block < blocks or blocks == 2:
        return ("**Motifs.** These filters look at the previous layer's maps, not at pixels, so they combine edges "
                "into corners, curves and line ends. The maps are smaller: each pixel now sees a bigger patch.")
    return ("**Parts.** Each pixel here sees most of the image. Channels respond to whole strokes or parts of the "
            "object, and the maps no longer look like the picture: the representation has become abstract.")


def through_the_blocks(model, outputs, every_step: bool) -> None:
    """Each conv block's maps (every step, or just the activation), with what to notice at that depth."""
    blocks = len(model.feature_info)
    for info in model.feature_info:
        st.subheader(f"Block {info.index}")
        st.markdown(depth_caption(info.index, blocks))
        for name in [s for s in (info.layers if every_step else [info.act]) if s in outputs]:
            maps = outputs[name][0]  # (C, H, W)
            charts.chart(plots.feature_grid(maps, f"{name}: {maps.shape[0]} maps of {maps.shape[1]}×{maps.shape[2]}"),
                         f"layers_{name}", summaries.feature_maps_summary(maps, name))
        pooled = outputs[info.pool][0]
        nxt = f"block {info.index + 1}" if info.index < blocks else "the dense layers"
        st.caption(f"Pooling keeps the strongest value in each 2×2 square: these maps shrink to "
                   f"{pooled.shape[1]}×{pooled.shape[2]} and become the input of {nxt}.")


def dense_and_output(outputs, probs: torch.Tensor, classes) -> None:
    best = int(probs.argmax())
    if "dense_act" in outputs:
        st.subheader("Dense layer")
        st.markdown("**Objects.** All maps are flattened into one list of numbers, and each neuron here weighs all "
                    "of them, adds a bias and fires: a compact description of the whole image.")
        dense = outputs["dense_act"][0]
        charts.chart(plots.vector_figure(dense, f"dense: {len(dense)} neurons"), "layers_dense",
                     summaries.vector_summary(dense, "dense"))
    st.subheader("Output: the classifier")
    st.markdown(f"The last layer gives one score per class; *softmax* turns the scores into probabilities that add up "
                f"to 100%. Here: **{probs[best]:.0%} likely {classes[best]}**.")
    charts.chart(plots.probability_figure(probs, classes), "layers_probabilities",
                 summaries.probability_summary(probs, classes))


result, data = tasks.current_model()
model, classes = result.model, data.classes
st.title("🧅 Follow one image through every layer")
st.markdown("Pick a test image the network never trained on. Each layer turns its input into a stack of "
            "**feature maps**, one per channel; that stack is the next layer's input. Bright means *strongly "
            "active*. Hover over a map to see its channel and value.")
index = widgets.pick_test_image("layers", data.y_test, classes)
every_step = st.toggle("Show every step (conv, batch-norm, activation, pooling)", key="layers_every_step")
if every_step:
    st.caption("**conv**: each neuron's weighted sum plus bias (red above zero, blue below) · **bn**: the same, "
               "rescaled to a steady range · **act**: the activation; with ReLU only positive sums pass, these "
               "neurons *fire* · **pool**: the strongest value of each 2×2 square.")
image = data.x_test[index]  # (C, H, W)
outputs = layer_outputs(model, image[None])
probs = torch.softmax(outputs["classifier"], dim=1)[0]
best = int(probs.argmax())
c_in, c_say = st.columns([1, 2])
truth = classes[int(data.y_test[index])]
charts.chart(plots.image_figure(image, f"input: {'×'.join(map(str, image.shape))}"), "layers_input",
             summaries.image_summary(image, truth), where=c_in)
c_say.markdown(f"### The network says **{classes[best]}**, {probs[best]:.0%} sure\n"
               f"The true label is **{truth}**. Scroll down to see how it got there, layer "
               "by layer.")
through_the_blocks(model, outputs, every_step)
dense_and_output(outputs, probs, classes)

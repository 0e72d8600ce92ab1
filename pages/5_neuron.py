"""One neuron page: your own digit or photo, its prediction, and the arithmetic of any single neuron."""
import hashlib

import pandas as pd
import streamlit as st
import torch

import charts
import chrome
import server
import session
import tasks
import widgets
from layerlens import plots, summaries
from layerlens.attribution import knocked_out_probabilities, occlusion_map, saliency_map
from layerlens.formatting import sure
from layerlens.images import enlarged_rgb, overlay_image
from layerlens.inspection import layer_outputs, neuron_layers, neuron_sum, softmax_steps

chrome.inside_navigation()

OCCLUSION_SQUARES = [3, 4, 6, 8, 10]  # px


def prediction(image: torch.Tensor, probs: torch.Tensor, classes, dataset: str) -> None:
    st.subheader("Prediction")
    c_bars, c_others = st.columns([3, 2])
    charts.chart(plots.probability_figure(probs, classes), "neuron_probabilities",
                 summaries.probability_summary(probs, classes), where=c_bars)
    others = session.latest_classic_models(dataset)
    if not others:
        c_others.caption("Open **Traditional ML** once and its five traditional models will vote here too.")
        return
    row = image.reshape(1, -1).numpy()
    votes = [(r.label, r.estimator.predict_proba(row)[0], r.estimator.classes_) for r in others]
    c_others.markdown("**The traditional models say**  \n" + "  \n".join(
        f"{label}: **{classes[int(seen[p.argmax()])]}** ({p.max():.0%})" for label, p, seen in votes))
    c_others.caption("From the Traditional ML page, trained on raw pixels, given the same input.")


def microscope(model, image: torch.Tensor, outputs, classes, best: int) -> None:
    """Pick any neuron; show its inputs × weights, their sum with the bias, and what its activation makes of it."""
    st.subheader("One neuron under the microscope")
    net, names = model.config, neuron_layers(model.config)
    c_layer, c_channel, c_row, c_col = st.columns(4)
    layer = c_layer.selectbox("Layer", list(names), format_func=names.get, key="neuron_layer")
    block = {b.conv: b for b in net.feature_info()}.get(layer)  # None for dense and classifier
    count = outputs[layer].shape[1]
    seen = hashlib.sha1(image.numpy().tobytes()).hexdigest()  # the neuron, its row and column follow a new image
    if layer == "classifier":
        widgets.follow(f"neuron_channel_{layer}", min(best, count - 1), seen)
    else:  # start at the neuron that fires most on this image: a silent one would be a dull first look
        fired = outputs[block.act if block else "dense_act"][0]
        widgets.follow(f"neuron_channel_{layer}", int(fired.reshape(count, -1).amax(1).argmax()), seen)
    channel = c_channel.slider("Neuron (channel)" if block else "Neuron", 0, count - 1, key=f"neuron_channel_{layer}")
    row = col = 0
    if block:
        size = outputs[layer].shape[-1]
        strongest = divmod(int(outputs[block.act][0, channel].argmax()), size)
        widgets.follow(f"neuron_row_{layer}_{channel}", strongest[0], seen)
        widgets.follow(f"neuron_col_{layer}_{channel}", strongest[1], seen)
        row = c_row.slider("Row", 0, size - 1, key=f"neuron_row_{layer}_{channel}")
        col = c_col.slider("Column", 0, size - 1, key=f"neuron_col_{layer}_{channel}")
    n = neuron_sum(model, image, layer, channel, row, col, outputs)
    products = n.products
    if block:
        per_map = products.sum(dim=(1, 2))  # each input map's share of the sum
        source_map = int(per_map.abs().argmax())
        if products.shape[0] > 1:
            widgets.default(f"neuron_map_{layer}_{channel}_{row}_{col}", source_map)
            source_map = st.slider("Input map to show", 0, products.shape[0] - 1,
                                   key=f"neuron_map_{layer}_{channel}_{row}_{col}")
        charts.chart(plots.arithmetic_figure(n.inputs[source_map], n.weights[source_map]), "neuron_arithmetic",
                     summaries.arithmetic_summary(n.inputs[source_map], n.weights[source_map]))
        if products.shape[0] > 1:
            maps = [f"map {i}" for i in range(len(per_map))]
            charts.chart(plots.contribution_figure(per_map, maps, "each input map's products, summed"), "neuron_maps",
                         summaries.contribution_summary(per_map, maps))
        seen = "pixels (after standardising)" if block.index == 1 else f"maps of block {block.index - 1}"
        where = f"at row {row}, column {col} of channel {channel}: it sees a {n.inputs.shape[-1]}×" \
                f"{n.inputs.shape[-1]} patch of {products.shape[0]} input {seen}"
    else:
        top = products.abs().topk(min(20, len(products))).indices
        inputs = [f"in {int(i)}" for i in top]
        charts.chart(plots.contribution_figure(products[top], inputs,
                                               f"the {len(top)} biggest of its {len(products)} products"),
                     "neuron_products", summaries.contribution_summary(products[top], inputs))
        where = f"neuron {channel}: it sees all {len(products)} outputs of the layer before"
    activation = getattr(model.layers, block.act if block else "dense_act", None)
    st.markdown(f"**{names[layer]}, {where}.**  \n"
                f"Sum of the {products.numel()} products = **{float(products.sum()):.3f}**; plus the bias "
                f"**{n.bias:+.3f}** = **{n.total:.3f}**"
                + (f"; through {net.activation}: **{n.output:.3f}**: it "
                   f"**{'fires' if n.output > 0 else 'stays silent'}**."
                   if layer != "classifier" else f": the score (logit) of **{classes[channel]}**."))
    if n.folded:
        st.caption("This layer is followed by batch-norm, which only rescales and shifts each channel; here it is "
                   "folded into the weights and bias, exactly as the network computes when predicting.")
    if layer == "classifier":
        softmax_table(outputs["classifier"][0], classes)
    elif activation is not None:
        charts.chart(plots.activation_figure(activation, net.activation, n.total), "neuron_activation",
                     summaries.activation_summary(activation, net.activation, n.total))


def softmax_table(logits: torch.Tensor, classes) -> None:
    steps = softmax_steps(logits)
    st.dataframe(pd.DataFrame({"class": list(classes), "score (logit)": steps["logits"].numpy(),
                               "e^(score − top score)": steps["exps"].numpy(),
                               "probability": steps["probabilities"].numpy()}), hide_index=True,
                 key="neuron_softmax", column_config={"probability": st.column_config.NumberColumn(format="percent")})
    st.caption(f"Softmax: each e^score divided by their sum ({float(steps['exps'].sum()):.3f}), so the "
               f"probabilities add up to 100%. Subtracting the top score first changes nothing but keeps e^x small.")


def what_matters(model, image: torch.Tensor, grey: torch.Tensor, classes, best: int) -> None:
    st.subheader("What matters to this prediction")
    c_occ, c_sal = st.columns(2)
    widgets.default("neuron_patch", 6)
    patch = c_occ.select_slider("Grey square (px)", OCCLUSION_SQUARES, key="neuron_patch")
    drops = occlusion_map(model, image, best, patch, grey)
    c_occ.image(overlay_image(image, drops), width=260,
                caption=f"where hiding a square costs '{classes[best]}' most: up to {float(drops.max()):.2%} of "
                        "its probability")
    c_occ.caption(summaries.heatmap_summary(drops, "The drop"))
    saliency = saliency_map(model, image, best)
    c_sal.image(overlay_image(image, saliency), width=260, caption=f"pixels the '{classes[best]}' score reacts to most")
    c_sal.caption(summaries.heatmap_summary(saliency, "The gradient"))
    st.caption("Left: a grey square slides over the image and we measure how much the probability of the answer "
               "drops; red is where hiding matters. Right: the gradient, how much the score changes when one pixel "
               "changes a little." + (" The network is so sure here that no single square changes its mind much; "
                                      "the map still shows where it looks." if float(drops.max()) < 0.05 else ""))


def switch_off(result, image: torch.Tensor, probs: torch.Tensor, classes, test_images: int) -> None:
    """Switch channels of one block off and see the prediction and the test accuracy change."""
    blocks = result.model.feature_info
    c_block, c_off = st.columns([1, 3])
    block = c_block.selectbox("Switch off neurons of", range(1, len(blocks) + 1), format_func=lambda b: f"block {b}",
                              key="neuron_ko_block")
    off = c_off.multiselect("Channels switched off", range(blocks[block - 1].channels), key=f"neuron_ko_{block}")
    act, best = blocks[block - 1].act, int(probs.argmax())
    after = knocked_out_probabilities(result.model, act, off, image)
    accuracy = server.knocked_accuracy(result, act, tuple(sorted(off)))
    before = server.knocked_accuracy(result, blocks[0].act, ())  # nothing switched off: one value for every block
    c1, c2 = st.columns(2)
    c1.metric("Prediction", f"{classes[int(after.argmax())]} ({after.max():.0%})",
              f"was {classes[best]} ({probs[best]:.0%})" if off else None, delta_color="off")
    c2.metric(f"Test accuracy ({min(server.KNOCKOUT_TEST_IMAGES, test_images):,} test images)", f"{accuracy:.1%}",
              f"{(accuracy - before) * 100:+.1f} points" if off else None)
    st.caption("Switching off a few channels shows how much the network leans on them: some hardly matter, because "
               "other channels learned something similar; others hold features many later neurons build on.")


result, data = tasks.current_model()
model, classes = result.model, data.classes
st.title("🔢 Inside one neuron, one prediction")
st.markdown("Draw a digit or upload a photo and watch the network read it. Then open any single neuron: it "
            "**multiplies** what it sees by its **weights**, **adds** them up with a **bias**, and *fires* "
            "through its activation.")
c_in, c_seen = st.columns([3, 2])
with c_in:
    image = widgets.choose_image("neuron", data, model.config)
outputs = layer_outputs(model, image[None])
probs = outputs["classifier"][0].softmax(0)
best = int(probs.argmax())
c_seen.image(enlarged_rgb(image, 224), caption=f"what the network sees: {'×'.join(map(str, image.shape))}",
             width=200)
c_seen.markdown(f"### The network is {sure(probs, classes)}")
prediction(image, probs, classes, data.name)
microscope(model, image, outputs, classes, best)
what_matters(model, image, torch.tensor(data.mean), classes, best)
switch_off(result, image, probs, classes, len(data.x_test))

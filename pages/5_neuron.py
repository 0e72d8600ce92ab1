"""One neuron page: your own digit or photo, its prediction, and the arithmetic of any single neuron."""
import numpy as np
import pandas as pd
import streamlit as st
import torch
from PIL import Image
from streamlit_drawable_canvas import st_canvas

import chrome
import server
import session
import tasks
from layerlens import plots
from layerlens.attribution import knocked_out, occlusion_map, saliency_map
from layerlens.inputs import prepare_digit, prepare_photo, read_upload
from layerlens.inspection import layer_outputs, neuron_sum, softmax_steps
from layerlens.training import evaluate

KNOCKOUT_TEST_IMAGES = 2000


@server.shared_result()
def knocked_accuracy(result, layer: str, channels: tuple[int, ...]) -> float:
    """Test accuracy with the channels switched off (on up to KNOCKOUT_TEST_IMAGES test images)."""
    data = server.dataset(result.config.dataset)
    x, y = data.x_test[:KNOCKOUT_TEST_IMAGES], data.y_test[:KNOCKOUT_TEST_IMAGES]
    return evaluate(knocked_out(result.model, layer, list(channels)), x, y)[1]


def sure(probs: torch.Tensor) -> str:
    """'87% sure this is a 7', in bold."""
    best = int(probs.argmax())
    name = str(classes[best])
    article = "an" if name[0].lower() in "aeiou8" else "a"  # an 8, an airplane; a 7, a ship
    return f"**{probs[best]:.0%} sure this is {article} {name}**"


result, data = tasks.current_model()
model, net, classes = result.model, result.config.net, data.classes
digits = data.name in ("mnist-sample", "mnist")  # preprocessed like MNIST: cropped, 20×20, centred by mass
drawable = net.in_channels == 1 and net.image_size == 28

st.title("🔢 Inside one neuron, one prediction")
st.markdown("Draw a digit or upload a photo and watch the network read it. Then open any single neuron: it "
            "**multiplies** what it sees by its **weights**, **adds** them up with a **bias**, and *fires* "
            "through its activation.")

sources = (["Draw"] if drawable else []) + ["Upload a photo", "Test image"]
if st.session_state.get("neuron_source") not in sources:
    st.session_state.neuron_source = sources[0]
source = st.segmented_control("Input", sources, key="neuron_source") or sources[0]
c_in, c_seen = st.columns([3, 2])
image, fallback = None, False
with c_in:
    if source == "Draw":
        st.space("small")  # room for the canvas's own toolbar (undo, redo, clear)
        drawing = st_canvas(stroke_width=22, stroke_color="#ffffff", background_color="#000000", height=280,
                            width=280, key="neuron_canvas", return_image_data=True)
        ink = drawing.image_data if drawing is not None else None
        if ink is None or ink[..., :3].max() == 0:
            st.info("Draw a digit in the black square with your mouse or finger.")
        else:
            grey = ink[..., :3].mean(axis=2) / 255
            image = prepare_digit(grey) if digits else prepare_photo(
                Image.fromarray((grey * 255).astype(np.uint8)), 28, 1, dark_background=True)
    elif source == "Upload a photo":
        upload = st.file_uploader("A PNG or JPEG", type=["png", "jpg", "jpeg"], key="neuron_upload")
        if upload is not None:
            try:
                photo, notes = read_upload(upload.getvalue(), upload.name)
                for note in notes:
                    st.caption(note)
                st.image(photo, width=220)
                if digits:
                    image = prepare_digit(np.asarray(photo.convert("L"), dtype=np.float32) / 255)
                else:
                    image = prepare_photo(photo, net.image_size, net.in_channels, dark_background=net.in_channels == 1)
            except ValueError as err:
                st.error(str(err))
                fallback = True
        else:
            fallback = True
    if source == "Test image" or fallback:
        if fallback:
            st.caption("Meanwhile, a test image:")
        index = chrome.pick_test_image("neuron", data.y_test, classes)
        image = data.x_test[index]
if image is None:
    st.stop()

outputs = layer_outputs(model, image[None])
probs = outputs["classifier"][0].softmax(0)
best = int(probs.argmax())
c_seen.image(plots.enlarged_rgb(image, 224), caption=f"what the network sees: {'×'.join(map(str, image.shape))}",
             width=200)
c_seen.markdown(f"### The network is {sure(probs)}")

st.subheader("Prediction")
c_bars, c_others = st.columns([3, 2])
c_bars.plotly_chart(plots.probability_figure(probs, classes), key="neuron_probabilities")
others = session.classic_models(data.name)
if others:
    row = image.reshape(1, -1).numpy()
    votes = [(r.label, r.estimator.predict_proba(row)[0], r.estimator.classes_) for r in others]
    c_others.markdown("**The traditional models say**  \n" + "  \n".join(
        f"{label}: **{classes[int(seen[p.argmax()])]}** ({p.max():.0%})" for label, p, seen in votes))
    c_others.caption("From the Traditional ML page, trained on raw pixels, given the same input.")
else:
    c_others.caption("Open **Traditional ML** once and its five traditional models will vote here too.")

st.subheader("One neuron under the microscope")
conv_blocks = {b.conv: b for b in net.feature_info()}
layers = list(conv_blocks) + (["dense"] if net.dense else []) + ["classifier"]
names = {b.conv: f"block {b.index} ({b.conv})" for b in conv_blocks.values()} | {
    "dense": "dense layer", "classifier": "output layer (classifier)"}
c_layer, c_channel, c_row, c_col = st.columns(4)
layer = c_layer.selectbox("Layer", layers, format_func=names.get, key="neuron_layer")
block_info = conv_blocks.get(layer)
maps = outputs[layer][0]
count = maps.shape[0]
channel = c_channel.slider("Neuron (channel)" if block_info else "Neuron", 0, count - 1,
                           min(best, count - 1) if layer == "classifier" else 0, key=f"neuron_channel_{layer}")
row = col = 0
if block_info:
    size = maps.shape[-1]
    fires = outputs[block_info.act][0, channel]
    strongest = divmod(int(fires.argmax()), size)
    row = c_row.slider("Row", 0, size - 1, strongest[0], key=f"neuron_row_{layer}_{channel}")
    col = c_col.slider("Column", 0, size - 1, strongest[1], key=f"neuron_col_{layer}_{channel}")
n = neuron_sum(model, image, layer, channel, row, col, outputs)
products = n.products
if block_info:
    per_map = products.sum(dim=(1, 2))  # each input map's share of the sum
    source_map = int(per_map.abs().argmax())
    if products.shape[0] > 1:
        source_map = st.slider("Input map to show", 0, products.shape[0] - 1, source_map,
                               key=f"neuron_map_{layer}_{channel}_{row}_{col}")
    st.plotly_chart(plots.arithmetic_figure(n.inputs[source_map], n.weights[source_map]), key="neuron_arithmetic")
    if products.shape[0] > 1:
        st.plotly_chart(plots.contribution_figure(per_map, [f"map {i}" for i in range(len(per_map))],
                                                  "each input map's products, summed"), key="neuron_maps")
    seen = "pixels (after standardising)" if block_info.index == 1 else f"maps of block {block_info.index - 1}"
    where = f"at row {row}, column {col} of channel {channel}: it sees a {n.inputs.shape[-1]}×" \
            f"{n.inputs.shape[-1]} patch of {products.shape[0]} input {seen}"
else:
    top = products.abs().topk(min(20, len(products))).indices
    st.plotly_chart(plots.contribution_figure(products[top], [f"in {int(i)}" for i in top],
                                              f"the {len(top)} biggest of its {len(products)} products"),
                    key="neuron_products")
    where = f"neuron {channel}: it sees all {len(products)} outputs of the layer before"
activation = getattr(model.layers, block_info.act if block_info else "dense_act", None)
fired = n.output > 0
st.markdown(f"**{names[layer]}, {where}.**  \n"
            f"Sum of the {products.numel()} products = **{float(products.sum()):.3f}**; plus the bias "
            f"**{n.bias:+.3f}** = **{n.total:.3f}**"
            + (f"; through {net.activation}: **{n.output:.3f}**: it **{'fires' if fired else 'stays silent'}**."
               if layer != "classifier" else f": the score (logit) of **{classes[channel]}**."))
if n.folded:
    st.caption("This layer is followed by batch-norm, which only rescales and shifts each channel; here it is "
               "folded into the weights and bias, exactly as the network computes when predicting.")
if layer == "classifier":
    steps = softmax_steps(outputs["classifier"][0])
    st.dataframe(pd.DataFrame({"class": list(classes), "score (logit)": steps["logits"].numpy(),
                               "e^(score − top score)": steps["exps"].numpy(),
                               "probability": steps["probabilities"].numpy()}), hide_index=True,
                 key="neuron_softmax", column_config={"probability": st.column_config.NumberColumn(format="percent")})
    st.caption(f"Softmax: each e^score divided by their sum ({float(steps['exps'].sum()):.3f}), so the "
               f"probabilities add up to 100%. Subtracting the top score first changes nothing but keeps e^x small.")
elif activation is not None:
    st.plotly_chart(plots.activation_figure(activation, net.activation, n.total), key="neuron_activation")

st.subheader("What matters to this prediction")
c_occ, c_sal = st.columns(2)
patch = c_occ.select_slider("Grey square (px)", [3, 4, 6, 8, 10], value=6, key="neuron_patch")
grey = torch.tensor(data.mean)
drops = occlusion_map(model, image, best, patch, grey)
c_occ.image(plots.overlay_image(image, drops), width=260,
            caption=f"where hiding a square costs '{classes[best]}' most: up to {float(drops.max()):.2%} of "
                    "its probability")
c_sal.image(plots.overlay_image(image, saliency_map(model, image, best)), width=260,
            caption=f"pixels the '{classes[best]}' score reacts to most")
st.caption("Left: a grey square slides over the image and we measure how much the probability of the answer "
           "drops; red is where hiding matters. Right: the gradient, how much the score changes when one pixel "
           "changes a little." + (" The network is so sure here that no single square changes its mind much; "
                                  "the map still shows where it looks." if float(drops.max()) < 0.05 else ""))
c_block, c_off = st.columns([1, 3])
block = c_block.selectbox("Switch off neurons of", range(1, len(net.channels) + 1),
                          format_func=lambda b: f"block {b}", key="neuron_ko_block")
off = c_off.multiselect("Channels switched off", range(net.channels[block - 1]), key=f"neuron_ko_{block}")
act = net.feature_info()[block - 1].act
with torch.no_grad():
    after = knocked_out(model, act, off)(image[None]).softmax(1)[0]
accuracy = knocked_accuracy(result, act, tuple(sorted(off)))
before = knocked_accuracy(result, net.feature_info()[0].act, ())  # nothing switched off: one value for every block
c1, c2 = st.columns(2)
c1.metric("Prediction", f"{classes[int(after.argmax())]} ({after.max():.0%})",
          f"was {classes[best]} ({probs[best]:.0%})" if off else None, delta_color="off")
c2.metric(f"Test accuracy ({min(KNOCKOUT_TEST_IMAGES, len(data.x_test)):,} test images)", f"{accuracy:.1%}",
          f"{(accuracy - before) * 100:+.1f} points" if off else None)
st.caption("Switching off a few channels shows how much the network leans on them: some hardly matter, because "
           "other channels learned something similar; others hold features many later neurons build on.")

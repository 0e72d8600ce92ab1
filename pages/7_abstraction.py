"""Abstraction page: how separable the classes are at each layer, before, during and after training."""
import time

import numpy as np
import streamlit as st

import charts
import chrome
import server
import tasks
import widgets
from layerlens import exports, formatting, plots, summaries
from layerlens.abstraction import class_separation, embedding_2d, layer_features, probe_curve
from layerlens.training import model_at_epoch

chrome.inside_navigation()

PROBE_IMAGES = 1000  # test images: half fit each probe, half score it
MAP_IMAGES = [500, 1000, 2000]  # test images on offer for the maps
MAP_NAMES = {"pca": "PCA", "tsne": "t-SNE"}


@server.shared_result("Fitting a linear probe at every layer…")
def probes(result, epoch: int | None) -> dict[str, float]:
    """Probe accuracy per layer for the model after `epoch` (None: trained to the end; 0: its random start)."""
    data = server.dataset(result.config.dataset)
    images, labels = data.x_test[:PROBE_IMAGES], data.y_test[:PROBE_IMAGES].numpy()
    return probe_curve(layer_features(model_at_epoch(result, epoch), images), labels)


@server.shared_result(waiting="Drawing a map of every layer")
def maps(result, method: str, images: int) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Every layer's map of the first `images` test images, and how well the classes separate there. Drawn layer by
    layer under a bar that says which and about how long is left (t-SNE takes seconds a layer: CIFAR-10's six maps
    of 2,000 photos took 30 s on a 2-core AVX2 server); a visitor who finds the maps computed sees no bar."""
    data = server.dataset(result.config.dataset)
    features = layer_features(result.model, data.x_test[:images])
    labels = data.y_test[:images].numpy()
    bar, points, scores, start = st.progress(0.0), {}, {}, time.perf_counter()
    try:
        for done, (layer, rows) in enumerate(features.items()):
            pace = formatting.time_left(time.perf_counter() - start, done, len(features)) or (
                " · t-SNE takes a few seconds a layer" if method == "tsne" else "")
            bar.progress(done / len(features), text=f"Drawing the {MAP_NAMES[method]} map of {layer} ({done + 1} "
                                                    f"of {len(features)}){pace}…")
            points[layer], scores[layer] = embedding_2d(rows, method), class_separation(rows, labels)
    finally:
        bar.empty()
    return points, scores


def probe_curves(result, data) -> None:
    """Linear-probe accuracy at every layer: trained, at its random start, and after the epochs in between."""
    st.subheader("A straight line at every layer")
    states = result.history.states
    curves = {"trained": probes(result, None)}
    if 0 in states:
        curves["random weights (before training)"] = probes(result, 0)
    charts.chart(plots.probe_figure(curves, 1 / data.num_classes), "abstraction_probes",
                 summaries.probe_summary(curves, 1 / data.num_classes))
    charts.csv_button("probes", exports.probe_rows(curves), key="abstraction_btn_probes_csv")
    trained, untrained = curves["trained"], curves.get("random weights (before training)")
    layers = list(trained)
    st.markdown(f"Trained network: **{trained[layers[0]]:.0%}** of held-out test images separated by a straight "
                f"line in the pixels, **{trained[layers[-1]]:.0%}** at the output." + (
                    f" The same architecture with random weights: {untrained[layers[-1]]:.0%} at the output. Depth "
                    "alone builds nothing; training does." if untrained else ""))
    st.caption(f"Each point: a logistic regression fitted on {PROBE_IMAGES // 2:,} test images' activations at that "
               f"layer and scored on {PROBE_IMAGES // 2:,} others. *pool* layers are each block's output.")
    if len(states) > 1:
        st.subheader("Abstraction being built, epoch by epoch")
        over = {f"epoch {e}" if e else "start": probes(result, e) for e in sorted(states)}
        over[f"epoch {result.metrics['epochs']} (end)"] = trained
        charts.chart(plots.probe_figure(over, 1 / data.num_classes), "abstraction_over_training",
                     summaries.probe_summary(over, 1 / data.num_classes))
        charts.csv_button("probes-over-training", exports.probe_rows(over), key="abstraction_btn_over_csv")
        st.caption("The same probes on the network as it was after each of these epochs: the deep layers' curve "
                   "rises first and most.")
    elif not states:
        st.info("This model was trained before LayerLens kept its in-between states; retrain it on the Train page "
                "to see abstraction being built epoch by epoch.")



def layer_maps(result, data) -> None:
    """Every layer's activations as a 2-D map; a selection shows the images and where they lie in every map."""
    st.subheader("Maps of each layer")
    c_method, c_images = st.columns(2)
    method = c_method.segmented_control("Map", list(MAP_NAMES), format_func={"pca": "PCA (fast)", "tsne": "t-SNE"}.get,
                                        key="abstraction_method") or "pca"
    widgets.default("abstraction_images", 1000)
    images = c_images.select_slider("Test images", MAP_IMAGES, key="abstraction_images")
    images = min(images, len(data.x_test))
    with st.container():  # the progress bar's place, whether or not this run draws the maps: the chart keeps its own
        points, scores = maps(result, method, images)
    selection = st.session_state.get("abstraction_maps")
    picked = list(dict.fromkeys(int(p["customdata"]) for p in (selection.selection.points if selection else [])))
    figure = plots.maps_figure(points, data.y_test[:images].numpy(), data.classes, scores, picked)
    charts.chart(figure, "abstraction_maps", summaries.maps_summary(scores, images), on_select="rerun",
                 selection_mode=("points", "box", "lasso"))
    st.caption("Every dot is one test image, placed by its activations at that layer and coloured by its true class. "
               "*Separation* is the silhouette score: near 0 the classes are mixed, towards 1 they form their own "
               "clusters. Hover a dot to see which test image it is; click it, or drag a box or lasso around a group, "
               "to see the images themselves and where the same images lie in every other map.")
    chosen = picked[::max(1, -(-len(picked) // 24))]  # at most 24, spread over the whole selection
    if chosen:
        charts.chart(plots.image_grid([data.x_test[i] for i in chosen], columns=12, tile=56,
                                      labels=[f"{data.classes[int(data.y_test[i])]} (#{i})" for i in chosen]),
                     "abstraction_chosen",
                     summaries.picked_summary([str(data.classes[int(data.y_test[i])]) for i in picked], len(chosen)))


result, data = tasks.current_model()
st.title("🪜 How abstract is each layer?")
st.markdown("Early layers describe an image in terms of pixels and edges; deeper layers in terms of parts and "
            "objects. One way to *measure* that: at each layer, try to separate the classes with a straight line "
            "(a **linear probe**, a logistic regression on that layer's activations). If a straight line works, "
            "the layer has made the classes easy to tell apart.")
try:
    probe_curves(result, data)
except ValueError as err:  # a folder with too few test images to fit and score a probe
    st.info(str(err))
layer_maps(result, data)

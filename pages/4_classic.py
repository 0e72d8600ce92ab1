"""Traditional ML page: five scikit-learn models beside the CNN, on the same images, split and test set."""
from dataclasses import dataclass

import pandas as pd
import streamlit as st
import torch

import charts
import chrome
import server
import session
import tasks
import white_box
import widgets
from layerlens import exports, plots, summaries
from layerlens.data import shown_name
from layerlens.classic import (DEFAULT_TRAIN_IMAGES, FEATURES, HOG_CELL, HOG_CELLS, MODELS, cnn_scores_on, cost_rows,
                               curve_sizes, default_knobs, model_configs, read_curves, scored_test_size)
from layerlens.inspection import confusion_counts
from layerlens.training import model_key, subset_indices

chrome.inside_navigation()

SIZES = (100, 300, 1000, 2000, 3000, 5000, 10_000, 20_000, 30_000)  # training images on offer, besides "all"
COSTS_COLUMNS = {"training images": st.column_config.NumberColumn(format="localized"),
                 "test accuracy": st.column_config.NumberColumn(format="percent"),
                 "training (s)": st.column_config.NumberColumn(format="%.2f"),
                 "predicting (s)": st.column_config.NumberColumn(format="%.2f"),
                 "learned numbers": st.column_config.NumberColumn(format="localized")}


@dataclass(frozen=True)
class Choice:
    """What the sidebar asks for: training images, feature kinds besides pixels, HOG cell, each model's knobs, and
    the test images scored (0: all)."""

    size: int
    extra: list[str]
    cell: int
    knobs: dict
    test_size: int

    def configs(self, result, data, kind: str, train_size: int) -> list:
        return model_configs(data.name, len(data.x_train), train_size, self.test_size, result.config.seed, self.knobs,
                             kind, self.cell, model_key(result))


def sidebar_settings(data) -> Choice:
    """Training size, extra feature kinds, HOG cell and every model's knobs."""
    channels, available = data.channels, len(data.x_train)
    st.subheader("Traditional models")
    sizes = [s for s in SIZES if s < available] + [available]
    widgets.default("classic_size", min(DEFAULT_TRAIN_IMAGES[channels], available), sizes)  # from a bigger dataset?
    for key, value in ({"classic_hog_cell": HOG_CELL} | {f"classic_{name}_{knob}": value
                                                         for name, knobs in default_knobs().items()
                                                         for knob, value in knobs.items()}).items():
        widgets.default(key, value)
    size = st.select_slider("Training images", sizes, key="classic_size", format_func=lambda s: f"{s:,}",
                            help="How many training images the traditional models learn from (the same random "
                                 "ones for all five). Fewer is faster.")
    extra = st.pills("Also train them on", ["hog", "cnn"], format_func=FEATURES.get, selection_mode="multi",
                     key="classic_features")
    cell = st.select_slider("HOG cell (px)", HOG_CELLS, key="classic_hog_cell") if "hog" in extra else HOG_CELL
    settings = {}
    for name, spec in MODELS.items():
        with st.expander(spec.label):
            settings[name] = {k.name: st.select_slider(k.label, k.options, help=k.help,
                                                       key=f"classic_{name}_{k.name}") for k in spec.knobs}
    return Choice(size, extra, cell, settings, scored_test_size(channels, len(data.x_test)))


def costs(result, data, fitted: dict, cnn_accuracy: float, cnn_seconds: float, scored_count: int,
          test_size: int) -> None:
    st.subheader("Who gets the test images right, and at what cost")
    kinds, m, available = list(fitted), result.metrics, len(data.x_train)
    bars = [{"model": r.label, "features": FEATURES[k], "accuracy": r.test_accuracy} for k in kinds for r in fitted[k]]
    charts.chart(plots.accuracy_figure(bars, cnn_accuracy), "classic_accuracy",
                 summaries.accuracy_summary(bars, cnn_accuracy))
    table = cost_rows(m, cnn_accuracy, cnn_seconds, fitted)
    st.dataframe(pd.DataFrame(table), hide_index=True, height=35 * (len(table) + 1) + 3,
                 column_config=COSTS_COLUMNS, key="classic_costs")
    charts.csv_button("costs", table, key="classic_btn_costs_csv")
    subset = (f"The traditional models learned from **{fitted['pixels'][0].train_images:,} of the {available:,}** "
              f"training images (a random subset, the same for all), the CNN from {m['train_images']:,}. "
              if fitted["pixels"][0].train_images < m["train_images"] else "")
    tested = (f"the same {scored_count:,} test images" if not test_size else
              f"the same {scored_count:,} of the {len(data.x_test):,} test images (a random subset)")
    st.caption(f"{subset}Every model is scored on {tested}; *predicting* is the time "
               "for all of them. *Learned numbers* are what a model keeps after training: a kNN keeps every training "
               "image, an SVM the images nearest its boundary (support vectors), a tree one question per split"
               + (". On CNN features, the CNN's own weights that compute them come on top." if "cnn" in kinds else "."))


def learning_curves(result, data, choice: Choice) -> None:
    st.subheader("Does the deep model need more data?")
    size, test_size, available = choice.size, choice.test_size, len(data.x_train)
    classic_sizes = sorted({s for s in curve_sizes(available) if s < size} | {size})
    curve_configs = [c for s in classic_sizes for c in choice.configs(result, data, "pixels", s)]
    cnn_sizes = sorted(set(curve_sizes(available)) | set(classic_sizes))
    curves = tasks.learning_curves(result, data, curve_configs, cnn_sizes, measure=False)
    if not curves and not st.button("📈 Measure learning curves", key="classic_btn_curves"):
        st.info(f"Trains every model again on {', '.join(f'{s:,}' for s in classic_sizes)} images and the CNN on up "
                f"to {available:,}, then plots test accuracy against the amount of training data.")
        return
    if not curves:
        tasks.learning_curves(result, data, curve_configs, cnn_sizes, measure=True)
        st.rerun()  # draw the page again without the button
    charts.chart(plots.learning_curve_figure(curves, "CNN"), "classic_curves", summaries.learning_curve_summary(curves))
    charts.csv_button("learning-curves", exports.curve_rows(curves), key="classic_btn_curves_csv")
    st.markdown(read_curves(curves, "CNN"))
    st.caption(f"Each point is a model trained from scratch on the first N images of one random order (raw pixels "
               f"for the traditional models, up to the {size:,} chosen in the sidebar). Small sets give the CNN "
               f"more epochs, so only the amount of data changes."
               + (f" The CNN's points are scored on all {len(data.x_test):,} test images." if test_size else ""))


def side_by_side(data, fitted: dict, scored: torch.Tensor, cnn_probs) -> torch.Tensor:
    """One test image, every model's answer, and every model's confusion matrix; returns the image."""
    st.subheader("Side by side on one image")
    y_scored, kinds, classes = data.y_test[scored], list(fitted), data.classes
    index = widgets.pick_test_image("classic", y_scored, classes)  # a position among the scored test images
    image, truth = data.x_test[scored[index]], int(y_scored[index])
    kind = st.radio("Traditional models on", kinds, format_func=FEATURES.get, horizontal=True,
                    key="classic_side_features") if len(kinds) > 1 else "pixels"
    rows = [("CNN", cnn_probs)] + [(r.label, r.probabilities) for r in fitted[kind]]
    c_image, c_table = st.columns([1, 3])
    charts.chart(plots.image_figure(image, f"true: {classes[truth]}", height=220), "classic_image",
                 summaries.image_summary(image, classes[truth]), where=c_image)
    c_table.dataframe(pd.DataFrame([{"model": name, "says": classes[int(p[index].argmax())],
                                     "how sure": float(p[index].max()),
                                     "right?": "✅" if p[index].argmax() == truth else "❌"} for name, p in rows]),
                      hide_index=True, key="classic_votes", column_config={
                          "how sure": st.column_config.ProgressColumn(format="percent", min_value=0, max_value=1)})
    matrices = [(name, confusion_counts(y_scored, torch.from_numpy(p.argmax(1)), len(classes))) for name, p in rows]
    charts.chart(plots.confusion_grid(matrices, classes), "classic_confusion",
                 summaries.confusion_grid_summary(matrices, classes))
    st.caption("Confusion matrices: rows are the true class, columns the answer. Everything off the diagonal is a "
               "mistake; compare which classes each model mixes up.")
    return image


result, data = tasks.current_model()
with st.sidebar:
    choice = sidebar_settings(data)
scored = subset_indices(len(data.x_test), choice.test_size, 0)  # the test images every model is scored on
st.title("⚖️ Deep learning versus traditional machine learning")
st.markdown(f"""
Traditional models such as logistic regression, decision trees or nearest neighbours learn from
**features** someone chose: raw pixel values, or measurements people designed by hand, like **HOG**
(histograms of edge directions). A CNN learns its own features from the raw pixels, layer by layer.
Here five classic scikit-learn models and your CNN face the very same **{shown_name(data.name)}** test images.
""")
fitted = {kind: tasks.classic_models(choice.configs(result, data, kind, choice.size), result.model)
          for kind in ["pixels", *choice.extra]}
fitted = {kind: found for kind, found in fitted.items() if found}  # a model that cannot fit says why and is left out
if "pixels" not in fitted:
    st.stop()
session.set_latest_classic_models(fitted["pixels"])
cnn_probs, cnn_seconds, cnn_accuracy = cnn_scores_on(*server.cnn_test_scores(result), scored, data.y_test)
costs(result, data, fitted, cnn_accuracy, cnn_seconds, len(scored), choice.test_size)
learning_curves(result, data, choice)
image = side_by_side(data, fitted, scored, cnn_probs)
white_box.show(result, data, {r.config.model: r for r in fitted["pixels"]}, image)

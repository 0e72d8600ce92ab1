"""What every page shares: cached datasets, the model cache and the visitor's current model."""
from __future__ import annotations

import os
import random
import time
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st
import torch

from layerlens.checkpoints import ModelCache
from layerlens.classic import (FEATURES, MODELS, ClassicConfig, ClassicResult, cnn_test_probabilities, feature_matrix,
                               fit_classic)
from layerlens.data import SAMPLE, ImageData, default_cache_dir, load_dataset
from layerlens.inspection import confusion_matrix
from layerlens.training import (Progress, TrainConfig, TrainResult, curve_train_config, preset_train_config,
                                subset_indices)

MODEL_KEY = "current_model"  # the visitor's TrainResult; only this module reads or writes it
CLASSIC_KEY = "classic_models"  # the visitor's latest traditional models (ClassicResults), for every page
KEPT_WIDGETS = ("train_", "classic_")  # pages whose settings survive a visit to another page


def models_dir() -> Path:
    """Where named models are saved and listed: $LAYERLENS_MODELS, else the project's models/."""
    return Path(os.environ.get("LAYERLENS_MODELS", Path(__file__).parent / "models"))


@st.cache_resource(max_entries=3, show_spinner="Loading the dataset…")
def dataset(name: str) -> ImageData:
    """The dataset, loaded once per server (errors are not cached, so a retry can succeed)."""
    return load_dataset(name)


@st.cache_resource
def model_cache() -> ModelCache:
    """Trained models shared by every visitor, backed by <cache>/models on disk."""
    return ModelCache(default_cache_dir() / "models")


def train_with_progress(config: TrainConfig, data: ImageData) -> TrainResult:
    """The model for config: from the cache, or trained now with a progress bar and a live loss chart."""
    cached = model_cache().get(config)
    if cached is not None:
        return cached
    bar = st.progress(0.0, text="Starting to train…")
    chart = st.empty()
    losses: list[float] = []
    last_draw = [0.0]

    def on_step(p: Progress) -> None:
        losses.append(p.loss)
        now = time.perf_counter()
        # Drawing costs CPU that training needs (the server and the browser share 2 cores with it):
        # redraw at most once a second, with at most 200 points.
        if p.epoch_done or now - last_draw[0] > 1.0:
            last_draw[0] = now
            test = f" · test accuracy {p.test_accuracy:.1%}" if p.test_accuracy is not None else ""
            bar.progress(p.step / p.total_steps,
                         text=f"Training: epoch {p.epoch}/{config.epochs} · step {p.step}/{p.total_steps} · "
                              f"loss {p.loss:.3f}{test}")
            every = max(1, len(losses) // 200)
            chart.line_chart(pd.DataFrame({"training loss": losses[::every]}, index=range(1, len(losses) + 1, every)),
                             height=200, x_label="step")

    result = model_cache().get_or_train(config, data, on_step=on_step)
    bar.empty()
    chart.empty()
    return result


@st.cache_data(max_entries=32)
def test_confusion(_result: TrainResult, key: str):
    """Confusion counts of a model on its test set (cached by the model's config key)."""
    data = dataset(_result.config.dataset)
    return confusion_matrix(_result.model, data.x_test, data.y_test, data.num_classes)


def percent(value: float) -> str:
    """0.979 → '97.9%'; a diverged run's missing accuracy → '—'."""
    return "—" if value != value else f"{value:.1%}"


def set_current_model(result: TrainResult, rerun: bool = True) -> None:
    """Make result the visitor's model and rerun, so every part of the page shows it.

    Callbacks pass rerun=False: the page runs right after them anyway.
    """
    st.session_state[MODEL_KEY] = result
    if rerun:
        st.rerun()


def page_setup(title: str) -> None:
    """First call of every page: page config, kept widget state, navigation and model status."""
    st.set_page_config(page_title=f"LayerLens · {title}", page_icon="🔬", layout="wide")
    # Streamlit forgets the state of widgets that are not on screen; re-assigning it keeps the
    # Train page's settings when the visitor looks at another page and comes back.
    for key in [k for k in st.session_state if str(k).startswith(KEPT_WIDGETS) and "_btn_" not in str(k)]:
        st.session_state[key] = st.session_state[key]
    with st.sidebar:
        st.page_link("app.py", label="Home", icon="🔬")
        st.page_link("pages/1_train.py", label="Train", icon="🏋️")
        st.page_link("pages/2_layers.py", label="Layers", icon="🧅")
        st.page_link("pages/3_features.py", label="Filters & features", icon="🔎")
        st.page_link("pages/4_classic.py", label="Traditional ML", icon="⚖️")
        st.page_link("pages/5_neuron.py", label="One neuron", icon="🔢")
        st.page_link("pages/6_learning.py", label="Learning", icon="📉")
        st.page_link("pages/7_abstraction.py", label="Abstraction", icon="🪜")
        st.divider()
        result = peek_current_model()
        if result is None:
            st.caption("No model trained yet.")
        else:
            m = result.metrics
            epochs = f"{m['epochs']} epoch{'s' if m['epochs'] != 1 else ''}"
            st.caption(f"**Model:** {len(result.config.net.channels)} conv blocks, {m['params']:,} weights  \n"
                       f"**Data:** {result.config.dataset}, {epochs} on {m['train_images']:,} images  \n"
                       f"**Test accuracy:** {percent(m['test_accuracy'])}  \n**Trained on:** {m['device']}")


def peek_current_model() -> TrainResult | None:
    """The visitor's model if there is one (never trains)."""
    return st.session_state.get(MODEL_KEY)


def current_model() -> tuple[TrainResult, ImageData]:
    """The visitor's model and its data; trains the default first if there is none yet."""
    if MODEL_KEY not in st.session_state:
        st.info("No model trained yet, so LayerLens first trains the default one (a few seconds)…")
        data = dataset(SAMPLE)
        set_current_model(train_with_progress(preset_train_config("tiny", data), data))  # reruns the page
    result = st.session_state[MODEL_KEY]
    if result.diverged:
        st.warning("Your current model diverged while training, so its weights are no longer numbers and there is "
                   "nothing to look at. Go to **Train** and pick a smaller learning rate.")
        st.page_link("pages/1_train.py", label="Train", icon="🏋️")
        st.stop()
    try:
        data = dataset(result.config.dataset)
    except ValueError as err:
        st.error(f"The current model was trained on data that is not available here. {err}")
        st.stop()
    return result, data


def pick_test_image(prefix: str, labels: torch.Tensor, classes: tuple[str, ...], where: str = "test set") -> int:
    """Widgets to choose an image (of the test set, or the set `labels` come from) by class and example, plus a
    random pick; returns its index."""
    index_key, class_key = f"{prefix}_index", f"{prefix}_class"

    def pick_random() -> None:
        index = random.randrange(len(labels))
        label = int(labels[index])
        st.session_state[class_key] = label
        st.session_state[index_key] = int((labels[:index] == label).sum())

    if index_key not in st.session_state:
        st.session_state[index_key] = 0
    if st.session_state.get(class_key, 0) >= len(classes):  # kept from a dataset with more classes
        st.session_state[class_key] = 0
    c_class, c_pick, c_random = st.columns([2, 3, 1])
    wanted = c_class.selectbox("Class", range(len(classes)), format_func=lambda i: classes[i], key=class_key)
    in_class = torch.nonzero(labels == wanted).flatten().tolist()
    st.session_state[index_key] = min(st.session_state[index_key], len(in_class) - 1)
    position = c_pick.slider(f"Example of '{classes[wanted]}' ({len(in_class)} in the {where})", 0,
                             max(1, len(in_class) - 1), key=index_key, disabled=len(in_class) < 2)
    c_random.button("🎲 Random", key=f"{prefix}_btn_random", on_click=pick_random)
    return in_class[min(position, len(in_class) - 1)]


@st.cache_resource(max_entries=16, show_spinner="Making the features…")
def classic_rows(name: str, kind: str, hog_cell: int, cnn_key: str, size: int, seed: int, split: str,
                 _model) -> tuple[np.ndarray, np.ndarray]:
    """Feature rows and labels of a dataset's training subset (split "train") or test subset ("test")."""
    data = dataset(name)
    if split == "train":
        idx = subset_indices(len(data.x_train), size, seed)  # the images the CNN uses for this size
        images, labels = data.x_train[idx], data.y_train[idx]
    else:
        idx = subset_indices(len(data.x_test), size, seed)
        images, labels = data.x_test[idx], data.y_test[idx]
    return feature_matrix(kind, images, hog_cell, _model), labels.numpy()


@st.cache_resource(max_entries=64, show_spinner=False)
def classic_model(config: ClassicConfig, _cnn) -> ClassicResult:
    """A traditional model fitted as config says (shared by every visitor: same config, same model)."""
    data = dataset(config.dataset)
    rows = (config.dataset, config.features, config.hog_cell, config.cnn)
    x_train, y_train = classic_rows(*rows, config.train_size, config.seed, "train", _cnn)
    x_test, y_test = classic_rows(*rows, config.test_size, 0, "test", _cnn)
    return fit_classic(config, x_train, y_train, x_test, y_test, data.num_classes)


def classic_models(configs: list[ClassicConfig], cnn) -> list[ClassicResult]:
    """The fitted models for configs, from the cache or fitted now with a progress bar.

    A model that cannot be fitted (say, a HOG cell too big for the images) gets a message and is left out.
    """
    bar = st.progress(0.0)
    fitted, failed = [], {}  # failed: message → the models it stopped
    for i, config in enumerate(configs):
        label = f"{MODELS[config.model].label} on {FEATURES[config.features]}"
        size = f"{config.train_size:,}" if config.train_size else "all"
        bar.progress(i / len(configs), text=f"Training {label} ({size} training images): model {i + 1} of "
                                            f"{len(configs)}…")
        try:
            fitted.append(classic_model(config, cnn))
        except ValueError as err:
            failed.setdefault(str(err), []).append(label)
    bar.empty()
    for message, labels in failed.items():
        who = (f"Traditional models on {FEATURES[configs[0].features]}" if len(labels) == len(configs)
               else ", ".join(labels))
        st.error(f"{who}: {message}")
    return fitted


@st.cache_resource(max_entries=8, show_spinner=False)
def cnn_test_scores(_result: TrainResult, key: str) -> tuple[np.ndarray, float]:
    """The CNN's probabilities for every test image, and how many seconds predicting them took."""
    return cnn_test_probabilities(_result.model, dataset(_result.config.dataset).x_test)


@st.cache_resource
def _curve_store() -> dict:
    """Measured learning curves, by what they measured (shared by every visitor)."""
    return {}


def learning_curves(result: TrainResult, data: ImageData, configs: list[ClassicConfig], cnn_sizes: list[int],
                    measure: bool) -> dict[str, list[tuple[int, float]]] | None:
    """Test accuracy against training-set size: the CNN's recipe retrained on each of cnn_sizes images, and each
    traditional model as configs say. Measured (with a progress bar) only when measure is true, then kept."""
    key = (result.config.key(), tuple(cnn_sizes), tuple(c.key() for c in configs))
    if key in _curve_store() or not measure:
        return _curve_store().get(key)
    curves = {"CNN": []}
    bar = st.progress(0.0)
    jobs = len(configs) + len(cnn_sizes)
    for i, size in enumerate(cnn_sizes):
        bar.progress(i / jobs, text=f"Training the CNN on {size:,} images ({i + 1} of {jobs})…")
        curves["CNN"].append((size, _cnn_on(result, data, size).metrics["test_accuracy"]))
    for i, config in enumerate(configs, start=len(cnn_sizes)):
        size = config.train_size or len(data.x_train)
        bar.progress(i / jobs, text=f"Training {MODELS[config.model].label} on {size:,} images ({i + 1} of {jobs})…")
        found = classic_model(config, result.model)
        curves.setdefault(found.label, []).append((found.train_images, found.test_accuracy))
    bar.empty()
    _curve_store()[key] = curves
    return curves


def _cnn_on(result: TrainResult, data: ImageData, size: int, train: bool = True) -> TrainResult | None:
    """The visitor's CNN recipe retrained on the first `size` training images (from the cache, or trained now)."""
    config = curve_train_config(result.config, size, len(data.x_train))
    return model_cache().get_or_train(config, data) if train else model_cache().get(config)


def data_size_curve(result: TrainResult, data: ImageData, sizes: list[int], measure: bool) -> list[tuple[int, float]] | None:
    """Test accuracy of the visitor's CNN recipe on each of `sizes` training images: from the model cache when every
    size is there, else measured (with a progress bar) only when measure is true."""
    cached = [_cnn_on(result, data, size, train=False) for size in sizes]
    if all(cached):
        return [(size, found.metrics["test_accuracy"]) for size, found in zip(sizes, cached)]
    if not measure:
        return None
    bar, points = st.progress(0.0), []
    for i, size in enumerate(sizes):
        bar.progress(i / len(sizes), text=f"Training the CNN on {size:,} images ({i + 1} of {len(sizes)})…")
        points.append((size, _cnn_on(result, data, size).metrics["test_accuracy"]))
    bar.empty()
    return points

"""What every page shares: cached datasets, the model cache and the visitor's current model."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from layerlens.checkpoints import ModelCache
from layerlens.data import SAMPLE, ImageData, default_cache_dir, load_dataset
from layerlens.inspection import confusion_matrix
from layerlens.training import Progress, TrainConfig, TrainResult, preset_train_config

MODEL_KEY = "current_model"  # the visitor's TrainResult; only this module reads or writes it


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
    for key in [k for k in st.session_state if str(k).startswith("train_") and not str(k).startswith("train_btn_")]:
        st.session_state[key] = st.session_state[key]
    with st.sidebar:
        st.page_link("app.py", label="Home", icon="🔬")
        st.page_link("pages/1_train.py", label="Train", icon="🏋️")
        st.page_link("pages/2_layers.py", label="Layers", icon="🧅")
        st.page_link("pages/3_features.py", label="Filters & features", icon="🔎")
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

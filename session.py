"""What belongs to one visitor: the current model, trainings through the shared queue, page chrome and pickers.

What the server shares between visitors (datasets, models, cached results) is in server.py."""
from __future__ import annotations

import os
import secrets
import uuid
from pathlib import Path

import pandas as pd
import streamlit as st
import torch

import server
from layerlens.classic import FEATURES, MODELS, ClassicConfig, ClassicResult
from layerlens.data import SAMPLE, ImageData
from layerlens.jobs import seconds
from layerlens.nets import Net
from layerlens.training import TrainConfig, TrainResult, curve_train_config, model_key, preset_train_config

MODEL_KEY = "current_model"  # the visitor's TrainResult; only this module reads or writes it
CLASSIC_KEY = "classic_models"  # the visitor's latest traditional models (ClassicResults), for every page
KEPT_WIDGETS = ("train_", "classic_")  # pages whose settings survive a visit to another page


def models_dir() -> Path:
    """Where named models are saved and listed: $LAYERLENS_MODELS, else the project's models/."""
    return Path(os.environ.get("LAYERLENS_MODELS", Path(__file__).parent / "models"))


QUEUE_JOB_KEY = "queue_job"  # the visitor's training job while it waits, so that Cancel can reach it
CANCELLED_KEY = "queue_cancelled"  # the config key of the visitor's last cancelled training


def visitor_id() -> str:
    """This visitor (browser tab): who a training job is for."""
    if "visitor_id" not in st.session_state:
        st.session_state.visitor_id = uuid.uuid4().hex
    return st.session_state.visitor_id


def _cancel_training() -> None:
    job = st.session_state.pop(QUEUE_JOB_KEY, None)
    if job is not None:
        server.training_queue().cancel(job, visitor_id())
        st.session_state[CANCELLED_KEY] = job.config.key()


def cancelled(config: TrainConfig) -> bool:
    """Whether the visitor cancelled the training of exactly this config (so it is not started again unasked)."""
    return st.session_state.get(CANCELLED_KEY) == config.key()


def train_with_progress(config: TrainConfig, data: ImageData, cancellable: bool = True) -> TrainResult:
    """The model for config: from the cache at once, or through the training queue, showing the place in line and
    the expected wait, then the training's progress and a live loss chart. Stops the page with a message when the
    training fails or is cancelled (the visitor's current model stays)."""
    cached = server.model_cache().get(config)
    if cached is not None:
        return cached
    st.session_state.pop(CANCELLED_KEY, None)
    queue = server.training_queue()
    job = queue.submit(config, data, visitor_id())
    st.session_state[QUEUE_JOB_KEY] = job
    bar = st.progress(0.0, text="Asking for a training slot…")
    chart, cancel = st.empty(), st.empty()
    if cancellable:
        cancel.button("Cancel this training", key=f"queue_btn_cancel_{config.key()}", on_click=_cancel_training)
    shown, drawn_steps, ticks = "", 0, 0
    while not job.wait(timeout=0.5):
        ticks += 1
        wait = queue.status(job)
        p = job.progress
        if wait.state == "queued" or p is None:
            text, fraction = wait.sentence().replace("**", ""), 0.0
        else:
            others = f" · {wait.others + 1} students wait for this network" if wait.others else ""
            test = f" · test accuracy {p.test_accuracy:.1%}" if p.test_accuracy is not None else ""
            text = (f"Training: epoch {p.epoch}/{config.epochs} · step {p.step}/{p.total_steps} · loss {p.loss:.3f}"
                    f"{test} · about {seconds(wait.done_in)} left{others}")
            fraction = p.step / p.total_steps
        if text != shown:
            bar.progress(fraction, text=text)
            shown = text
        losses = job.losses
        # a redraw costs ~80 ms of server CPU: every 4th wake-up (2 s), and once per 10 waiting students beyond that,
        # so a class watching one training does not starve it (measured: 10 watchers slowed it 5×)
        if len(losses) > drawn_steps + 1 and ticks % (4 * (1 + wait.others // 10)) == 0:
            drawn_steps = len(losses)
            every = max(1, len(losses) // 200)
            chart.line_chart(pd.DataFrame({"training loss": losses[::every]},
                                          index=range(1, len(losses) + 1, every)), height=200, x_label="step")
    st.session_state.pop(QUEUE_JOB_KEY, None)
    for shown_while_training in (bar, chart, cancel):
        shown_while_training.empty()
    if job.state == "done":
        return job.result
    if job.state == "failed":
        st.error(f"Training failed: {job.error} Your current model is unchanged.")
    else:
        st.info("This training was cancelled. Your current model is unchanged; press **Train now** to train it.")
        st.session_state[CANCELLED_KEY] = config.key()
    st.stop()


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
        data = server.dataset(SAMPLE)
        # everyone's first model: nobody may cancel it for the others
        set_current_model(train_with_progress(preset_train_config("tiny", data), data, cancellable=False))
    result = st.session_state[MODEL_KEY]
    if result.diverged:
        st.warning("Your current model diverged while training, so its weights are no longer numbers and there is "
                   "nothing to look at. Go to **Train** and pick a smaller learning rate.")
        st.page_link("pages/1_train.py", label="Train", icon="🏋️")
        st.stop()
    try:
        data = server.dataset(result.config.dataset)
    except ValueError as err:
        st.error(f"The current model was trained on data that is not available here. {err}")
        st.stop()
    return result, data


def pick_test_image(prefix: str, labels: torch.Tensor, classes: tuple[str, ...], where: str = "test set") -> int:
    """Widgets to choose an image (of the test set, or the set `labels` come from) by class and example, plus a
    random pick; returns its index."""
    index_key, class_key = f"{prefix}_index", f"{prefix}_class"

    def pick_random() -> None:
        index = secrets.randbelow(len(labels))  # not the global random generator, which every visitor shares
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


def classic_model(config: ClassicConfig, cnn: Net) -> ClassicResult:
    """The shared fitted model for config; the CNN counts only where its features are used."""
    return server.classic_model(config, cnn if config.features == "cnn" else None)


def classic_models(configs: list[ClassicConfig], cnn: Net) -> list[ClassicResult]:
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


def learning_curves(result: TrainResult, data: ImageData, configs: list[ClassicConfig], cnn_sizes: list[int],
                    measure: bool) -> dict[str, list[tuple[int, float]]] | None:
    """Test accuracy against training-set size: the CNN's recipe retrained on each of cnn_sizes images, and each
    traditional model as configs say. Measured (with a progress bar) only when measure is true, then kept."""
    key = ("learning curves", model_key(result), tuple(cnn_sizes), tuple(c.key() for c in configs))
    if key in server.results() or not measure:
        return server.results().get(key)
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
    server.results().put(key, curves)
    return curves


def _cnn_on(result: TrainResult, data: ImageData, size: int, train: bool = True) -> TrainResult | None:
    """The visitor's CNN recipe retrained on the first `size` training images (from the cache, or trained now)."""
    config = curve_train_config(result.config, size, len(data.x_train))
    return train_with_progress(config, data) if train else server.model_cache().get(config)


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

"""The waits a page shows: training through the shared queue, fitting traditional models, measuring learning
curves. Each says why the visitor waits and for how long, and leaves the visitor's state as it was on failure."""
from __future__ import annotations

import time

import streamlit as st

import charts
import page_list
import server
import session
from layerlens import plots, summaries
from layerlens.classic import FEATURES, MODELS, ClassicConfig, ClassicResult
from layerlens.data import SAMPLE, ImageData
from layerlens.formatting import seconds
from layerlens.nets import Net
from layerlens.training import (DEFAULT_PRESET, TrainConfig, TrainResult, curve_train_config, model_key,
                                preset_train_config)


def _cancel_training() -> None:
    job = session.waiting_job()
    session.set_waiting_job(None)
    if job is not None:
        server.training_queue().cancel(job, session.visitor_id())
        session.set_cancelled(job.config)


def train_with_progress(config: TrainConfig, data: ImageData, cancellable: bool = True) -> TrainResult:
    """The model for config: from the cache at once, or through the training queue, showing the place in line and
    the expected wait, then the training's progress and a live loss chart. Stops the page with a message when the
    training fails or is cancelled (the visitor's current model stays)."""
    cached = server.model_cache().get(config)
    if cached is not None:
        return cached
    session.set_cancelled(None)
    queue = server.training_queue()
    job = queue.submit(config, data, session.visitor_id())
    session.set_waiting_job(job)
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
        # a redraw costs ~6 ms of server CPU (st.line_chart's Vega-Lite chart cost 110 ms, and 10 watchers slowed a
        # training 5×): every 2nd wake-up (1 s), and once per 10 waiting students beyond that, so that a class
        # watching one training does not starve it
        if len(losses) > drawn_steps + 1 and ticks % (2 * (1 + wait.others // 10)) == 0:
            drawn_steps = len(losses)
            total = p.total_steps if p is not None else len(losses)
            charts.chart(plots.live_loss_figure(losses), f"train_live_loss_{config.key()}_{ticks}",
                         summaries.live_loss_summary(losses, total), where=chart.container(), keep=False,
                         config={"displayModeBar": False})
    session.set_waiting_job(None)
    for shown_while_training in (bar, chart, cancel):
        shown_while_training.empty()
    if job.state == "done":
        return job.result
    if job.state == "failed":
        st.error(f"Training failed: {job.error} Your current model is unchanged.")
    else:
        st.info("This training was cancelled. Your current model is unchanged; press **Train now** to train it.")
        session.set_cancelled(config)
    st.stop()


def current_model() -> tuple[TrainResult, ImageData]:
    """The visitor's model and its data; trains the default first if there is none yet."""
    if session.peek_current_model() is None:
        data = server.dataset(SAMPLE)
        config = preset_train_config(DEFAULT_PRESET, data)
        if server.model_cache().get(config) is None:  # it ships in models/: usually it loads at once
            st.info("No model trained yet, so LayerLens first trains the default one (a few seconds)…")
        # everyone's first model: nobody may cancel it for the others
        session.set_current_model(train_with_progress(config, data, cancellable=False))
    result = session.peek_current_model()
    if result.diverged:
        st.warning("Your current model diverged while training, so its weights are no longer numbers and there is "
                   "nothing to look at. Go to **Train** and pick a smaller learning rate.")
        page_list.page_link(page_list.TRAIN)
        st.stop()
    try:
        data = server.dataset(result.config.dataset)
    except ValueError as err:
        st.error(f"The current model was trained on data that is not available here. {err}")
        st.stop()
    return result, data


def classic_model(config: ClassicConfig, cnn: Net) -> ClassicResult:
    """The shared fitted model for config; the CNN counts only where its features are used."""
    return server.classic_model(config, cnn if config.features == "cnn" else None)


def classic_models(configs: list[ClassicConfig], cnn: Net) -> list[ClassicResult]:
    """The fitted models for configs, from the cache or fitted now with a progress bar.

    A model that cannot be fitted (say, a HOG cell too big for the images) gets a message and is left out.
    """
    bar = st.progress(0.0)
    warm = server.warm_up_state()
    if warm is not None and warm.keys is not None and {c.key() for c in configs} <= warm.keys:
        warm.wanted = True  # this visitor waits for them: the warm-up no longer gives way to other pages
    while warm is not None and warm.fitting(configs) and warm.ready < warm.total:
        # one fit at a time: beside the warm-up's, the page's own would only share the same two cores
        bar.progress(warm.ready / max(warm.total, 1),
                     text=f"The server began fitting these {len(configs)} models when it started, before anyone "
                          f"asked: {warm.progress()}…")
        time.sleep(0.2)
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


def data_size_curve(result: TrainResult, data: ImageData, sizes: list[int],
                    measure: bool) -> list[tuple[int, float]] | None:
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

"""Learning page: one step of gradient descent under the microscope, training's dynamics, learning gone wrong."""
import pandas as pd
import streamlit as st
import torch

import charts
import chrome
import session
import tasks
import widgets
from layerlens import exports, plots, summaries
from layerlens.data import shown_name
from layerlens.formatting import percent, plural
from layerlens.images import enlarged_rgb, kernel_tiles
from layerlens.learning import (SCENARIOS, HandSteps, batch_indices, data_sizes, gradient_step, layer_changes,
                                lesson_base, random_start)
from layerlens.training import model_key

chrome.inside_navigation()

CHECK_IMAGES = 500  # test images scored after each click on a step button
LEARNING_RATES = [0.001, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 30.0]
STARTS = {"random": "random weights", "trained": "your trained model"}
BATCHES = {0: "this image only", 32: "32 random training images"}
CHANGE_COLUMNS = {"update ÷ weights": st.column_config.NumberColumn(format="percent"),
                  **{c: st.column_config.NumberColumn(format="%.2e")
                     for c in ("gradient size", "update size", "largest single update")}}


def one_step(steps: HandSteps, image: torch.Tensor, label: int, classes, taught: tuple, rate: float,
             batch: int) -> None:
    """What the next step would do: the answer before and after, the error signal per layer, the updates."""
    pick = batch_indices(len(taught[0]), batch, len(steps.losses)) if batch else slice(None)
    report = gradient_step(steps.model, taught[0][pick], taught[1][pick], rate)
    with torch.no_grad():
        before, after = steps.model(image[None]).softmax(1)[0], report.model(image[None]).softmax(1)[0]
    c_image, c_probs, c_loss = st.columns([1, 3, 1])
    c_image.image(enlarged_rgb(image, 160), caption=f"a training image labelled '{classes[label]}'")
    charts.chart(plots.before_after_figure(before, after, classes, label), "learning_probs",
                 summaries.before_after_summary(before, after, classes, label), where=c_probs)
    what = "this image" if not batch else f"these {batch} images"
    c_loss.metric(f"Loss on {what}", f"{report.loss_after:.3f}", f"{report.loss_after - report.loss_before:+.3f}",
                  delta_color="inverse")
    c_loss.metric(f"Probability of '{classes[label]}'", f"{after[label]:.1%}",
                  f"{(after[label] - before[label]) * 100:+.1f} points")
    st.caption(f"Grey: the network's answer now. Green: after one step of size {rate:g} on {what}"
               + (" (the next random batch; the image shown is not necessarily in it)." if batch else "."))
    c_norms, c_kernels = st.columns(2)
    charts.chart(plots.layer_bars_figure(report.grad_norms, "gradient size (norm, log scale)"), "learning_norms",
                 summaries.layer_values_summary(report.grad_norms, "gradient size"), where=c_norms)
    c_norms.caption("The error signal that reached each layer's weights in this step. It starts at the output "
                    "(classifier) and is passed back layer by layer; each layer scales it on the way.")
    kernels = steps.model.layers.conv1.weight.detach()  # (C_out, C_in, k, k), before the step
    columns = min(16, len(kernels))
    charts.chart(plots.image_grid(kernel_tiles(kernels), columns, tile=28, title="first-layer kernels now"),
                 "learning_kernels", summaries.kernels_summary(kernels), where=c_kernels)
    gradients = report.gradients["conv1"]
    charts.chart(plots.image_grid(kernel_tiles(gradients, shared=True), columns, tile=28,
                                  title="their gradients (one scale for all)"), "learning_kernel_gradients",
                 summaries.kernels_summary(gradients, what="gradients"), where=c_kernels)
    c_kernels.caption("Red: the loss grows if this weight grows, so the step lowers it; blue: the opposite. "
                      "Each weight moves by −learning rate × its gradient.")
    st.dataframe(pd.DataFrame(layer_changes(report)), hide_index=True, key="learning_changes",
                 column_config=CHANGE_COLUMNS)


def step_buttons(steps: HandSteps, taught: tuple, rate: float, batch: int, test: tuple) -> None:
    columns = st.columns(4)
    for column, count, label in zip(columns, (1, 10, 100), ("Take this step", "10 steps", "100 steps")):
        column.button(label, key=f"learning_btn_{count}", disabled=steps.blown,
                      on_click=lambda n=count: steps.take(n, *taught, rate, batch, *test))
    columns[3].button("Start over", key="learning_btn_reset", on_click=session.set_hand_steps, args=(None,))
    if steps.losses:
        charts.chart(plots.steps_figure(steps.losses, steps.checks), "learning_steps_chart",
                     summaries.steps_summary(steps.losses, steps.checks))
        st.markdown(f"**{plural(len(steps.losses), 'step')} taken.** Test accuracy ({CHECK_IMAGES} test images): "
                    f"{percent(steps.checks[0][1])} at the start, **{percent(steps.checks[-1][1])}** now."
                    + (" Learning from one image drives its loss towards 0, but the network only memorises that "
                       "image: to learn its classes it must learn from many." if not batch else ""))


def training_dynamics(history) -> None:
    st.subheader("Training, step by step: your model")
    charts.chart(plots.history_figure(history), "learning_history", summaries.history_summary(history))
    if not history.grad_norm:
        st.info("This model was trained before LayerLens recorded gradients; retrain it on the Train page to see them.")
        return
    c_grad, c_moved = st.columns(2)
    charts.chart(plots.gradient_norm_figure(history.grad_norm), "learning_grad_norm",
                 summaries.gradient_norm_summary(history.grad_norm), where=c_grad)
    c_grad.caption("The gradient reaching each layer over training (averaged over a few steps). It shrinks as the "
                   "loss falls: less error, less to feed back. A layer whose line sits far below the others "
                   "learns slowly: the signal has faded on its way back.")
    charts.chart(plots.layer_epochs_figure(history.distance_from_init, "distance from the random start"),
                 "learning_moved", summaries.layer_epochs_summary(history.distance_from_init,
                                                                  "distance from the random start"), where=c_moved)
    c_moved.caption("How far each layer's weights have moved from where they started, relative to their size.")


def gone_wrong(result, data) -> None:
    st.subheader("When learning goes wrong, on purpose")
    base = lesson_base(result.config, len(data.x_train))
    st.markdown(f"Each button retrains your recipe ({shown_name(result.config.dataset)}, on at most "
                f"{base.train_size or len(data.x_train):,} images) with one thing broken. Your own model stays as "
                "it is.")
    halves = st.columns(2)
    for i, (name, scenario) in enumerate(SCENARIOS.items()):
        halves[i % 2].button(scenario.title, key=f"learning_btn_{name}", width="stretch",
                             on_click=lambda n=name: st.session_state.update(learning_scenario=n))
    scenario = SCENARIOS.get(st.session_state.get("learning_scenario"))
    if scenario is None:
        return
    try:
        healthy, broken = tasks.train_with_progress(base, data), tasks.train_with_progress(scenario.change(base), data)
    except ValueError as err:
        st.error(str(err))
        return
    st.markdown(f"**{scenario.title}.** {scenario.explanation}")
    outcome = broken.diverged or (f"Test accuracy **{percent(broken.metrics['test_accuracy'])}** "
                                  f"(training images: {percent(broken.metrics['train_accuracy'])})")
    st.markdown(f"{outcome.rstrip('.')}. The same recipe unbroken: **{percent(healthy.metrics['test_accuracy'])}**.")
    c_curves, c_signal = st.columns(2)
    charts.chart(plots.history_figure(broken.history), "learning_scenario_history",
                 summaries.history_summary(broken.history), where=c_curves)
    charts.chart(plots.gradient_norm_figure(broken.history.grad_norm), "learning_scenario_grad",
                 summaries.gradient_norm_summary(broken.history.grad_norm), where=c_signal)


def more_data(result, data) -> None:
    st.subheader("More data, better accuracy")
    sizes = data_sizes(len(data.x_train))
    measure = st.button("Measure it", key="learning_btn_data", help="Retrains your recipe on each amount (cached).")
    points = tasks.data_size_curve(result, data, sizes, measure)
    if points is None:
        st.markdown(f"Retrain your recipe on {', '.join(f'{s:,}' for s in sizes[:-1])} and all {sizes[-1]:,} "
                    f"training images and compare test accuracy. The first time this trains up to {len(sizes)} networks; "
                    "after that it is instant, here and in the Traditional ML page's learning curves, which train "
                    "the same ones.")
        return
    charts.chart(plots.learning_curve_figure({"CNN": points}, "CNN"), "learning_data_curve",
                 summaries.learning_curve_summary({"CNN": points}))
    charts.csv_button("more-data", exports.curve_rows({"CNN": points}), key="learning_btn_data_csv")
    st.markdown(" · ".join(f"{size:,} images ({size / len(data.x_train):.0%}): **{percent(acc)}**"
                           for size, acc in points))
    st.caption("Small sets get more epochs, so every network gets at least 200 updates: only the amount of "
               "data changes.")


result, data = tasks.current_model()
classes, test = data.classes, (data.x_test[:CHECK_IMAGES], data.y_test[:CHECK_IMAGES])
st.title("📉 How learning happens")
st.markdown("A network learns by **feeding its error back**. For a training image it measures how wrong it is "
            "(the **loss**), works out for every weight which way would make it a little less wrong (the "
            "**gradient**, passed back from the output layer to the first: *back-propagation*) and nudges every "
            "weight that way (the **update**: minus the learning rate times the gradient). Then it does it again "
            "for the next images, thousands of times.")
st.subheader("One step under the microscope")
c_start, c_rate, c_from = st.columns(3)
start = c_start.segmented_control("Start from", list(STARTS), key="learning_start", format_func=STARTS.get) or "random"
widgets.default("learning_rate", 0.1)
rate = c_rate.select_slider("Learning rate", LEARNING_RATES, key="learning_rate")
batch = c_from.segmented_control("Each step learns from", list(BATCHES), key="learning_batch",
                                 format_func=BATCHES.get) or 0
index = widgets.pick_test_image("learning", data.y_train, classes, where="training set")
image, label = data.x_train[index], int(data.y_train[index])
steps = session.hand_steps()
if steps is None or steps.source != (model_key(result), start):
    begin = random_start(result.config.net, result.config.seed) if start == "random" else result.model
    steps = HandSteps.start((model_key(result), start), begin, *test)
    session.set_hand_steps(steps)
taught = (data.x_train, data.y_train) if batch else (image[None], data.y_train[index][None])
if steps.blown:
    st.error(f"The loss is no longer a number: with a learning rate of {rate:g} a step overshot so far that the "
             "weights blew up. Press **Start over** and pick a smaller learning rate.")
else:
    one_step(steps, image, label, classes, taught, rate, batch)
step_buttons(steps, taught, rate, batch, test)
training_dynamics(result.history)
gone_wrong(result, data)
more_data(result, data)

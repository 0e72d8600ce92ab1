"""Train page: every architecture and training setting as a widget; moving one retrains."""
import pandas as pd
import streamlit as st

import charts
import chrome
import server
import session
import tasks
import train_form
import widgets
from layerlens import exports, plots, summaries
from layerlens.data import ImageData
from layerlens.formatting import percent
from layerlens.inspection import layer_table
from layerlens.training import MIN_FOCUSED_STEPS, TrainConfig, TrainResult, training_problem

chrome.inside_navigation()


def wanted_config(name: str | None, architecture: dict,
                  training: dict) -> tuple[TrainConfig | None, ImageData | None]:
    """The config the settings describe and its data; None with a message when either cannot be had."""
    try:
        data = server.dataset(name) if name else None
    except ValueError as err:
        st.error(str(err))
        st.button("Use the offline sample", key="train_btn_sample", on_click=train_form.use_sample)
        return None, None
    if data is None:
        return None, None
    try:
        return train_form.build_config(data, architecture, training), data
    except ValueError as err:
        st.error(f"This network can't be built: {err}")
        return None, data


def train_if_asked(config: TrainConfig | None, data, pressed: bool, auto: bool) -> None:
    """Retrain when the settings changed and the visitor asked (or auto-retrain is on, or it is cached)."""
    current = session.peek_current_model()
    if config is None or (current is not None and current.config == config):
        return
    if pressed or server.model_cache().get(config) is not None or (auto and not session.cancelled(config)):
        session.set_current_model(tasks.train_with_progress(config, data))
    elif session.cancelled(config):
        st.info("You cancelled the training of these settings. Press **Train now** to train them after all.")
    else:
        st.info("Settings changed. Press **Train now** to train this network (auto-retrain is off).")


def results(result: TrainResult) -> None:
    m = result.metrics
    problem = training_problem(result)
    if problem:
        st.warning(f"**A lesson, not a crash.** {problem}")
    cols = st.columns(5)
    cols[0].metric("Test accuracy", percent(m["test_accuracy"]), help="Images the network never saw while training")
    cols[1].metric("Train accuracy", percent(m["train_accuracy"]))
    cols[2].metric("Training time", f"{m['seconds']:.1f} s")
    cols[3].metric("Learned weights", f"{m['params']:,}")
    cols[4].metric("Images per second", f"{m['images_per_second']:,.0f}", help=f"on {m['device']}")
    charts.chart(plots.history_figure(result.history), "train_history", summaries.history_summary(result.history))
    images, config = m["train_images"], result.config
    if config.hardest_images(images) < images:
        st.caption(f"After epoch 1, each epoch trained on {config.hardest_images(images):,} of the {images:,} "
                   f"training images ({config.hardest:.0%}), drawn by their loss when the network last saw them: "
                   f"mostly the ones it still got wrong. So the batch loss jumps up after epoch 1, and each later "
                   f"epoch takes a fraction of the time. Train accuracy counts every image as the network last saw it.")
    elif config.hardest < 1:
        st.caption(f"Every image, every epoch: training on the hardest {config.hardest:.0%} after epoch 1 would leave "
                   f"fewer than {MIN_FOCUSED_STEPS} weight updates on {images:,} images, too few to learn from.")
    st.subheader("The network, layer by layer")
    st.caption("Each box is a layer; its output (channels × height × width) is the next layer's input. The numbers "
               "under it are its learned weights. Real networks range from hundreds of weights to billions.")
    rows = layer_table(result.model)
    charts.chart(plots.architecture_figure(rows), "train_architecture", summaries.architecture_summary(rows))
    with st.expander("As a table"):
        st.dataframe(pd.DataFrame(rows), hide_index=True)
    st.subheader("Which classes get confused?")
    st.caption("Rows are the true class, columns the network's answer: the diagonal is right, everything else a "
               "mistake.")
    classes = server.dataset(result.config.dataset).classes
    counts = server.test_confusion(result)
    charts.chart(plots.confusion_figure(counts, classes), "train_confusion",
                 summaries.confusion_summary(counts, classes))
    charts.csv_button("confusion-matrix", exports.confusion_rows(counts, classes), key="train_btn_confusion_csv")


def take_away(result: TrainResult) -> None:
    """The model as files: a checkpoint for LayerLens and PyTorch, and ONNX for Netron (both made when asked)."""
    st.subheader("Take the model with you")
    stem = exports.file_stem(result)
    c_pt, c_onnx = st.columns(2)
    c_pt.download_button("⬇️ Model (.pt)", lambda: exports.checkpoint_bytes(result), file_name=f"{stem}.pt",
                         mime="application/octet-stream", key="train_btn_download_pt", on_click="ignore")
    c_pt.caption("Settings, weights and history. Put it in the models/ folder to load it under **Saved models**, or "
                 "open it in Python with `torch.load(path, weights_only=True)`.")
    c_onnx.download_button("⬇️ Model as ONNX", lambda: server.onnx_model(result), file_name=f"{stem}.onnx",
                           mime="application/octet-stream", key="train_btn_download_onnx", on_click="ignore",
                           help="Made the first time anyone asks for this model's: 3–8 s; then at once.")
    c_onnx.caption("The network as a graph any tool can read: open it in [Netron](https://netron.app) to see every "
                   "layer and its weights.")


def saved_models(result: TrainResult) -> None:
    with st.expander("Saved models (models/ folder)"):
        c_save, c_load = st.columns(2)
        train_form.save_current_model(c_save, result)
        saved = sorted(p.name for p in server.models_dir().glob("*.pt"))
        widgets.default("train_load_name", saved[0] if saved else None, saved)  # none saved yet, or the file is gone
        c_load.selectbox("Saved model", saved, key="train_load_name")
        c_load.button("Load it", key="train_btn_load", disabled=not saved, on_click=train_form.load_saved_model)
        if "train_load_error" in st.session_state:
            c_load.error(st.session_state.pop("train_load_error"))


name, architecture, training, pressed, auto = train_form.settings()
st.title("🏋️ Train a CNN")
st.markdown("Choose the data and the network, then watch it learn. **Learning** = the network guesses, measures "
            "its error (the *loss*), feeds the error back and nudges every weight, one batch at a time. "
            "Every setting in the sidebar is the designer's choice: move one and the network retrains here.")

config, data = wanted_config(name, architecture, training)
train_if_asked(config, data, pressed, auto)
result = session.peek_current_model()
if result is None:
    st.stop()
try:
    server.dataset(result.config.dataset)
except ValueError as err:
    st.warning(f"Your current model cannot be shown: {err}")
    st.stop()
st.divider()
results(result)
saved_models(result)
take_away(result)

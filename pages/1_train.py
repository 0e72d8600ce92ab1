"""Train page: every architecture and training setting as a widget; moving one retrains."""
import re

import pandas as pd
import streamlit as st

import server
import session
import tasks
from layerlens import plots
from layerlens.formatting import percent
from layerlens.checkpoints import load_checkpoint, save_checkpoint
from layerlens.data import DATASETS, FOLDER_PREFIX, FOLDERS_SETTING, SAMPLE, folders_root, mirror_by_default
from layerlens.inspection import layer_table
from layerlens.nets import ACTIVATIONS, PRESETS, NetConfig
from layerlens.training import (OPTIMIZERS, PRESET_TRAINING, RECOMMENDED_PRESET, SCHEDULES, TrainConfig,
                                training_problem)

FOLDER = "an image folder…"
LEARNING_RATES = [0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0]
TRAIN_SIZES = [100, 300, 1000, 3000, 10000, 30000, "all"]
CHANNELS = [2, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 256]
DENSE = [0, 16, 32, 64, 84, 128, 256]


def show_network(net: NetConfig) -> None:
    """Set the architecture widgets to net's values."""
    st.session_state.update(
        train_blocks=len(net.channels), train_kernel=net.kernel_size, train_first_kernel=net.first_kernel_size,
        train_padding=net.padding,
        train_bn=net.batch_norm, train_act=net.activation, train_dropout=net.dropout, train_dense=net.dense,
        **{f"train_ch{i + 1}": c for i, c in enumerate(net.channels)})
    for i in range(len(net.channels), 4):  # blocks it lacks start at twice the last width
        st.session_state[f"train_ch{i + 1}"] = min(256, 2 * st.session_state[f"train_ch{i}"])


def apply_preset() -> None:
    """Set every architecture and training widget to the chosen preset's values."""
    preset = st.session_state.train_preset
    show_network(NetConfig(**PRESETS[preset]))
    training = PRESET_TRAINING[preset]
    st.session_state.update(train_epochs=training["epochs"], train_batch=training["batch_size"],
                            train_lr=training["learning_rate"], train_auto=preset != "deep")  # big: train on request


def load_saved_model() -> None:
    """Make the chosen saved model current and set every widget to its settings (so it is not retrained)."""
    try:
        loaded = load_checkpoint(server.models_dir() / st.session_state.train_load_name)
        server.dataset(loaded.config.dataset)  # refuse a model whose data is missing here
    except ValueError as err:
        st.session_state.train_load_error = str(err)
        return
    config = loaded.config
    folder = config.dataset.startswith(FOLDER_PREFIX)
    if folder:
        st.session_state.train_folder = config.dataset[len(FOLDER_PREFIX):]
    show_network(config.net)
    st.session_state.update(
        train_dataset=FOLDER if folder else config.dataset, train_optimizer=config.optimizer,
        train_lr=config.learning_rate, train_batch=config.batch_size, train_epochs=config.epochs,
        train_size=config.train_size or "all", train_schedule=config.schedule, train_augment=config.augment,
        train_seed=config.seed)
    session.set_current_model(loaded, rerun=False)


def choices(options: list, key: str) -> list:
    """options, plus the widget's current value if a loaded model brought one that is not among them."""
    value = st.session_state.get(key)
    if value is None or value in options:
        return options
    numbers = sorted([o for o in options if o != "all"] + [value])
    return numbers + ["all"] if "all" in options else numbers


def use_sample() -> None:
    st.session_state.train_dataset = SAMPLE
    pick_recommended_preset()


def pick_recommended_preset() -> None:
    name = st.session_state.train_dataset
    st.session_state.update(train_preset=RECOMMENDED_PRESET.get(name, "tiny"),
                            train_augment=mirror_by_default(FOLDER_PREFIX if name == FOLDER else name))
    apply_preset()


if "train_preset" not in st.session_state:
    st.session_state.update(train_preset="tiny", train_size="all", train_save_name="my-model")
    apply_preset()

st.title("🏋️ Train a CNN")
st.markdown("Choose the data and the network, then watch it learn. **Learning** = the network guesses, measures "
            "its error (the *loss*), feeds the error back and nudges every weight, one batch at a time. "
            "Every setting in the sidebar is the designer's choice: move one and the network retrains here.")

with st.sidebar.expander("**Data**", expanded=True):
    choice = st.selectbox("Dataset", [*DATASETS, FOLDER], key="train_dataset", on_change=pick_recommended_preset)
    name = choice
    if choice in DATASETS:
        st.caption(DATASETS[choice][0])
    else:
        path = st.text_input("Folder with train/<class>/ and test/<class>/ (or a .tar.gz of one)", key="train_folder",
                             help=f"Read from inside {folders_root()} (the teacher sets it with {FOLDERS_SETTING}); "
                                  "type a name relative to it.")
        name = f"{FOLDER_PREFIX}{path.strip()}" if path.strip() else None
    st.selectbox("Preset", list(PRESETS), key="train_preset", on_change=apply_preset,
                 help="tiny: 3 small blocks · lenet: LeCun's classic · wide: 3 blocks of more channels, for clothes · "
                      "deep: 4 wide blocks for colour photos")
    st.select_slider("Training images", choices(TRAIN_SIZES, "train_size"), key="train_size",
                     help="More data usually means better accuracy, but slower training.")
    auto = st.toggle("Retrain when a setting changes", key="train_auto",
                     help="Turn off for big models, then press Train.")
    pressed = st.button("Train now", type="primary", key="train_btn_train")
with st.sidebar.expander("**Architecture**", expanded=True):
    blocks = st.slider("Conv blocks (conv → activation → pool)", 1, 4, key="train_blocks")
    channels = tuple(st.select_slider(f"Channels in block {i}", choices(CHANNELS, f"train_ch{i}"), key=f"train_ch{i}")
                     for i in range(1, blocks + 1))
    kernel = st.select_slider("Kernel size", choices([1, 3, 5, 7], "train_kernel"), key="train_kernel")
    first_kernel = st.select_slider("Block 1 kernel size (0 = the same)", choices([0, 3, 5, 7], "train_first_kernel"),
                                    key="train_first_kernel", help="Bigger first kernels show clearer edge detectors.")
    padding = st.checkbox("Padding (keep the map size through each conv)", key="train_padding")
    batch_norm = st.checkbox("Batch-norm", key="train_bn")
    activation = st.selectbox("Activation", list(ACTIVATIONS), key="train_act")
    dense = st.select_slider("Dense layer width (0 = none)", choices(DENSE, "train_dense"), key="train_dense")
    dropout = st.slider("Dropout", 0.0, 0.7, step=0.05, key="train_dropout")
with st.sidebar.expander("**Training**", expanded=True):
    optimizer = st.selectbox("Optimizer", OPTIMIZERS, key="train_optimizer")
    lr = st.select_slider("Learning rate", choices(LEARNING_RATES, "train_lr"), key="train_lr")
    batch = st.select_slider("Batch size", choices([16, 32, 64, 128, 256, 512], "train_batch"), key="train_batch")
    epochs = st.slider("Epochs (passes over the data)", 1, 30, key="train_epochs")
    augment = st.checkbox("Mirror images at random (photos, not digits)", key="train_augment",
                          help="Each batch flips half its images left-right: more variety from the same data.")
    schedule = st.selectbox("Learning-rate schedule", SCHEDULES, key="train_schedule",
                            help="onecycle warms the learning rate up, then lowers it: fast and stable")
    seed = st.number_input("Random seed", 0, 9999, key="train_seed")

try:
    data = server.dataset(name) if name else None
except ValueError as err:
    st.error(str(err))
    st.button("Use the offline sample", key="train_btn_sample", on_click=use_sample)
    data = None

config = None
if data is not None:
    try:
        net = NetConfig(in_channels=data.channels, image_size=data.image_size, num_classes=data.num_classes,
                        mean=data.mean, std=data.std, channels=channels, kernel_size=kernel,
                        first_kernel_size=first_kernel, padding=padding, batch_norm=batch_norm, activation=activation,
                        dropout=dropout, dense=dense)
        size = st.session_state.train_size
        size = 0 if size == "all" or size >= len(data.x_train) else size  # "all" and "more than there is" agree
        config = TrainConfig(net=net, dataset=data.name, optimizer=optimizer, learning_rate=lr, batch_size=batch,
                             epochs=epochs, train_size=size, schedule=schedule, augment=augment, seed=int(seed))
        config.validate()
    except ValueError as err:
        st.error(f"This network can't be built: {err}")
        config = None

current = session.peek_current_model()
if config is not None and (current is None or current.config != config):
    if pressed or server.model_cache().get(config) is not None or (auto and not session.cancelled(config)):
        session.set_current_model(tasks.train_with_progress(config, data))
    elif session.cancelled(config):
        st.info("You cancelled the training of these settings. Press **Train now** to train them after all.")
    else:
        st.info("Settings changed. Press **Train now** to train this network (auto-retrain is off).")

result = session.peek_current_model()
if result is None:
    st.stop()
st.divider()
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
st.plotly_chart(plots.history_figure(result.history), key="train_history")

st.subheader("The network, layer by layer")
st.caption("Each box is a layer; its output (channels × height × width) is the next layer's input. "
           "The numbers under it are its learned weights. Real networks range from hundreds of weights to billions.")
rows = layer_table(result.model)
st.plotly_chart(plots.architecture_figure(rows), key="train_architecture")
with st.expander("As a table"):
    st.dataframe(pd.DataFrame(rows), hide_index=True)

st.subheader("Which classes get confused?")
st.caption("Rows are the true class, columns the network's answer: the diagonal is right, everything else a mistake.")
shown_data = server.dataset(result.config.dataset)
st.plotly_chart(plots.confusion_figure(server.test_confusion(result), shown_data.classes),
                key="train_confusion")

with st.expander("Saved models (models/ folder)"):
    c_save, c_load = st.columns(2)
    model_name = c_save.text_input("Name", key="train_save_name")
    if c_save.button("Save the current model", key="train_btn_save"):
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", model_name):
            c_save.error("Use 1–40 letters, digits, '-' or '_' for the name.")
        else:
            c_save.success(f"Saved as {save_checkpoint(result, server.models_dir() / f'{model_name}.pt')}")
    saved = sorted(p.name for p in server.models_dir().glob("*.pt"))
    c_load.selectbox("Saved model", saved, key="train_load_name")
    c_load.button("Load it", key="train_btn_load", disabled=not saved, on_click=load_saved_model)
    if "train_load_error" in st.session_state:
        c_load.error(st.session_state.pop("train_load_error"))

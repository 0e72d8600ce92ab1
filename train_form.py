"""The Train page's settings: one widget per setting of a TrainConfig, presets and saved models that set them all.

Every train_* widget lives here, read by settings() and written only by the callbacks below (a preset, a dataset's
recommended preset, a loaded model)."""
from __future__ import annotations

import streamlit as st

import page_list
import server
import session
import widgets
from layerlens.checkpoints import ModelExists, load_checkpoint, save_named
from layerlens.data import (DATASETS, FOLDER_PREFIX, FOLDERS_SETTING, SAMPLE, folders_root, mirror_by_default,
                            shown_name)
from layerlens.nets import ACTIVATIONS, MAX_BLOCKS, PRESETS, NetConfig
from layerlens.training import OPTIMIZERS, PRESET_TRAINING, RECOMMENDED_PRESET, SCHEDULES, TrainConfig

FOLDER = "an image folder…"
LEARNING_RATES = [0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0]
TRAIN_SIZES = [100, 300, 1000, 3000, 10000, 30000, "all"]
CHANNELS = [2, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 256]
DENSE = [0, 16, 32, 64, 84, 128, 256]
KERNELS, FIRST_KERNELS, BATCHES = [1, 3, 5, 7], [0, 3, 5, 7], [16, 32, 64, 128, 256, 512]
MAX_EPOCHS, MAX_DROPOUT = 30, 0.7
HARDEST = [0.1, 0.25, 0.33, 0.5, 0.66, 1.0]  # share of the training images each epoch after the first trains on
PRESET_HELP = ("tiny: 3 small blocks · lenet: LeCun's classic · wide: 3 blocks of more channels, for clothes · "
               "deep: 4 wide blocks for colour photos")


def show_network(net: NetConfig) -> None:
    """Set the architecture widgets to net's values."""
    st.session_state.update(
        train_blocks=len(net.channels), train_kernel=net.kernel_size, train_first_kernel=net.first_kernel_size,
        train_padding=net.padding, train_bn=net.batch_norm, train_act=net.activation, train_dropout=net.dropout,
        train_dense=net.dense, **{f"train_ch{i + 1}": c for i, c in enumerate(net.channels)})
    for i in range(len(net.channels), MAX_BLOCKS):  # blocks it lacks start at twice the last width
        st.session_state[f"train_ch{i + 1}"] = min(CHANNELS[-1], 2 * st.session_state[f"train_ch{i}"])


def apply_preset() -> None:
    """Set every architecture and training widget to the chosen preset's values."""
    preset = st.session_state.train_preset
    show_network(NetConfig(**PRESETS[preset]))
    training = PRESET_TRAINING[preset]
    st.session_state.update(train_epochs=training["epochs"], train_batch=training["batch_size"],
                            train_lr=training["learning_rate"], train_hardest=training.get("hardest", 1.0),
                            train_pool_first=training.get("pool_before_norm", False),
                            train_auto=preset != "deep")  # big: train on request


def pick_recommended_preset() -> None:
    name = st.session_state.train_dataset
    st.session_state.update(train_preset=RECOMMENDED_PRESET.get(name, "tiny"),
                            train_augment=mirror_by_default(FOLDER_PREFIX if name == FOLDER else name))
    apply_preset()


def use_sample() -> None:
    st.session_state.train_dataset = SAMPLE
    pick_recommended_preset()


SAVE_PENDING = "train_save_pending"  # (name, why it waits) of a model to save over, until Replace it is pressed


def _save(result, name: str, replace: bool) -> tuple[str, str]:
    """Save result under name; what to show: ("success" | "warning" | "error", the sentence)."""
    st.session_state.pop(SAVE_PENDING, None)
    try:
        path = save_named(result, server.models_dir(), name, replace=replace)
    except ModelExists as err:  # saving over a saved model is asked first (a shipped one is refused: ValueError)
        st.session_state[SAVE_PENDING] = (name, str(err))
        return "warning", str(err)
    except ValueError as err:
        return "error", str(err)
    return "success", f"Saved as {path}"


def save_current_model(column, result) -> None:
    """The name box and Save button; a name already taken is saved over only after a second press, on Replace it."""
    name = column.text_input("Name", key="train_save_name")
    shown = _save(result, name, replace=False) if column.button("Save the current model", key="train_btn_save") \
        else None
    pending = st.session_state.get(SAVE_PENDING)
    if pending and pending[0] == name:  # asked on an earlier press of Save
        if column.button("Replace it", key="train_btn_replace"):
            shown = _save(result, name, replace=True)
        else:
            shown = ("warning", pending[1])
    if shown:
        getattr(column, shown[0])(shown[1])


def load_saved_model() -> None:
    """Make the chosen saved model current and set every widget to its settings (so it is not retrained)."""
    try:
        loaded = load_checkpoint(server.models_dir() / st.session_state.train_load_name)
        server.dataset(loaded.config.dataset)  # refuse a model whose data is missing here
    except ValueError as err:
        st.session_state.train_load_error = str(err)
        return
    show_config(loaded.config)
    session.set_current_model(loaded, rerun=False)


def show_config(config: TrainConfig) -> None:
    """Set every widget to config's settings (a loaded model's, or a link's), so the Train page shows that model."""
    folder = config.dataset.startswith(FOLDER_PREFIX)
    if folder:
        st.session_state.train_folder = shown_name(config.dataset)[len(FOLDER_PREFIX):]
    show_network(config.net)
    st.session_state.update(
        train_dataset=FOLDER if folder else config.dataset, train_optimizer=config.optimizer,
        train_lr=config.learning_rate, train_batch=config.batch_size, train_epochs=config.epochs,
        train_size=config.train_size or "all", train_schedule=config.schedule, train_augment=config.augment,
        train_seed=config.seed, train_hardest=config.hardest, train_pool_first=config.pool_before_norm)
    widgets.default("train_preset", "tiny")  # the first visit's defaults are not applied over it


def choices(options: list, key: str) -> list:
    """options, plus the widget's current value if a loaded model brought one that is not among them."""
    value = st.session_state.get(key)
    if value is None or value in options:
        return options
    numbers = sorted([o for o in options if o != "all"] + [value])
    return numbers + ["all"] if "all" in options else numbers


NEWER_IMAGES_KEY = "train_folder_newer"  # the folder version the visitor left for the folder's images as they are now


def _as_the_model_saw_it(name: str) -> str:
    """name, or while it names the folder the visitor's model was trained on, that folder as the model saw it: the
    teacher adding images during class never swaps the images under a model on screen (nor retrains it unasked).
    When the folder has changed, a note and a button offer its images as they are now."""
    current = session.peek_current_model()
    if current is None or shown_name(current.config.dataset) != name or \
            st.session_state.get(NEWER_IMAGES_KEY) == current.config.dataset:  # left: until its next model
        return name
    try:
        server.dataset(current.config.dataset)
    except ValueError:  # the images it learned from are no longer kept: the folder as it is now
        return name
    now = server.folder_now(name)
    if now and now != current.config.dataset:
        st.info("The teacher has changed this folder since your model was trained (images added, removed or "
                "replaced). Your model still shows the images it learned from.")
        st.button("Use the folder's images now", key="train_btn_newer_images",
                  on_click=lambda left=current.config.dataset: st.session_state.update({NEWER_IMAGES_KEY: left}))
    return current.config.dataset


def _data() -> tuple[str | None, bool, bool]:
    """The dataset's name (None while no folder is typed), whether Train was pressed, whether to retrain at once."""
    choice = st.selectbox("Dataset", [*DATASETS, FOLDER], key="train_dataset", on_change=pick_recommended_preset)
    name = choice
    if choice in DATASETS:
        st.caption(DATASETS[choice][0])
    else:
        path = st.text_input("Folder with train/<class>/ and test/<class>/ (or a .tar.gz of one)", key="train_folder",
                             help=f"Read from inside {folders_root()} (the teacher sets it with {FOLDERS_SETTING}); "
                                  "type a name relative to it.")
        name = _as_the_model_saw_it(f"{FOLDER_PREFIX}{path.strip()}") if path.strip() else None
        page_list.page_link(page_list.BY_TITLE["Your images"], "Or upload a .zip, or take photos with the camera")
    st.selectbox("Preset", list(PRESETS), key="train_preset", on_change=apply_preset, help=PRESET_HELP)
    st.select_slider("Training images", choices(TRAIN_SIZES, "train_size"), key="train_size",
                     help="More data usually means better accuracy, but slower training.")
    auto = st.toggle("Retrain when a setting changes", key="train_auto",
                     help="Turn off for big models, then press Train.")
    pressed = st.button("Train now", type="primary", key="train_btn_train")
    return name, pressed, auto


def _architecture() -> dict:
    """NetConfig's settings, as the widgets say."""
    blocks = st.slider("Conv blocks (conv → activation → pool)", 1, MAX_BLOCKS, key="train_blocks")
    return dict(
        channels=tuple(st.select_slider(f"Channels in block {i}", choices(CHANNELS, f"train_ch{i}"), key=f"train_ch{i}")
                       for i in range(1, blocks + 1)),
        kernel_size=st.select_slider("Kernel size", choices(KERNELS, "train_kernel"), key="train_kernel"),
        first_kernel_size=st.select_slider("Block 1 kernel size (0 = the same)",
                                           choices(FIRST_KERNELS, "train_first_kernel"), key="train_first_kernel",
                                           help="Bigger first kernels show clearer edge detectors."),
        padding=st.checkbox("Padding (keep the map size through each conv)", key="train_padding"),
        batch_norm=st.checkbox("Batch-norm", key="train_bn"),
        activation=st.selectbox("Activation", list(ACTIVATIONS), key="train_act"),
        dense=st.select_slider("Dense layer width (0 = none)", choices(DENSE, "train_dense"), key="train_dense"),
        dropout=st.slider("Dropout", 0.0, MAX_DROPOUT, step=0.05, key="train_dropout"))


def _training() -> dict:
    """TrainConfig's training settings, as the widgets say (the training size apart)."""
    return dict(
        optimizer=st.selectbox("Optimizer", OPTIMIZERS, key="train_optimizer"),
        learning_rate=st.select_slider("Learning rate", choices(LEARNING_RATES, "train_lr"), key="train_lr"),
        batch_size=st.select_slider("Batch size", choices(BATCHES, "train_batch"), key="train_batch"),
        epochs=st.slider("Epochs (passes over the data)", 1, MAX_EPOCHS, key="train_epochs"),
        hardest=st.select_slider(
            "After epoch 1, train on", choices(HARDEST, "train_hardest"), key="train_hardest",
            format_func=lambda share: "every image" if share >= 1 else f"{share:.0%} hardest",  # one line under the bar
            help="Each epoch after the first trains on this share of the images, drawn by their loss when the "
                 "network last saw them: mostly those it still gets wrong, so an epoch takes a fraction of the time. "
                 "The offline digits start with 50%, Fashion-MNIST with 33%: the same accuracy in less time. Where "
                 "that would leave fewer than 100 weight updates (a small set), every image, every epoch."),
        pool_before_norm=st.checkbox(
            "Pool before batch-norm while training", key="train_pool_first", disabled=not st.session_state.train_bn,
            help="Training runs each block as conv → pool → batch-norm → activation, so batch-norm and the activation "
                 "work on a quarter of the values: a step 1.2–1.3× faster. Once trained it is the same network, and "
                 "every page shows it in its own order, conv → batch-norm → activation → pool: batch-norm only "
                 "scales and shifts each channel (kept from flipping its sign), and the activation rises with its "
                 "input, so the largest of four values stays the largest. The digits start with it on; CIFAR-10 "
                 "lost 0.4 points with it, so photos start with it off. Only with batch-norm."),
        augment=st.checkbox("Mirror images at random (photos, not digits)", key="train_augment",
                            help="Each batch flips half its images left-right: more variety from the same data."),
        schedule=st.selectbox("Learning-rate schedule", SCHEDULES, key="train_schedule",
                              help="onecycle warms the learning rate up, then lowers it: fast and stable"),
        seed=int(st.number_input("Random seed", 0, 9999, key="train_seed")))


def settings() -> tuple[str | None, dict, dict, bool, bool]:
    """The sidebar's three groups of settings: dataset name, architecture, training, pressed, auto."""
    if "train_preset" not in st.session_state:  # the first visit: the default preset's settings
        widgets.default("train_preset", "tiny")
        apply_preset()
    for key, value in {"train_size": "all", "train_save_name": "my-model", "train_auto": True,
                       "train_hardest": 1.0, "train_pool_first": False}.items():
        widgets.default(key, value)
    with st.sidebar.expander("**Data**", expanded=True):
        name, pressed, auto = _data()
    with st.sidebar.expander("**Architecture**", expanded=True):
        architecture = _architecture()
    with st.sidebar.expander("**Training**", expanded=True):
        training = _training()
    return name, architecture, training, pressed, auto


def build_config(data, architecture: dict, training: dict) -> TrainConfig:
    """The TrainConfig the widgets describe for data; ValueError in words when it cannot be built."""
    net = NetConfig(in_channels=data.channels, image_size=data.image_size, num_classes=data.num_classes,
                    mean=data.mean, std=data.std, **architecture)
    size = st.session_state.train_size
    size = 0 if size == "all" or size >= len(data.x_train) else size  # "all" and "more than there is" agree
    training = {**training, "pool_before_norm": training.get("pool_before_norm", False) and net.batch_norm}
    config = TrainConfig(net=net, dataset=data.name, train_size=size, **training)
    config.validate()
    return config

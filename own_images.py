"""The Your images page's widgets: a .zip of the class's images, or photos taken class by class, become an image
folder (layerlens.uploads) and the Train page's dataset; the visitor's current model stays until that page trains."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

import page_list
import server
import session
import train_form
import widgets
from layerlens.data import FOLDER_PREFIX, folders_root
from layerlens.formatting import plural
from layerlens.uploads import (MAX_PHOTOS, check_class_name, MIN_PER_CLASS, STORED_MB, STORED_SETTING, UNPACKED_MB,
                               UNPACKED_SETTING, UPLOAD_MB, UPLOAD_SETTING, Limits, UploadedImages, folder_from_photos,
                               folder_from_zip, stored_photo, suggested_training)

ERROR_KEY = "images_error"  # a refusal, shown once after the rerun that follows it
ZIP, CAMERA = "A .zip of images", "The camera"
EXAMPLES = 10  # images shown per class
BY_CLASS = """my-images.zip
├── rock/
│   ├── 001.jpg
│   └── …
└── paper/
    └── …"""
SPLIT = """my-images.zip
├── train/
│   ├── rock/ …
│   └── paper/ …
└── test/
    ├── rock/ …
    └── paper/ …"""


def limits() -> Limits:
    """This server's limits on uploads ($LAYERLENS_UPLOAD_MB, $LAYERLENS_UNPACKED_MB, $LAYERLENS_UPLOADS_MB)."""
    return Limits(server.megabytes(UPLOAD_SETTING, UPLOAD_MB), server.megabytes(UNPACKED_SETTING, UNPACKED_MB),
                  server.megabytes(STORED_SETTING, STORED_MB))


def train_on(uploaded: UploadedImages) -> None:
    """Make the folder the Train page's dataset, with settings for a small folder (see suggested_training)."""
    session.set_uploaded_images(uploaded)
    st.session_state.update(train_dataset=train_form.FOLDER, train_folder=uploaded.dataset[len(FOLDER_PREFIX):])
    train_form.pick_recommended_preset()  # the tiny network, mirrored images
    suggested = suggested_training(sum(uploaded.train_counts.values()), train_form.MAX_EPOCHS)
    st.session_state.update(train_size="all", train_auto=True, train_batch=suggested["batch_size"],
                            train_epochs=suggested["epochs"])


def _train_on_if_new(uploaded: UploadedImages) -> None:
    """The Train button: make the folder the dataset again only if the visitor has chosen another since (so the
    settings they changed for it stay)."""
    if st.session_state.get("train_dataset") != train_form.FOLDER or \
            st.session_state.get("train_folder") != uploaded.dataset[len(FOLDER_PREFIX):]:
        train_on(uploaded)


def _write(make) -> None:
    """Run make() (an upload's checks and writing); its folder becomes the dataset, or its refusal is kept to show."""
    try:
        train_on(make())
    except ValueError as err:
        st.session_state[ERROR_KEY] = f"{err} Your current model and dataset are unchanged."


def show_refusal() -> None:
    if ERROR_KEY in st.session_state:
        st.error(st.session_state.pop(ERROR_KEY))


def zip_upload() -> None:
    """The uploader; an upload is checked and written at once, with its progress."""
    st.markdown("Put the images of each class in a folder named after the class, zip those folders (right-click → "
                "*Compress*) and drop the zip here. LayerLens sets 20% of every class aside as test images, unless "
                "the zip has its own `train/` and `test/` folders.")
    c_class, c_split = st.columns(2)
    c_class.code(BY_CLASS, language=None)
    c_split.code(SPLIT, language=None)
    try:
        cap = limits()
    except ValueError as err:  # a setting that is not a number of megabytes
        st.error(str(err))
        return
    count = st.session_state.get("images_zip_count", 0)  # a new uploader after each upload: the file is let go
    upload = st.file_uploader("Your zip", type=["zip"], key=f"images_zip_{count}",
                              max_upload_size=max(1, cap.upload // 2**20),
                              help=f"Up to {cap.upload // 2**20:,} MB ({UPLOAD_SETTING}); PNG, JPEG, BMP, GIF or "
                                   f"WebP images; at least 2 classes and {MIN_PER_CLASS} images a class.")
    if upload is None:
        return
    bar = st.progress(0.0, text=f"Unpacking {upload.name}…")

    def progress(done: int, total: int) -> None:
        if done == total or done % max(1, total // 50) == 0:
            bar.progress(done / total, text=f"Checking {upload.name}: image {done:,} of {total:,}…")

    _write(lambda: folder_from_zip(upload.getvalue(), folders_root(), cap, progress))
    st.session_state.images_zip_count = count + 1
    st.rerun()


def _undo() -> None:
    session.set_class_photos(session.class_photos()[:-1])


def _start_again() -> None:
    session.set_class_photos([])


def _name_problem(name: str) -> str | None:
    try:
        check_class_name(name)
    except ValueError as err:
        return str(err)
    return None


def camera() -> None:
    """Name the classes, take photos of each in turn; then write them as a folder."""
    photos = session.class_photos()
    widgets.default("images_class_names", ", ".join(dict.fromkeys(label for label, _ in photos)))
    st.text_input("Your classes, separated by commas", key="images_class_names", placeholder="rock, paper, scissors")
    names = list(dict.fromkeys(n.strip() for n in st.session_state.images_class_names.split(",") if n.strip()))
    wrong = [problem for problem in map(_name_problem, names) if problem]
    if wrong:  # before any photo is taken under a name no folder can have
        st.error(wrong[0])
    elif not names:
        st.info("Type the names of two or more classes, then take photos of each in turn.")
    elif len(photos) >= MAX_PHOTOS:
        st.info(f"That is {MAX_PHOTOS} photos, as many as LayerLens keeps for one visitor: use them, or undo some.")
    else:
        widgets.default("images_label", names[0], names)
        label = st.segmented_control("Taking photos of", names, key="images_label") or names[0]
        count = st.session_state.get("images_camera_count", 0)  # a fresh camera after each photo
        shot = st.camera_input(f"A photo of {label}", key=f"images_camera_{count}",
                               help="Browsers open the camera only on localhost or over https.")
        if shot is not None:
            try:
                session.set_class_photos([*photos, (label, stored_photo(shot.getvalue()))])
            except ValueError as err:
                st.session_state[ERROR_KEY] = f"That photo could not be read ({err}); take it again."
            st.session_state.images_camera_count = count + 1
            st.rerun()
    if not photos:
        return
    st.caption(f"What the network will see: each photo's centre square at 32×32 pixels. Take at least "
               f"{MIN_PER_CLASS} of each class (20 or more work better), from different sides and distances.")
    for label in dict.fromkeys(label for label, _ in photos):
        mine = [photo for name, photo in photos if name == label]
        st.markdown(f"**{label}**: {plural(len(mine), 'photo')}")
        st.image(mine[-24:], width=48)
    c_use, c_undo, c_clear = st.columns(3)
    c_undo.button("Undo the last photo", key="images_btn_undo", on_click=_undo)
    c_clear.button("Start again", key="images_btn_clear", on_click=_start_again)
    if c_use.button("Use these photos", type="primary", key="images_btn_use"):
        with st.spinner(f"Writing {plural(len(photos), 'photo')}…"):
            _write(lambda: folder_from_photos(photos, folders_root(), limits()))
        st.rerun()


def ready() -> None:
    """The visitor's last upload: its classes, a few of its images, what was left out, and the way to train it."""
    uploaded = session.uploaded_images()
    if uploaded is None:
        return
    st.subheader("Your images, ready to train")
    train, test = sum(uploaded.train_counts.values()), sum(uploaded.test_counts.values())
    st.success(f"**{len(uploaded.classes)} classes**, {train:,} training and "
               f"{test:,} test images, in the folder `{uploaded.dataset[len(FOLDER_PREFIX):]}`.")
    st.dataframe(pd.DataFrame({"class": uploaded.classes, "training images": list(uploaded.train_counts.values()),
                               "test images": [uploaded.test_counts.get(c, 0) for c in uploaded.classes]}),
                 hide_index=True)
    for note in uploaded.notes:
        st.caption(note)
    try:
        data = server.dataset(uploaded.dataset)
    except ValueError as err:  # the folder was deleted since, say
        st.error(str(err))
        return
    for k, name in enumerate(data.classes[:EXAMPLES]):
        images = data.x_train[data.y_train == k][:EXAMPLES]  # (N, C, H, W) in [0, 1]
        tiles = (images.permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)
        st.image([tile.squeeze(-1) if tile.shape[-1] == 1 else tile for tile in tiles], width=48)
        st.caption(f"{name}: {plural(uploaded.train_counts.get(name, 0), 'training image')}, as the network reads them")
    if st.button("Train a CNN on them", type="primary", key="images_btn_train", on_click=_train_on_if_new,
                 args=(uploaded,)):
        st.switch_page(page_list.TRAIN.path)
    st.caption("The Train page trains on this folder with a small network and small batches; every other page then "
               "looks inside that model, and its link opens it in every student's browser on this server.")

"""Widgets pages share: pick a test image; draw, upload or pick the image the network reads."""
from __future__ import annotations

import secrets

import streamlit as st
import torch

from layerlens.data import ImageData, handwritten_digits
from layerlens.inputs import canvas_image, network_input, read_upload
from layerlens.nets import NetConfig

def default(key: str, value, allowed=None) -> None:
    """The one way a widget gets its default: the visitor's value for key is set to value unless it has one (one of
    `allowed`, when given: a value kept from another dataset or model may no longer be on offer). Widgets then
    take only key=, never value=."""
    if key not in st.session_state or (allowed is not None and st.session_state[key] not in allowed):
        st.session_state[key] = value


FOLLOWED = "widgets_followed"  # widget key → (what it was picked for, the value picked), for follow


def follow(key: str, value, context: str) -> None:
    """A default that follows context (the image a page shows): set as default does, and set again to the new pick
    when context changes, as long as the visitor left the widget at the page's last pick. So a neuron picked because
    it fires on one image is picked afresh for the next, while one the visitor chose stays."""
    followed = st.session_state.setdefault(FOLLOWED, {})
    picked = followed.get(key)
    fresh = key not in st.session_state or (
        picked is not None and picked[0] != context and st.session_state[key] == picked[1])
    if fresh:
        st.session_state[key] = value
        followed[key] = (context, value)


CANVAS = dict(stroke_width=22, stroke_color="#ffffff", background_color="#000000", height=280, width=280)
DRAW, UPLOAD, TEST_IMAGE = "Draw", "Upload a photo", "Test image"


def pick_test_image(prefix: str, labels: torch.Tensor, classes: tuple[str, ...], where: str = "test set") -> int:
    """Widgets to choose an image (of the test set, or the set `labels` come from) by class and example, plus a
    random pick; returns its index."""
    index_key, class_key = f"{prefix}_index", f"{prefix}_class"

    def pick_random() -> None:
        index = secrets.randbelow(len(labels))  # not the global random generator, which every visitor shares
        label = int(labels[index])
        st.session_state[class_key] = label
        st.session_state[index_key] = int((labels[:index] == label).sum())

    default(index_key, 0)
    default(class_key, 0, range(len(classes)))  # kept from a dataset with more classes
    c_class, c_pick, c_random = st.columns([2, 3, 1])
    wanted = c_class.selectbox("Class", range(len(classes)), format_func=lambda i: classes[i], key=class_key)
    in_class = torch.nonzero(labels == wanted).flatten().tolist()
    st.session_state[index_key] = min(st.session_state[index_key], len(in_class) - 1)
    position = c_pick.slider(f"Example of '{classes[wanted]}' ({len(in_class)} in the {where})", 0,
                             max(1, len(in_class) - 1), key=index_key, disabled=len(in_class) < 2)
    c_random.button("🎲 Random", key=f"{prefix}_btn_random", on_click=pick_random)
    return in_class[min(position, len(in_class) - 1)]


def _own_image(prefix: str, source: str, net: NetConfig, digits: bool) -> tuple[torch.Tensor | None, bool]:
    """The drawn or uploaded image as the network's input (None until there is one), and whether to fall back to
    a test image meanwhile."""
    if source == DRAW:
        from streamlit_drawable_canvas import st_canvas  # a component: only where a page draws, inside the server

        st.space("small")  # room for the canvas's own toolbar (undo, redo, clear)
        drawing = st_canvas(**CANVAS, key=f"{prefix}_canvas", return_image_data=True)
        picture = canvas_image(drawing.image_data if drawing is not None else None)
        if picture is None:
            st.info("Draw a digit in the black square with your mouse or finger.")
            return None, False
        try:
            return network_input(picture, net, digits), False
        except ValueError as err:  # painted all over: nothing stands out to read
            st.error(str(err))
            return None, False
    upload = st.file_uploader("A PNG, JPEG or WebP", type=["png", "jpg", "jpeg", "mpo", "webp"], key=f"{prefix}_upload")
    if upload is None:
        return None, True
    try:
        photo, notes = read_upload(upload.getvalue(), upload.name)
        for note in notes:
            st.caption(note)
        st.image(photo, width=220)
        return network_input(photo, net, digits), False
    except ValueError as err:
        st.error(str(err))
        return None, True


def choose_image(prefix: str, data: ImageData, net: NetConfig) -> torch.Tensor:
    """Draw, upload or pick a test image; stops the page until there is an image."""
    sources = ([DRAW] if net.in_channels == 1 and net.image_size == 28 else []) + [UPLOAD, TEST_IMAGE]
    default(f"{prefix}_source", sources[0], sources)
    source = st.segmented_control("Input", sources, key=f"{prefix}_source") or sources[0]
    image, fallback = None, source == TEST_IMAGE
    if source != TEST_IMAGE:
        image, fallback = _own_image(prefix, source, net, handwritten_digits(data.name))
    if fallback:
        if source != TEST_IMAGE:
            st.caption("Meanwhile, a test image:")
        image = data.x_test[pick_test_image(prefix, data.y_test, data.classes)]
    if image is None:
        st.stop()
    return image

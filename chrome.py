"""Page chrome: the one list of pages, the navigation and sidebar every page shares, and shared pickers."""
from __future__ import annotations

import secrets
from dataclasses import dataclass

import streamlit as st
import torch

import session
from layerlens.formatting import percent, plural


@dataclass(frozen=True)
class PageInfo:
    path: str
    title: str
    icon: str
    pitch: str = ""  # what a visitor does there, for the Home page's list


HOME = PageInfo("pages/home.py", "Home", "🔬")
TRAIN = PageInfo("pages/1_train.py", "Train", "🏋️", "move sliders, retrain in seconds, watch the loss fall")
PAGES = (
    HOME,
    TRAIN,
    PageInfo("pages/2_layers.py", "Layers", "🧅", "pick an image and follow it through every layer"),
    PageInfo("pages/3_features.py", "Filters & features", "🔎", "what each channel has learned"),
    PageInfo("pages/4_classic.py", "Traditional ML", "⚖️", "five classic models against the CNN, measured"),
    PageInfo("pages/5_neuron.py", "One neuron", "🔢", "draw a digit, follow the arithmetic to the answer"),
    PageInfo("pages/6_learning.py", "Learning", "📉", "the error fed back, one step at a time; and when it goes wrong"),
    PageInfo("pages/7_abstraction.py", "Abstraction", "🪜", "how separable the classes are at each layer"),
)
KEPT_WIDGETS = ("train_", "classic_")  # pages whose settings survive a visit to another page


def navigation() -> None:
    """Run the page the visitor asked for, inside the chrome every page shares (called once, by app.py)."""
    page = st.navigation([st.Page(p.path, title=p.title, icon=p.icon, default=p is HOME) for p in PAGES])
    st.set_page_config(page_title=f"LayerLens · {page.title}", page_icon="🔬", layout="wide")
    # Streamlit forgets the state of widgets that are not on screen; re-assigning it keeps the
    # Train page's settings when the visitor looks at another page and comes back.
    for key in [k for k in st.session_state if str(k).startswith(KEPT_WIDGETS) and "_btn_" not in str(k)]:
        st.session_state[key] = st.session_state[key]
    with st.sidebar:
        model_status()
    page.run()


def model_status() -> None:
    """The visitor's model in four lines."""
    result = session.peek_current_model()
    if result is None:
        st.caption("No model trained yet.")
        return
    m = result.metrics
    st.caption(f"**Model:** {plural(len(result.config.net.channels), 'conv block')}, {m['params']:,} weights  \n"
               f"**Data:** {result.config.dataset}, {plural(m['epochs'], 'epoch')} on {m['train_images']:,} images  \n"
               f"**Test accuracy:** {percent(m['test_accuracy'])}  \n**Trained on:** {m['device']}")


def page_link(page: PageInfo, label: str | None = None) -> None:
    st.page_link(page.path, label=label or page.title, icon=page.icon)


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

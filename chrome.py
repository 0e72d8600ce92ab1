"""Page chrome: the one list of pages, and the navigation and sidebar every page shares."""
from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

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
    PageInfo("pages/6_learning.py", "Learning", "📉",
             "the error fed back, one step at a time; and when it goes wrong"),
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

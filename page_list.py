"""The app's pages, listed once: what each is called, where it lives, what it is for, and its address."""
from __future__ import annotations

from dataclasses import dataclass

import streamlit as st


@dataclass(frozen=True)
class PageInfo:
    path: str
    title: str
    icon: str
    pitch: str = ""  # what a visitor does there, for the Home page's list
    view: str = ""  # the prefix of its widgets' keys: their values are the page's view, kept in its link

    @property
    def url(self) -> str:
        """Its address after the server's: the file's name without its number ('' for Home)."""
        return "" if self is HOME else self.path.removeprefix("pages/").removesuffix(".py").lstrip("0123456789_")


HOME = PageInfo("pages/home.py", "Home", "🔬")
TRAIN = PageInfo("pages/1_train.py", "Train", "🏋️", "move sliders, retrain in seconds, watch the loss fall")
PAGES = (
    HOME,
    TRAIN,
    PageInfo("pages/2_layers.py", "Layers", "🧅", "pick an image and follow it through every layer", "layers_"),
    PageInfo("pages/3_features.py", "Filters & features", "🔎", "what each channel has learned", "features_"),
    PageInfo("pages/4_classic.py", "Traditional ML", "⚖️", "five classic models against the CNN, measured",
             "classic_"),
    PageInfo("pages/5_neuron.py", "One neuron", "🔢", "draw a digit, follow the arithmetic to the answer", "neuron_"),
    PageInfo("pages/6_learning.py", "Learning", "📉",
             "the error fed back, one step at a time; and when it goes wrong", "learning_"),
    PageInfo("pages/7_abstraction.py", "Abstraction", "🪜", "how separable the classes are at each layer",
             "abstraction_"),
    PageInfo("pages/8_lesson.py", "Lesson", "🎓", "a guided path for the class: a question at every step, and the "
             "page that answers it"),
    PageInfo("pages/9_images.py", "Your images", "📷", "the class's own photos, from a zip or the camera, to train on"),
)
BY_TITLE = {p.title: p for p in PAGES}
PAGE_URLS = {p.path: p.url for p in PAGES}


def page_link(page: PageInfo, label: str | None = None) -> None:
    st.page_link(page.path, label=label or page.title, icon=page.icon)

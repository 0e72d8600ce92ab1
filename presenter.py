"""Presenter view and hidden controls: what a link's flags change in how a page looks.

?present=1 is for a projector: larger type, the Train page's advanced settings hidden; a link with it opens with the
sidebar closed.
?only=lr (or ?only=n,ep) leaves students only those Train settings; ?hide=seed,opt hides just those. Controls are
hidden by their widget keys (Streamlit gives each keyed widget the class st-key-<key>), so they keep their values."""
from __future__ import annotations

import re

import streamlit as st

import links

# a link's short name for a Train setting (as in links.MODEL_FIELDS) → the widgets that set it
CONTROLS = {
    "data": ("train_dataset", "train_folder"), "preset": ("train_preset",), "n": ("train_size",),
    "auto": ("train_auto",),
    "ch": ("train_blocks", "train_ch1", "train_ch2", "train_ch3", "train_ch4"), "k": ("train_kernel",),
    "k1": ("train_first_kernel",), "pad": ("train_padding",), "bn": ("train_bn",), "act": ("train_act",),
    "dense": ("train_dense",), "drop": ("train_dropout",),
    "opt": ("train_optimizer",), "lr": ("train_lr",), "bs": ("train_batch",), "ep": ("train_epochs",),
    "mirror": ("train_augment",), "sched": ("train_schedule",), "seed": ("train_seed",), "hard": ("train_hardest",),
    "pf": ("train_pool_first",),
}
# the sidebar's groups of Train settings: a group whose settings are all hidden is hidden too
GROUPS = (("k", "k1", "pad", "bn", "act", "dense", "drop", "ch"),
          ("opt", "lr", "bs", "ep", "hard", "pf", "mirror", "sched", "seed"))
ADVANCED = ("k1", "pad", "drop", "opt", "sched", "mirror", "seed", "bs", "hard", "pf")  # hidden in presenter view
SAVED_MODELS = "train_save_name"  # the Train page's saved-models box, hidden from students when settings are
KEY = re.compile(r"[a-z][a-z0-9_]*")


def presenting() -> bool:
    return links.flags().get("present") == "1"


def sidebar_state() -> str:
    """A page's first load from a link in presenter view (a slide's) starts with the sidebar closed: the whole
    projector for the page. Read from the address bar, as the link's flags are read only after the page is set up."""
    return "collapsed" if st.query_params.get("present") == "1" else "auto"


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if KEY.fullmatch(name.strip())]


def hidden_controls() -> set[str]:
    """The link names (and widget keys) of the controls this visitor does not see."""
    flags = links.flags()
    hidden = set(ADVANCED) if presenting() else set()
    if flags.get("only"):
        kept = set(_names(flags["only"]))  # link names, or a control's widget keys
        hidden |= {name for name, keys in CONTROLS.items() if name not in kept and not kept & set(keys)}
    return hidden | set(_names(flags.get("hide", "")))


def _selector(key: str) -> str:
    return f".st-key-{key}"


def style() -> str:
    """The page's CSS for this visitor's flags ('' when it has none)."""
    hidden = hidden_controls()
    keys = [key for name in sorted(hidden) for key in CONTROLS.get(name, (name,))]
    rules = []
    if keys:
        rules.append(", ".join(_selector(k) for k in keys) + " { display: none !important; }")
        groups = [group for group in GROUPS if set(group) <= hidden]
        rules += [f'[data-testid="stExpander"]:has({_selector(CONTROLS[group[0]][0])}) {{ display: none; }}'
                  for group in groups]
        if links.flags().get("only"):  # students with one setting should not save over the teacher's models
            rules.append(f'[data-testid="stExpander"]:has({_selector(SAVED_MODELS)}) {{ display: none; }}')
    if presenting():
        rules += [
            '[data-testid="stMain"] { font-size: 1.3rem; }',
            '[data-testid="stMain"] [data-testid="stMarkdownContainer"] p, [data-testid="stMain"] '
            '[data-testid="stMarkdownContainer"] li { font-size: 1.3rem; line-height: 1.5; }',
            '[data-testid="stMain"] [data-testid="stCaptionContainer"] p { font-size: 1.1rem; }',
            '[data-testid="stMain"] h1 { font-size: 3rem; } [data-testid="stMain"] h2 { font-size: 2.3rem; }',
            '[data-testid="stMain"] h3 { font-size: 1.9rem; }',
            '[data-testid="stMetricValue"] { font-size: 3rem; }',
        ]
    return "\n".join(rules)


def apply() -> None:
    """Put this visitor's flags into the page (nothing when there are none)."""
    css = style()
    if css:
        st.html(f"<style>{css}</style>")


def toggle() -> None:
    """The sidebar's switch into and out of presenter view (kept in the link, so a slide can open in it)."""
    st.session_state.chrome_present = presenting()
    st.toggle("📽️ Presenter view", key="chrome_present", on_change=_switch,
              help="Larger type for a projector, advanced settings hidden. Links copied now open in it too.")


def _switch() -> None:
    links.set_flag("present", "1" if st.session_state.chrome_present else None)

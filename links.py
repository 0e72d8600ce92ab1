"""A link for every state: the visitor's model (dataset, every Train setting, seed) and the page's view (test image,
block, channel, neuron, …) live in the address bar, so the same link in another browser rebuilds the same model (from
the cache, or trained once) and shows the same view.

restore() reads a link once per visitor, before the page draws; publish() writes the address bar after every run."""
from __future__ import annotations

import json
import urllib.parse

import streamlit as st

import server
import session
import tasks
import train_form
from layerlens.data import ImageData
from layerlens.nets import NetConfig
from layerlens.training import TrainConfig

VERSION = "1"  # links name their version: a link from a later LayerLens gets a sentence, not a traceback
RESTORED_KEY = "link_restored"  # set once the visitor's first run has read its link
VIEW_KEYS = "link_view"  # the widget keys a link set, until a run has shown them (see forget_view)
# query name → (TrainConfig field, NetConfig field): short names keep a link readable on a slide
MODEL_FIELDS = {"data": ("dataset", None), "ch": (None, "channels"), "k": (None, "kernel_size"),
                "k1": (None, "first_kernel_size"), "pad": (None, "padding"), "bn": (None, "batch_norm"),
                "act": (None, "activation"), "dense": (None, "dense"), "drop": (None, "dropout"),
                "opt": ("optimizer", None), "lr": ("learning_rate", None), "bs": ("batch_size", None),
                "ep": ("epochs", None), "n": ("train_size", None), "sched": ("schedule", None),
                "mirror": ("augment", None), "seed": ("seed", None), "hard": ("hardest", None),
                "pf": ("pool_before_norm", None)}
OPTIONAL_FIELDS = ("hard", "pf")  # added later: a link made before it existed trains as it did then (TrainConfig's default)
VIEW_TYPES = (bool, int, float, str)
NOTE_KEY = "link_note"  # a sentence about the link, shown once
# flags a link may carry besides the model and the view: presenter view, Train settings hidden from students, the
# lesson and its step; kept in the address bar on every page until changed
FLAG_NAMES = ("present", "only", "hide", "lesson", "step")
FLAGS_KEY = "link_flags"


def _text(value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (tuple, list)):
        return "-".join(str(v) for v in value)
    return str(value)


def model_params(config: TrainConfig) -> dict[str, str]:
    """The query parameters that rebuild config."""
    return {name: _text(getattr(config.net, net_field) if net_field else getattr(config, field))
            for name, (field, net_field) in MODEL_FIELDS.items()}


def _typed(text: str, like):
    """text read as the type of like (a default value of that field)."""
    if isinstance(like, bool):
        if text not in ("0", "1"):
            raise ValueError(f"expected 0 or 1, got {text!r}")
        return text == "1"
    if isinstance(like, tuple):
        return tuple(int(part) for part in text.split("-"))
    return type(like)(text)


def config_from(params: dict[str, str]) -> tuple[TrainConfig, ImageData]:
    """The TrainConfig a link describes, and its data; ValueError in words when it is impossible (unknown dataset, a network
    that cannot be built, a setting that is not a number)."""
    missing = [name for name in MODEL_FIELDS if name not in params and name not in OPTIONAL_FIELDS]
    if missing:
        raise ValueError(f"it lacks the settings {', '.join(missing)}")
    name = params["data"]
    data = server.dataset(name)  # ValueError (or DatasetUnavailable) in words for data this server lacks
    net, train = {}, {}
    net_defaults, train_defaults = NetConfig(), TrainConfig()
    for query, (field, net_field) in MODEL_FIELDS.items():
        if query == "data" or query not in params:
            continue
        try:
            if net_field:
                net[net_field] = _typed(params[query], getattr(net_defaults, net_field))
            else:
                train[field] = _typed(params[query], getattr(train_defaults, field))
        except ValueError as err:
            raise ValueError(f"its setting {query}={params[query]!r} is not valid ({err})") from err
    config = TrainConfig(net=NetConfig(in_channels=data.channels, image_size=data.image_size,
                                       num_classes=data.num_classes, mean=data.mean, std=data.std, **net),
                         dataset=data.name, **train)
    config.validate()
    return config, data


def view_params(prefix: str) -> dict[str, str]:
    """The page's view: its widgets' values (keys starting with prefix), as JSON text; none for a page without one."""
    if not prefix:
        return {}
    return {key: _view_text(value) for key, value in st.session_state.items()
            if isinstance(key, str) and key.startswith(prefix) and "_btn_" not in key
            and (isinstance(value, VIEW_TYPES) or (isinstance(value, list) and all(isinstance(v, VIEW_TYPES)
                                                                                   for v in value)))}


def _view_text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def params_for(config: TrainConfig, view: dict | None = None, link_flags: dict | None = None) -> dict[str, str]:
    """The query parameters of a link to config's model, a page's view (widget key → value) and flags."""
    return ({"v": VERSION} | model_params(config) | {key: _view_text(value) for key, value in (view or {}).items()}
            | (link_flags or {}))


def _view_value(text: str):
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, (*VIEW_TYPES, list)) else text


def restore(prefix: str) -> None:
    """On the visitor's first run: rebuild the link's model (from the cache, or trained once) and set the page's
    widgets to the link's view. An impossible link gets a sentence and leaves the visitor where they were."""
    note = st.session_state.pop(NOTE_KEY, None)
    if note:
        st.info(note)
    if st.session_state.get(RESTORED_KEY):
        return
    st.session_state[RESTORED_KEY] = True  # only the first run reads the link: later the address bar follows the page
    params = st.query_params.to_dict()
    st.session_state[FLAGS_KEY] = {name: params[name] for name in FLAG_NAMES if params.get(name)}
    if "v" not in params:
        return
    if params["v"] != VERSION:
        st.warning(f"This link was made by another version of LayerLens (link version {params['v']}, this one "
                   f"{VERSION}), so its settings may mean something else here. You see the default model instead.")
        return
    try:
        config, data = config_from(params)
    except ValueError as err:
        st.warning(f"This link's model can't be rebuilt here: {str(err).rstrip('.')}. You see the default model "
                   f"instead.")
        return
    train_form.show_config(config)
    session.set_current_model(tasks.train_with_progress(config, data), rerun=False)
    view = {key: _view_value(text) for key, text in params.items() if prefix and key.startswith(prefix)
            and "_btn_" not in key}
    st.session_state.update(view)
    st.session_state[VIEW_KEYS] = list(view)


def reopen() -> None:
    """Read the address bar again on the next run, as a first visit does (a lesson's step sets a new one)."""
    st.session_state[RESTORED_KEY] = False


def flags() -> dict[str, str]:
    """The link's flags (see FLAG_NAMES) for this visitor."""
    return st.session_state.get(FLAGS_KEY, {})


def set_flag(name: str, value: str | None) -> None:
    """Change one flag (None removes it); the address bar follows on this run's publish."""
    st.session_state[FLAGS_KEY] = {k: v for k, v in flags().items() if k != name} | ({name: value} if value else {})


def forget_view() -> bool:
    """After a widget refused a value the link set: drop the link's view (the page shows its defaults) and say so.
    False when no link set any."""
    keys = st.session_state.pop(VIEW_KEYS, None)
    if not keys:
        return False
    for key in keys:
        st.session_state.pop(key, None)
    st.session_state[NOTE_KEY] = ("Part of this link's view does not fit this model (an image, layer or channel it "
                                  "does not have), so the page shows its own choice there.")
    return True


def publish(prefix: str) -> None:
    """Write the visitor's model and this page's view into the address bar (only when they changed)."""
    st.session_state.pop(VIEW_KEYS, None)  # the page showed the link's view: from now on it is the visitor's
    result = session.peek_current_model()
    wanted = params_for(result.config, view_params(prefix), flags()) if result else flags()
    if wanted != st.query_params.to_dict():
        st.query_params.from_dict(wanted)


def share_link() -> None:
    """The address of this view, to copy for the class (the copy button sits on the box's corner)."""
    if not st.query_params:
        return
    base = st.context.url.split("?")[0] if st.context.url else ""
    with st.sidebar.popover("🔗 Link for the class", width="stretch"):
        st.caption("Opens this model and this view in any browser: the model comes from the server's cache (or is "
                   "trained once).")
        st.code(f"{base}?{urllib.parse.urlencode(st.query_params.to_dict())}", language=None, wrap_lines=True)

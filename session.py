"""What belongs to one visitor (one browser tab): their model, their traditional models, their training in line.

Each piece of state has its accessors here and is read or written nowhere else. What the server shares between
visitors is in server.py; the waits that fill this state (training, fitting) are in tasks.py."""
from __future__ import annotations

import uuid

import streamlit as st

from layerlens.classic import ClassicResult
from layerlens.jobs import Job
from layerlens.learning import HandSteps
from layerlens.training import TrainConfig, TrainResult
from layerlens.uploads import UploadedImages

MODEL_KEY = "current_model"  # the visitor's TrainResult
CLASSIC_KEY = "classic_models"  # the visitor's latest traditional models on raw pixels (ClassicResults)
QUEUE_JOB_KEY = "queue_job"  # the visitor's training job while it waits, so that Cancel can reach it
CANCELLED_KEY = "queue_cancelled"  # the config key of the visitor's last cancelled training
STEPS_KEY = "learning_steps"  # the network the visitor steps by hand on the Learning page
PHOTOS_KEY = "images_photos"  # the photos the visitor took on the Your images page: [(class, PNG as stored)]
UPLOADED_KEY = "images_uploaded"  # the image folder the visitor's last upload (or photos) became
EXPORTS_KEY = "page_exports"  # what the page drew in this run, for its downloads (charts.py)


def _keep(key: str, value) -> None:
    """Store value under key, or forget key for None."""
    if value is None:
        st.session_state.pop(key, None)
    else:
        st.session_state[key] = value


def visitor_id() -> str:
    """This visitor (browser tab): who a training job is for."""
    if "visitor_id" not in st.session_state:
        st.session_state.visitor_id = uuid.uuid4().hex
    return st.session_state.visitor_id


def peek_current_model() -> TrainResult | None:
    """The visitor's model if there is one (never trains: tasks.current_model does)."""
    return st.session_state.get(MODEL_KEY)


def set_current_model(result: TrainResult, rerun: bool = True) -> None:
    """Make result the visitor's model and rerun, so every part of the page shows it.

    Callbacks pass rerun=False: the page runs right after them anyway.
    """
    st.session_state[MODEL_KEY] = result
    if rerun:
        st.rerun()


def latest_classic_models(dataset: str) -> list[ClassicResult]:
    """The visitor's latest traditional models fitted on raw pixels of dataset (none before Traditional ML ran)."""
    return [r for r in st.session_state.get(CLASSIC_KEY, []) if r.config.dataset == dataset]


def set_latest_classic_models(results: list[ClassicResult]) -> None:
    st.session_state[CLASSIC_KEY] = results


def waiting_job() -> Job | None:
    """The visitor's training while it waits or runs."""
    return st.session_state.get(QUEUE_JOB_KEY)


def set_waiting_job(job: Job | None) -> None:
    _keep(QUEUE_JOB_KEY, job)


def cancelled(config: TrainConfig) -> bool:
    """Whether the visitor cancelled the training of exactly this config (so it is not started again unasked)."""
    return st.session_state.get(CANCELLED_KEY) == config.key()


def set_cancelled(config: TrainConfig | None) -> None:
    """Remember (or, with None, forget) the config whose training the visitor cancelled."""
    _keep(CANCELLED_KEY, config and config.key())


def hand_steps() -> HandSteps | None:
    """The network the visitor steps by hand on the Learning page, if any."""
    return st.session_state.get(STEPS_KEY)


def set_hand_steps(steps: HandSteps | None) -> None:
    _keep(STEPS_KEY, steps)


def page_exports() -> dict[str, dict]:
    """What the page drew in this run, for its zip: {"figures": key → (figure, summary), "tables": name → rows}."""
    return st.session_state.setdefault(EXPORTS_KEY, {"figures": {}, "tables": {}})


def forget_page_exports() -> None:
    """Start the next run with nothing drawn."""
    st.session_state.pop(EXPORTS_KEY, None)


def class_photos() -> list[tuple[str, bytes]]:
    """The photos the visitor took, (class name, the photo as its folder will keep it), in the order taken."""
    return st.session_state.get(PHOTOS_KEY, [])


def set_class_photos(photos: list[tuple[str, bytes]]) -> None:
    _keep(PHOTOS_KEY, photos or None)


def uploaded_images() -> UploadedImages | None:
    """The image folder the visitor's last upload (a zip, or their photos) became, if any."""
    return st.session_state.get(UPLOADED_KEY)


def set_uploaded_images(uploaded: UploadedImages | None) -> None:
    _keep(UPLOADED_KEY, uploaded)

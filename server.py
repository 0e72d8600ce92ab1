"""What the server shares between all its visitors: datasets, trained models, the training queue and cached results.

Everything here is read-only for pages: a page gets a model or a result and looks at it, never changes it. Every
cache is bounded (datasets by count, models and results in bytes) and every result is keyed by what it depends
on: a model by its config and its weights (model_key), never by its config alone.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
# Loaded once, here: plotly looks PIL.Image up in sys.modules, and while one visitor's thread was half-way through
# the first import, other visitors' charts failed ("partially initialized module 'PIL.Image'").
import PIL.Image  # noqa: F401
import streamlit as st
import torch

from layerlens import exports
from layerlens.attribution import knocked_out
from layerlens.caching import ByteCache, DiskStore, cache_key, code_version
from layerlens.checkpoints import MODELS_MB, ModelCache, models_dir
from layerlens.classic import (ClassicConfig, ClassicResult, cnn_test_probabilities, default_configs, feature_matrix,
                               fit_classic)
from layerlens.data import (FOLDER_PREFIX, SAMPLE, FolderChanged, ImageData, default_cache_dir, folders_root,
                            load_dataset, split_version)
from layerlens.data import folder_now as versioned_folder
from layerlens.inspection import confusion_matrix
from layerlens.jobs import TrainingQueue, local_runner
from layerlens.nets import Net
from layerlens.training import DEFAULT_PRESET, TrainResult, evaluate, preset_train_config, subset_indices

log = logging.getLogger("layerlens.server")  # under "layerlens": LAYERLENS_LOG sets its level too

RESULTS_MB = 768  # default memory for computed results shared by every visitor (fitted models, patches, probes…)
RESULTS_DISK_MB = 1024  # default disk for the costly ones, kept for the next server start (0: none on disk)
ROOT = Path(__file__).resolve().parent
RAY_SETTING = "LAYERLENS_RAY_ADDRESS"
WARM_UP_SETTING = "LAYERLENS_WARM_UP"  # "0": compute nothing before a visitor asks for it
WARM_UP_IDLE_WAIT_S = 600.0  # how long the warm-up waits for the training queue to be idle before it gives up


def megabytes(setting: str, default: int, least: int = 1) -> int:
    """A budget in bytes from an environment setting given in MB (at least `least`)."""
    value = os.environ.get(setting, "").strip()
    if not value:
        return default * 2**20
    if not value.isdigit() or int(value) < least:
        raise ValueError(f"{setting} must be a number of megabytes ≥ {least} (got {value!r}).")
    return int(value) * 2**20


def dataset(name: str) -> ImageData:
    """The dataset, loaded once per server (errors are not cached, so a retry can succeed). Image folders are read
    only from inside $LAYERLENS_FOLDERS (default: the data folder); they have a cache of their own, so that a class
    uploading its images does not push MNIST or CIFAR-10 out of memory.

    A folder named without its version ('folder:animals', as a visitor types it) is the images it holds now: its
    files' sizes and times are read on every call (a few ms for a class's folder, 0.3 s for 60,000 files), so images a
    teacher adds or fixes during class are what the next visitor trains on, never a model of the old ones. A name with
    its version (a model's) is those images."""
    if not name.startswith(FOLDER_PREFIX):
        return _dataset(name)
    if split_version(name)[1]:
        return _folder(name)
    now = folder_now(name)
    if not now:
        return _folder(name)  # it cannot be read: the error says why (errors are not cached)
    try:
        return _folder(now)
    except FolderChanged:  # changed again since folder_now read it: once more, as it is now
        return _folder(folder_now(name) or name)


def folder_now(name: str) -> str:
    """An image folder's name with the version of the images it holds now; '' when it cannot be read (loading it
    says why)."""
    try:
        return versioned_folder(name, folders_root())
    except (ValueError, OSError):
        return ""


@st.cache_resource(max_entries=3, show_spinner="Loading the dataset…")
def _dataset(name: str) -> ImageData:
    return load_dataset(name, folders=folders_root())


@st.cache_resource(max_entries=8, show_spinner="Reading the image folder…")
def _folder(name: str) -> ImageData:
    return load_dataset(name, folders=folders_root())


@st.cache_resource
def model_cache() -> ModelCache:
    """Trained models shared by every visitor: up to $LAYERLENS_MODELS_MB in memory, all of them on disk; a config
    whose model is in models/ (shipped, or saved by the teacher) loads from there and never trains."""
    return ModelCache(default_cache_dir() / "models", megabytes("LAYERLENS_MODELS_MB", MODELS_MB), shipped=models_dir())


PRELOAD_THREAD = "layerlens-preload"


def _no_context_warning(record: logging.LogRecord) -> bool:
    """Leave out Streamlit's warning that the preload thread has no visitor's script run: it serves none, on purpose
    (the first time it reaches each shared cache, Streamlit would log "missing ScriptRunContext")."""
    return record.threadName != PRELOAD_THREAD or "missing ScriptRunContext" not in record.getMessage()


@dataclass
class WarmUp:
    """How far the warm-up is, for a page that would otherwise fit the same models beside it: the keys of the configs
    it fits (None until it has read the dataset), how many are ready, and whether it is at work (not over, not
    waiting for the training queue to be idle)."""
    keys: frozenset | None = None
    total: int = 0
    ready: int = 0
    at_work: bool = True
    started: float | None = None  # time.monotonic() when the first fit began
    wanted: bool = False  # a visitor's page waits for these models: give way to trainings only, not to pages

    def fitting(self, configs: list[ClassicConfig]) -> bool:
        """Whether it is at work on configs (or may be: it does not know its own yet)."""
        return self.at_work and (self.keys is None or {c.key() for c in configs} <= self.keys)

    def progress(self) -> str:
        """How far it is, for a visitor who waits: "2 of 5 ready, about 3 s left" (from the pace so far)."""
        done = f"{self.ready} of {self.total} ready"
        if self.started is None or self.ready == 0:
            return f"{done}, the first in a moment" if self.started is not None else f"{done}, starting"
        elapsed = time.monotonic() - self.started
        return f"{done}, about {elapsed / self.ready * (self.total - self.ready):.0f} s left"


@st.cache_resource
def preload_in_background() -> threading.Thread:
    """Once per server, after its first page is drawn, on a thread of its own: import what later pages need
    (scikit-learn: 1.8 s on 2 cores); unless $LAYERLENS_WARM_UP is 0, fit the Traditional ML page's first models
    (warm_up; the thread's `warm_up` says how far it is); then import what the first training needs (torch._dynamo,
    which PyTorch imports when it builds the first optimizer: 1.7 s). So the first visitor of Traditional ML or
    Abstraction, or a student who retrains later, does not wait for them. Traditional ML clicked the moment Home is
    drawn on a new server: 7.8–12.6 s with this order, 13.8–14.4 s with torch._dynamo first (sgemm 67.5–69.1); a
    student who retrains in those first seconds imports torch._dynamo in the training (9.1 against 6.9–7.8 s)."""
    warm = WarmUp() if os.environ.get(WARM_UP_SETTING, "1").strip() != "0" else None

    def preload() -> None:
        try:
            from layerlens import classic

            # scikit-learn and the fits first: a visitor who opens Traditional ML or Abstraction at once waits for
            # them, where the default model ships trained and a student's first training comes later (it imports
            # torch._dynamo itself if it comes first)
            importlib.import_module("layerlens.abstraction")  # its probes are scikit-learn's
            classic.preload()
            if warm is not None:
                warm_up(warm)
            importlib.import_module("torch._dynamo")  # what the first torch.optim.Adam would import, 1.7 s
        except Exception:  # the pages import and fit themselves then; say why it failed here
            log.exception("importing scikit-learn or fitting the Traditional ML page's first models in the "
                          "background failed")
        finally:
            if warm is not None:
                warm.at_work = False

    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").addFilter(_no_context_warning)
    thread = threading.Thread(target=preload, name=PRELOAD_THREAD, daemon=True)
    thread.warm_up = warm
    thread.start()
    return thread


def warm_up_state() -> WarmUp | None:
    """The server's warm-up (started now if no page has started it yet); None when $LAYERLENS_WARM_UP is 0."""
    return preload_in_background().warm_up


_ahead = threading.local()  # on the warm-up's thread: what it computes, it computes before anyone asked
_AHEAD: set = set()  # keys of shared results being computed that way, so that a visitor who waits for one is told

# The warm-up also gives way to visitors' own computations (probes, maps, patches…), not only to trainings: on 2 cores
# its fits beside them doubled the Abstraction page's first render (17 s against 9 s). A page computes its results one
# after another, so the warm-up waits until none has run for VISITORS_QUIET_S.
VISITORS_QUIET_S = 1.0
_visitors = {"computing": 0, "last_ended": float("-inf")}  # shared results visitors compute now; when the last ended
_visitors_lock = threading.Lock()


@contextlib.contextmanager
def _visitor_computing():
    with _visitors_lock:
        _visitors["computing"] += 1
    try:
        yield
    finally:
        with _visitors_lock:
            _visitors["computing"] -= 1
            _visitors["last_ended"] = time.monotonic()


def visitors_computing(quiet_s: float = VISITORS_QUIET_S) -> bool:
    """Whether a visitor's page computes a shared result now, or finished one less than quiet_s ago."""
    with _visitors_lock:
        return _visitors["computing"] > 0 or time.monotonic() - _visitors["last_ended"] < quiet_s


def warm_up(warm: WarmUp, idle_wait_s: float = WARM_UP_IDLE_WAIT_S) -> None:
    """Fit the five traditional models that the Traditional ML page shows first (raw pixels of the offline sample,
    beside the default CNN) before anyone opens the page, into the shared results (and so onto disk): its first visit
    then draws them at once instead of fitting them for 4–5 s on 2 cores. Each fit starts only while no training runs
    or waits and no visitor's page computes (visitors_computing), so that it slows nobody down, and the warm-up gives up
    after idle_wait_s of a server never idle. A page that needs these models meanwhile waits for them
    (tasks.classic_models), and from then on the warm-up gives way to trainings only; nothing is fitted twice."""
    data = dataset(SAMPLE)
    seed = preset_train_config(DEFAULT_PRESET, data).seed
    configs = default_configs(data.name, data.channels, len(data.x_train), len(data.x_test), seed)
    warm.keys, warm.total = frozenset(c.key() for c in configs), len(configs)
    start, queue = time.perf_counter(), training_queue()

    def busy() -> bool:
        return queue.busy() or (not warm.wanted and visitors_computing())

    _ahead.on = True
    try:
        for config in configs:
            if busy():
                warm.at_work = False  # a page needing these models fits them itself meanwhile
                deadline = time.monotonic() + idle_wait_s
                while busy():
                    if time.monotonic() > deadline:
                        log.info("warm-up given up: trainings or visitors' pages kept the server busy for %.0f s",
                                 idle_wait_s)
                        return
                    time.sleep(0.25)
                warm.at_work = True
            if warm.started is None:
                warm.started = time.monotonic()
            classic_model(config, None)
            warm.ready += 1
    finally:
        _ahead.on = False
    log.info("warm-up: the Traditional ML page's %d first models ready in %.1f s", len(configs),
             time.perf_counter() - start)


@st.cache_resource
def training_queue() -> TrainingQueue:
    """The one line every training waits in. With $LAYERLENS_RAY_ADDRESS set, trainings run on that Ray cluster."""
    address = os.environ.get(RAY_SETTING, "").strip()
    if not address:
        return TrainingQueue(model_cache(), runner=local_runner)
    from layerlens.remote import RayTrainer, ray_runner  # Ray is imported only when asked for

    trainer = RayTrainer(address)
    return TrainingQueue(model_cache(), slots=trainer.slots(), runner=ray_runner(trainer))


@st.cache_resource
def results() -> ByteCache:
    """Computed results shared by every visitor, up to $LAYERLENS_RESULTS_MB in memory; those that took a while
    (fitted traditional models, probes, maps…) also on disk, up to $LAYERLENS_RESULTS_DISK_MB in <cache>/results,
    so that a server started again before class (or another server on the same cache folder) does not compute
    them again. The files are read back only by the same code and libraries (code_version)."""
    disk = megabytes("LAYERLENS_RESULTS_DISK_MB", RESULTS_DISK_MB, least=0)
    store = DiskStore(default_cache_dir() / "results", disk, code_version(ROOT, ROOT / "layerlens", ROOT / "pages"))
    return ByteCache(megabytes("LAYERLENS_RESULTS_MB", RESULTS_MB), "results", store if disk else None)


def shared_result(spinner: str | None = None, waiting: str | None = None):
    """Cache a function's results for every visitor, keyed by its name and what its arguments are (a TrainResult by
    model_key: config and weights; a dataset by its name; a config by its key()). Bounded in bytes with the rest of
    results(); a result computed again after the cache dropped it says so on the page. spinner: what the visitor who
    computes it is told; waiting (else spinner): what a visitor who asked for the same while it is computed is told,
    with the seconds they have waited."""
    told = (waiting or spinner or "Computing this").rstrip("…")

    def decorate(function):
        where = Path(function.__code__.co_filename).resolve()
        where = str(where.relative_to(ROOT)) if where.is_relative_to(ROOT) else str(where)  # the same on every server

        @functools.wraps(function)
        def cached(*args, **kwargs):
            key = (where, function.__qualname__, cache_key(args), cache_key(kwargs))

            def compute():
                if getattr(_ahead, "on", False):
                    _AHEAD.add(key)
                    try:
                        return function(*args, **kwargs)
                    finally:
                        _AHEAD.discard(key)
                with _visitor_computing():  # the warm-up waits for it
                    if spinner is None:
                        return function(*args, **kwargs)
                    with st.spinner(spinner):
                        return function(*args, **kwargs)

            def wait():
                who = ("the server started on it by itself when it started, before anyone asked" if key in _AHEAD
                       else "someone asked for the same a moment ago (another visitor, or this page before your last "
                            "click)")
                return st.spinner(f"{told}: {who}, so it is computed once and you get it when it is ready…",
                                  show_time=True)

            found = results().get_or_compute(key, compute, wait)
            if found.recomputed:
                st.caption(f"♻️ The server had set this result aside to stay within its memory budget "
                           f"(LAYERLENS_RESULTS_MB = {results().max_bytes // 2**20}), so it was computed again.")
            return found.value

        cached.uncached = function
        return cached

    return decorate


@shared_result()
def test_confusion(result: TrainResult) -> torch.Tensor:
    """Confusion counts of a model on its test set."""
    data = dataset(result.config.dataset)
    return confusion_matrix(result.model, data.x_test, data.y_test, data.num_classes)


@shared_result("Making the features…")
def classic_rows(name: str, kind: str, hog_cell: int, size: int, seed: int, split: str,
                 cnn: Net | None) -> tuple[np.ndarray, np.ndarray]:
    """Feature rows and labels of a dataset's training subset (split "train") or test subset ("test"); cnn: the
    network whose penultimate layer gives the features of kind "cnn"."""
    data = dataset(name)
    source = (data.x_train, data.y_train) if split == "train" else (data.x_test, data.y_test)
    idx = subset_indices(len(source[0]), size, seed)  # for "train", the images the CNN uses for this size
    return feature_matrix(kind, source[0][idx], hog_cell, cnn), source[1][idx].numpy()


@shared_result()
def classic_model(config: ClassicConfig, cnn: Net | None) -> ClassicResult:
    """A traditional model fitted as config says (shared by every visitor: same config and CNN, same model)."""
    data = dataset(config.dataset)
    rows = (config.dataset, config.features, config.hog_cell)
    x_train, y_train = classic_rows(*rows, config.train_size, config.seed, "train", cnn)
    x_test, y_test = classic_rows(*rows, config.test_size, 0, "test", cnn)
    return fit_classic(config, x_train, y_train, x_test, y_test, data.num_classes)


@shared_result()
def onnx_model(result: TrainResult) -> bytes:
    """The model as ONNX (exports.onnx_bytes: 0.1 s of torch.onnx.export on 2 cores, 1.5 s the first time in a process,
    which imports onnx), made once per model for the whole class: thirty students who download the same model wait for
    one export."""
    return exports.onnx_bytes(result.model, dataset(result.config.dataset).classes)


def figure_pngs(figures: list) -> list[bytes]:
    """Each figure as PNG for a page's zip (exports.figure_pngs), shared by the class: a figure someone already had
    drawn (the same figure: the same JSON) is not drawn again, and the rest are drawn in one browser start. Thirty
    students who download the same page of the same model start the browser once, not thirty times one after the
    other (4–12 s each)."""
    keys = [("figure png", hashlib.sha256(fig.to_json().encode()).hexdigest()) for fig in figures]
    pngs = [results().get(key) for key in keys]
    missing = [i for i, png in enumerate(pngs) if png is None]
    for i, png in zip(missing, exports.figure_pngs([figures[i] for i in missing]) if missing else []):
        results().put(key=keys[i], value=png)
        pngs[i] = png
    return pngs


@shared_result()
def cnn_test_scores(result: TrainResult) -> tuple[np.ndarray, float]:
    """The CNN's probabilities for every test image, and how many seconds predicting them took."""
    return cnn_test_probabilities(result.model, dataset(result.config.dataset).x_test)


KNOCKOUT_TEST_IMAGES = 2000  # test images a knocked-out network is scored on


@shared_result()
def knocked_accuracy(result: TrainResult, layer: str, channels: tuple[int, ...]) -> float:
    """Test accuracy with the channels of layer switched off (on up to KNOCKOUT_TEST_IMAGES test images)."""
    data = dataset(result.config.dataset)
    x, y = data.x_test[:KNOCKOUT_TEST_IMAGES], data.y_test[:KNOCKOUT_TEST_IMAGES]
    return evaluate(knocked_out(result.model, layer, list(channels)), x, y)[1]

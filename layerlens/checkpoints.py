"""Checkpoints (config + weights + metrics) and the model cache keyed by config hash."""
from __future__ import annotations

import logging
import os
import re
import threading
from pathlib import Path
from typing import Callable

import torch

from .caching import ByteCache, write_whole
from .data import ImageData
from .failures import not_writable, said
from .nets import Net
from .training import History, Progress, TrainConfig, TrainResult, fit

log = logging.getLogger(__name__)


def save_checkpoint(result: TrainResult, path: Path) -> Path:
    """Write config, weights, history and metrics to path (written atomically)."""
    checkpoint = {"config": result.config.to_dict(), "state_dict": result.model.state_dict(),
                  "history": result.history.to_dict(), "metrics": result.metrics, "diverged": result.diverged}
    # replicas sharing one cache folder may save the same model at once
    return write_whole(path, lambda file: torch.save(checkpoint, file))


# what _metrics writes and the pages read; every LayerLens checkpoint so far has them all
METRICS = {"dataset": str, "device": str, "epochs": int, "params": int, "train_images": int,
           "test_accuracy": (int, float), "train_accuracy": (int, float), "seconds": (int, float),
           "train_seconds": (int, float), "images_per_second": (int, float)}


def _checked(ckpt) -> TrainResult:
    """The TrainResult a loaded checkpoint describes; ValueError with what is wrong in a few words."""
    if not isinstance(ckpt, dict) or not {"config", "state_dict", "history", "metrics"} <= ckpt.keys():
        missing = ({"config", "state_dict", "history", "metrics"} - ckpt.keys()) if isinstance(ckpt, dict) else ()
        raise ValueError(f"it lacks a checkpoint's {' and '.join(sorted(missing)) or 'parts'}")
    try:
        config = TrainConfig.from_dict(ckpt["config"])
    except (KeyError, TypeError, AttributeError) as err:
        raise ValueError("its settings are incomplete or not settings of a LayerLens network") from err
    try:
        config.validate()
    except (TypeError, ValueError) as err:
        said_so = str(err).rstrip(".")
        raise ValueError(f"its settings are impossible ({said_so[:1].lower()}{said_so[1:]})") from err
    try:
        model = Net(config.net)
        model.load_state_dict(ckpt["state_dict"])
    except (TypeError, ValueError, RuntimeError, AttributeError) as err:
        raise ValueError("its weights do not fit the network its settings describe") from err
    metrics = ckpt["metrics"]
    if not isinstance(metrics, dict) or any(not isinstance(metrics.get(k), kind) or isinstance(metrics.get(k), bool)
                                            for k, kind in METRICS.items()):
        raise ValueError("its metrics (test accuracy, training time, …) are missing or not numbers")
    try:
        history = History.from_dict(ckpt["history"])
        history.check()
        shapes = {name: tensor.shape for name, tensor in model.state_dict().items()}
        if any({name: tensor.shape for name, tensor in state.items()} != shapes for state in history.states.values()):
            raise ValueError("the network's states during training do not fit it")
    except (TypeError, ValueError, AttributeError) as err:
        raise ValueError(f"its training history is damaged ({str(err).rstrip('.')})") from err
    diverged = ckpt.get("diverged")
    if diverged is not None and not isinstance(diverged, str):
        raise ValueError("its note on divergence is not text")
    model.eval()
    return TrainResult(model, config, history, metrics, diverged)


def load_checkpoint(path: Path) -> TrainResult:
    """Rebuild a TrainResult from a checkpoint, checked in full; refuse, in one sentence, anything else (the details
    go to the log: PyTorch's own message advises weights_only=False, which would run a malicious file's code)."""
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as err:  # missing, or not readable by this process: the file itself may be fine
        log.warning("could not open the checkpoint %s (%s)", path, said(err))
        raise ValueError(f"Could not open {path.name} ({type(err).__name__}: {err.strerror or err}).") from err
    except Exception as err:  # UnpicklingError for code or objects other than tensors, RuntimeError for other files
        log.warning("refused the checkpoint %s (%s): %s", path, type(err).__name__, err)
        raise ValueError(f"{path.name} is not a LayerLens checkpoint: it holds something other than a network's "
                         f"settings and weights, so LayerLens did not open it; choose a model saved by LayerLens."
                         ) from None
    try:
        return _checked(ckpt)
    except ValueError as err:
        log.warning("refused the checkpoint %s: %s", path, err)
        raise ValueError(f"{path.name} is not a LayerLens checkpoint that this version can read: {err}; choose "
                         f"another model, or train this one again and save it.") from None


MODEL_NAME = re.compile(r"[A-Za-z0-9_-]{1,40}")
MODELS_SETTING = "LAYERLENS_MODELS"  # the folder models are saved in and loaded from
PROJECT_MODELS = Path(__file__).resolve().parents[1] / "models"  # the models that ship with LayerLens
# their names: each dataset's starting model, which every visitor and lesson loads; never replaced from the app
SHIPPED_MODELS = ("tiny-mnist-sample", "lenet-mnist", "wide-fashion-mnist")


def models_dir() -> Path:
    """Where named models are saved and listed, and ready models are found: $LAYERLENS_MODELS, else models/."""
    return Path(os.environ.get(MODELS_SETTING) or PROJECT_MODELS)


class ModelExists(ValueError):
    """A saved model already has that name: it is replaced only when the visitor confirms."""


def save_named(result: TrainResult, folder: Path, name: str, replace: bool = False) -> Path:
    """Save result as folder/name.pt; ValueError in one sentence for a bad name, a shipped model's name, a folder that
    cannot take it, or (ModelExists) a model already saved under that name, unless replace."""
    if not MODEL_NAME.fullmatch(name):
        raise ValueError("Use 1–40 letters, digits, '-' or '_' for the name.")
    if name in SHIPPED_MODELS:
        raise ValueError(f"{name} is a model that ships with LayerLens: every visitor starts from it, so it is never "
                         f"replaced from here; choose another name.")
    folder = Path(folder)
    path = folder / f"{name}.pt"
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"No model can be saved in {folder}: it is a file, not a folder; ask the teacher to set "
                         f"{MODELS_SETTING} to a folder.")
    if path.exists() and not replace:
        raise ModelExists(f"A model called {name} is already saved in {folder}: press **Replace it** to save over "
                          f"it, or choose another name.")
    try:
        return save_checkpoint(result, path)
    except OSError as err:
        log.warning("could not save the model %s (%s)", path, said(err))
        why = "LayerLens may not write there" if not_writable(err) else "the write failed (a full disk?)"
        raise ValueError(f"Could not save {name} in {folder}: {why}; ask the teacher to set {MODELS_SETTING} to a "
                         f"folder LayerLens can write to.") from err


MODELS_MB = 512  # default memory for trained models kept for every visitor (the disk keeps them all)


class ModelCache:
    """Trained models by config hash: the most recently used in memory (at most max_bytes) for every visitor, all of
    them on disk across restarts. Thread-safe; the models it hands out are shared and must not be changed."""

    def __init__(self, directory: Path | None, max_bytes: int = MODELS_MB * 2**20, shipped: Path | None = None):
        self.directory = Path(directory) if directory else None
        # a folder of ready checkpoints (the project's models/): a config found there is never trained
        self.shipped = Path(shipped) if shipped else None
        self._shipped_index: tuple[tuple, dict[str, Path]] | None = None  # (the files and their times, key → file)
        self._memory = ByteCache(max_bytes, "model cache")
        # get_or_train: one training at a time (the app's server trains through a TrainingQueue instead)
        self._training = threading.Lock()

    @property
    def memory(self) -> ByteCache:
        return self._memory

    def _path(self, config: TrainConfig) -> Path | None:
        return self.directory / f"{config.key()}.pt" if self.directory else None

    def _shipped(self, key: str) -> Path | None:
        """The shipped checkpoint of config key, if the shipped folder has one (indexed again when it changes)."""
        try:
            if self.shipped is None or not self.shipped.is_dir():
                return None
            files = sorted(self.shipped.glob("*.pt"))
            signature = tuple((path.name, path.stat().st_mtime_ns) for path in files)
            if self._shipped_index is None or self._shipped_index[0] != signature:
                index = {}
                for path in files:
                    try:
                        index[load_checkpoint(path).config.key()] = path
                    except ValueError as err:
                        log.warning("%s in the models folder is left out: %s", path.name, err)
                self._shipped_index = (signature, index)
        except OSError as err:
            log.warning("could not read the models folder %s (%s): its models are trained instead", self.shipped, err)
            return None
        return self._shipped_index[1].get(key)

    def get(self, config: TrainConfig) -> TrainResult | None:
        """The cached result for config, from memory, the cache folder or the shipped models, else None."""
        key = config.key()
        found = self._memory.get(key)
        if found is not None:
            return found
        path = self._path(config)
        if path is None or not path.exists():
            path = self._shipped(key) or path
        try:
            if path is None or not path.exists():
                return None
            result = load_checkpoint(path)
        except (OSError, ValueError) as err:  # OSError: a folder this process may not search
            log.warning("unreadable cached model %s (%s): it will be trained again", path, err)
            return None
        self._memory.put(key, result)
        return result

    def put(self, result: TrainResult) -> None:
        self._memory.put(result.config.key(), result)
        path = self._path(result.config)
        if path:
            try:
                save_checkpoint(result, path)
            except OSError as err:
                why = "the folder is not writable" if not_writable(err) else "the write failed"
                log.warning("could not save the trained model in %s (%s: %s): %s, so this model is trained again "
                            "after every restart and whenever it leaves memory", path.parent, type(err).__name__,
                            err, why)

    def get_or_train(self, config: TrainConfig, data: ImageData,
                     on_step: Callable[[Progress], None] | None = None) -> TrainResult:
        """The cached model for config, training it once if needed (concurrent callers wait their turn)."""
        with self._training:
            result = self.get(config)
            if result is None:
                result = fit(config, data, on_step=on_step)
                self.put(result)
            return result

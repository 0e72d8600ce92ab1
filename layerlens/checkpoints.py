"""Checkpoints (config + weights + metrics) and the model cache keyed by config hash."""
from __future__ import annotations

import contextlib
import logging
import os
import threading
from pathlib import Path
from typing import Callable

import torch

from .caching import ByteCache
from .data import ImageData
from .failures import not_writable
from .nets import Net
from .training import History, Progress, TrainConfig, TrainResult, fit

log = logging.getLogger(__name__)


def save_checkpoint(result: TrainResult, path: Path) -> Path:
    """Write config, weights, history and metrics to path (written atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # a name of this process and thread alone: replicas sharing one cache folder may save the same model at once
    tmp = path.with_suffix(f".{os.getpid()}-{threading.get_ident()}.tmp")
    checkpoint = {"config": result.config.to_dict(), "state_dict": result.model.state_dict(),
                  "history": result.history.to_dict(), "metrics": result.metrics, "diverged": result.diverged}
    try:
        with open(tmp, "wb") as file:  # opened here, a refused write is an OSError that says why, not a RuntimeError
            torch.save(checkpoint, file)
        tmp.replace(path)
    except OSError:
        with contextlib.suppress(OSError):  # a write cut short (a full disk) leaves no stray file behind
            tmp.unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: Path) -> TrainResult:
    """Rebuild a TrainResult from a checkpoint; refuse files that are not LayerLens checkpoints."""
    try:
        ckpt = torch.load(Path(path), map_location="cpu", weights_only=True)
        config = TrainConfig.from_dict(ckpt["config"])
        model = Net(config.net)
        model.load_state_dict(ckpt["state_dict"])
        history = History.from_dict(ckpt["history"])
    except OSError as err:  # missing, or not readable by this process: the file itself may be fine
        raise ValueError(f"Could not open {Path(path).name} ({type(err).__name__}: {err.strerror or err}).") from err
    except Exception as err:
        raise ValueError(f"{Path(path).name} is not a LayerLens checkpoint that this version can read ({err}).") from err
    model.eval()
    return TrainResult(model, config, history, ckpt["metrics"], ckpt.get("diverged"))


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

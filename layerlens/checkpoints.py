"""Checkpoints (config + weights + metrics) and the model cache keyed by config hash."""
from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Callable

import torch

from .caching import ByteCache
from .data import ImageData
from .nets import Net
from .training import Progress, TrainConfig, TrainResult, fit

log = logging.getLogger(__name__)


def save_checkpoint(result: TrainResult, path: Path) -> Path:
    """Write config, weights, history and metrics to path (written atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # a name of this process and thread alone: replicas sharing one cache folder may save the same model at once
    tmp = path.with_suffix(f".{os.getpid()}-{threading.get_ident()}.tmp")
    torch.save({"config": result.config.to_dict(), "state_dict": result.model.state_dict(),
                "history": result.history, "metrics": result.metrics, "diverged": result.diverged}, tmp)
    tmp.replace(path)
    return path


def load_checkpoint(path: Path) -> TrainResult:
    """Rebuild a TrainResult from a checkpoint; refuse files that are not LayerLens checkpoints."""
    try:
        ckpt = torch.load(Path(path), map_location="cpu", weights_only=True)
        config = TrainConfig.from_dict(ckpt["config"])
        model = Net(config.net)
        model.load_state_dict(ckpt["state_dict"])
    except Exception as err:
        raise ValueError(f"{Path(path).name} is not a LayerLens checkpoint that this version can read ({err}).") from err
    model.eval()
    return TrainResult(model, config, ckpt["history"], ckpt["metrics"], ckpt.get("diverged"))


MODELS_MB = 512  # default memory for trained models kept for every visitor (the disk keeps them all)


class ModelCache:
    """Trained models by config hash: the most recently used in memory (at most max_bytes) for every visitor, all of
    them on disk across restarts. Thread-safe; the models it hands out are shared and must not be changed."""

    def __init__(self, directory: Path | None, max_bytes: int = MODELS_MB * 2**20):
        self.directory = Path(directory) if directory else None
        self._memory = ByteCache(max_bytes, "model cache")
        # get_or_train: one training at a time (the app's server trains through a TrainingQueue instead)
        self._training = threading.Lock()

    @property
    def memory(self) -> ByteCache:
        return self._memory

    def _path(self, config: TrainConfig) -> Path | None:
        return self.directory / f"{config.key()}.pt" if self.directory else None

    def get(self, config: TrainConfig) -> TrainResult | None:
        """The cached result for config, from memory or disk, else None."""
        key = config.key()
        found = self._memory.get(key)
        if found is not None:
            return found
        path = self._path(config)
        if path and path.exists():
            try:
                result = load_checkpoint(path)
            except ValueError as err:
                log.warning("unreadable cached model %s (%s): it will be trained again", path, err)
                return None
            self._memory.put(key, result)
            return result
        return None

    def put(self, result: TrainResult) -> None:
        self._memory.put(result.config.key(), result)
        path = self._path(result.config)
        if path:
            try:
                save_checkpoint(result, path)
            except OSError as err:
                log.warning("could not write %s (%s): this model will be trained again after a restart", path, err)

    def get_or_train(self, config: TrainConfig, data: ImageData,
                     on_step: Callable[[Progress], None] | None = None) -> TrainResult:
        """The cached model for config, training it once if needed (concurrent callers wait their turn)."""
        with self._training:
            result = self.get(config)
            if result is None:
                result = fit(config, data, on_step=on_step)
                self.put(result)
            return result

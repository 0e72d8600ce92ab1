"""Checkpoints (config + weights + metrics) and the model cache keyed by config hash."""
from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Callable

import torch

from .data import ImageData
from .nets import Net
from .training import Progress, TrainConfig, TrainResult, fit


def save_checkpoint(result: TrainResult, path: Path) -> Path:
    """Write config, weights, history and metrics to path (written atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
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


class ModelCache:
    """Trained models by config hash: the latest few in memory for every visitor, all on disk across restarts."""

    def __init__(self, directory: Path | None, max_in_memory: int = 16):
        self.directory = Path(directory) if directory else None
        self.max_in_memory = max_in_memory
        self._memory: OrderedDict[str, TrainResult] = OrderedDict()  # least recently used first
        # One training at a time: two trainings sharing the CPU cores run far slower than one after the
        # other, and a second visitor asking for the same config then gets the first one's model.
        self._training = threading.Lock()

    def _remember(self, key: str, result: TrainResult) -> TrainResult:
        self._memory[key] = result
        self._memory.move_to_end(key)
        while len(self._memory) > self.max_in_memory:
            self._memory.popitem(last=False)
        return result

    def _path(self, config: TrainConfig) -> Path | None:
        return self.directory / f"{config.key()}.pt" if self.directory else None

    def get(self, config: TrainConfig) -> TrainResult | None:
        """The cached result for config, from memory or disk, else None."""
        key = config.key()
        if key in self._memory:
            return self._remember(key, self._memory[key])
        path = self._path(config)
        if path and path.exists():
            try:
                return self._remember(key, load_checkpoint(path))
            except ValueError:
                return None  # an unreadable cache file is just a miss; training overwrites it
        return None

    def put(self, result: TrainResult) -> None:
        self._remember(result.config.key(), result)
        path = self._path(result.config)
        if path:
            try:
                save_checkpoint(result, path)
            except OSError:
                pass  # a read-only disk only costs a retrain after a restart

    def get_or_train(self, config: TrainConfig, data: ImageData,
                     on_step: Callable[[Progress], None] | None = None) -> TrainResult:
        """The cached model for config, training it once if needed (concurrent callers wait their turn)."""
        with self._training:
            result = self.get(config)
            if result is None:
                result = fit(config, data, on_step=on_step)
                self.put(result)
            return result

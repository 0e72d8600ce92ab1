"""A thread-safe cache bounded in bytes, for what a whole class shares: least recently used goes first; and a folder
that keeps costly results on disk for the next server start, or another server on the same folder."""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import pickle
import sys
import threading
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, BinaryIO, Callable, ContextManager, Hashable

import numpy as np
import torch

from .data import ImageData
from .training import TrainResult, model_key, weights_digest

log = logging.getLogger(__name__)


def approx_bytes(obj: Any, _seen: set[int] | None = None, _depth: int = 0) -> int:
    """Memory held by obj: tensors and arrays by their data, containers and objects by what they hold.

    Counts each object once (shared tensors are not counted twice); good to a few percent for models, fitted
    scikit-learn estimators (a k-NN keeps its training rows) and dicts of arrays."""
    seen = _seen if _seen is not None else set()
    if id(obj) in seen or _depth > 12:
        return 0
    seen.add(id(obj))
    if isinstance(obj, torch.Tensor):
        return obj.untyped_storage().nbytes() if obj.device.type == "cpu" else 0
    if isinstance(obj, np.ndarray):
        return obj.nbytes if obj.base is None else approx_bytes(obj.base, seen, _depth + 1)
    if isinstance(obj, (str, bytes, int, float, bool, type(None))):
        return sys.getsizeof(obj)
    if isinstance(obj, torch.nn.Module):
        return sum(approx_bytes(t, seen) for t in [*obj.parameters(), *obj.buffers()]) + 1024
    if isinstance(obj, dict):
        return sys.getsizeof(obj) + sum(approx_bytes(k, seen, _depth + 1) + approx_bytes(v, seen, _depth + 1)
                                        for k, v in obj.items())
    if isinstance(obj, (list, tuple, set, frozenset)):
        return sys.getsizeof(obj) + sum(approx_bytes(v, seen, _depth + 1) for v in obj)
    fields = getattr(obj, "__dict__", None)
    if fields is not None:
        return sys.getsizeof(obj) + approx_bytes(fields, seen, _depth + 1)
    return sys.getsizeof(obj)


@dataclass(frozen=True)
class Lookup:
    """A value from the cache, and whether it had to be computed again because the cache had dropped it."""
    value: Any
    recomputed: bool = False


MISSING = object()  # DiskStore.load: nothing kept for that key


def write_whole(path: Path, write: Callable[[BinaryIO], None]) -> Path:
    """Write path through a file named for this process and thread, renamed when whole: a reader never finds half a
    file, even while another server sharing the folder writes the same one, and a write cut short (a full disk)
    leaves no stray file behind. Raises the OSError that says why it failed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    try:
        with open(partial, "wb") as file:  # opened here, a refused write is an OSError that says why
            write(file)
        partial.replace(path)
    except OSError:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise
    return path


def code_version(*folders: Path) -> str:
    """A digest of the code that computes results (every .py file directly in folders) and of the libraries whose
    objects results hold: a result kept on disk is read back only by the code that wrote it."""
    digest = hashlib.sha256()
    for folder in folders:
        for path in sorted(Path(folder).glob("*.py")):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    for package in ("torch", "numpy", "scikit-learn"):
        try:
            digest.update(f"{package}={metadata.version(package)};".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{package}=none;".encode())
    return digest.hexdigest()[:16]


class DiskStore:
    """Results on disk, for the next start of the server or another server that shares the folder: one pickle per
    key, named by a digest of the key and of version (code_version), at most max_bytes in all; the least recently
    read go first. Only results that took at least min_seconds to compute are kept (reading a file back takes a few
    ms), and none bigger than a quarter of the budget. A file that cannot be read back (damaged, or half-written by a
    server that died) is deleted and its result computed again.

    Pickles run code when read, so the folder must be the server's own (LAYERLENS_CACHE), as the model cache is: never
    a folder visitors can write to."""

    SUFFIX = ".result"

    def __init__(self, folder: Path, max_bytes: int, version: str, min_seconds: float = 0.02):
        self.folder, self.max_bytes, self.version, self.min_seconds = Path(folder), int(max_bytes), version, min_seconds
        self._lock = threading.Lock()

    def path(self, key: Hashable) -> Path | None:
        """The file for key; None for a key that names an object by its address, which no other process shares."""
        text = repr(key)
        if " at 0x" in text:
            return None
        return self.folder / (hashlib.sha256(f"{self.version}\n{text}".encode()).hexdigest()[:32] + self.SUFFIX)

    def load(self, key: Hashable) -> Any:
        """The value kept for key, or MISSING."""
        path = self.path(key)
        if path is None or not path.is_file():
            return MISSING
        try:
            with open(path, "rb") as file:
                value = pickle.load(file)
        except Exception as err:  # noqa: BLE001 - damaged or half-written (any error unpickling): compute it again
            log.warning("results on disk: %s could not be read (%s: %s); computing it again", path.name,
                        type(err).__name__, err)
            path.unlink(missing_ok=True)
            return MISSING
        with contextlib.suppress(OSError):
            os.utime(path)  # read now: the last to go
        return value

    def save(self, key: Hashable, value: Any, seconds: float) -> bool:
        """Keep value for key if it took min_seconds or more and fits; True when it was written."""
        path = self.path(key)
        if path is None or seconds < self.min_seconds:
            return False
        try:
            data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as err:  # noqa: BLE001 - e.g. it holds a lock or a generator: it stays in memory only
            log.info("results on disk: %s not kept (%s: %s)", path.name, type(err).__name__, err)
            return False
        if len(data) > self.max_bytes // 4:
            return False
        try:
            write_whole(path, lambda file: file.write(data))
        except OSError as err:
            log.warning("results on disk: %s not written (%s)", path.name, err)
            return False
        self._trim()
        return True

    def _trim(self) -> None:
        """Delete the least recently read files until the folder is within max_bytes."""
        with self._lock:
            files = []
            for path in self.folder.glob(f"*{self.SUFFIX}"):
                with contextlib.suppress(OSError):
                    stat = path.stat()
                    files.append((stat.st_mtime, stat.st_size, path))
            total = sum(size for _, size, _ in files)
            for _, size, path in sorted(files, key=lambda f: f[0]):
                if total <= self.max_bytes:
                    break
                path.unlink(missing_ok=True)
                total -= size

    @property
    def bytes(self) -> int:
        total = 0
        for path in self.folder.glob(f"*{self.SUFFIX}"):
            with contextlib.suppress(OSError):  # deleted meanwhile by another server's trim
                total += path.stat().st_size
        return total


class ByteCache:
    """Values by key, at most max_bytes in all; the least recently used are dropped first.

    get_or_compute computes a missing value once even when many threads ask at the same moment (the others wait
    for it), and remembers which keys were dropped, so a page can say why something is being computed again.
    A value bigger than the whole budget is returned but not kept. With a store (DiskStore), a value missing in
    memory is read from disk before it is computed, and a computed one is written there too."""

    def __init__(self, max_bytes: int, name: str = "cache", store: DiskStore | None = None):
        self.max_bytes, self.name, self.store = int(max_bytes), name, store
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()  # least recently used first
        self._bytes = 0
        self._dropped: OrderedDict[Hashable, None] = OrderedDict()  # keys dropped to stay in budget (bounded)
        self._lock = threading.Lock()
        self._computing: dict[Hashable, threading.Lock] = {}
        self.evictions = 0

    @property
    def bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def get(self, key: Hashable, default: Any = None) -> Any:
        with self._lock:
            if key not in self._items:
                return default
            self._items.move_to_end(key)
            return self._items[key][0]

    def put(self, key: Hashable, value: Any, size: int | None = None) -> None:
        size = approx_bytes(value) if size is None else size
        with self._lock:
            if key in self._items:
                self._bytes -= self._items.pop(key)[1]
            if size > self.max_bytes:
                log.warning("%s: a value of %.0f MB is over the whole budget of %.0f MB; not kept", self.name,
                            size / 2**20, self.max_bytes / 2**20)
                self._drop(key)
                return
            self._items[key] = (value, size)
            self._bytes += size
            self._dropped.pop(key, None)
            while self._bytes > self.max_bytes:
                old, (_, old_size) = self._items.popitem(last=False)
                self._bytes -= old_size
                self._drop(old)
                log.info("%s: dropped %s (%.1f MB) to stay within %.0f MB", self.name, old, old_size / 2**20,
                         self.max_bytes / 2**20)

    def _drop(self, key: Hashable) -> None:
        self.evictions += 1
        self._dropped[key] = None
        while len(self._dropped) > 10_000:
            self._dropped.popitem(last=False)

    def was_dropped(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._dropped

    def _hit(self, key: Hashable) -> Lookup | None:
        """The kept value for key, now the most recently used (call with the lock held); None when missing."""
        if key not in self._items:
            return None
        self._items.move_to_end(key)
        return Lookup(self._items[key][0])

    def get_or_compute(self, key: Hashable, compute: Callable[[], Any],
                       waiting: Callable[[], ContextManager] | None = None) -> Lookup:
        """The value for key, computing it (once, however many threads ask) when it is missing. waiting: the context
        a thread waits in while another computes the value (a spinner that tells a visitor why)."""
        with self._lock:
            if (found := self._hit(key)) is not None:
                return found
            gate = self._computing.setdefault(key, threading.Lock())
        held = gate.acquire(blocking=False)
        try:
            if not held:  # another thread computes it: wait, then find the value
                with waiting() if waiting else contextlib.nullcontext():
                    held = gate.acquire()  # (the context's exit may raise, as Streamlit stops a page: still released)
            with self._lock:
                if (found := self._hit(key)) is not None:
                    return found
                recomputed = key in self._dropped
            try:
                value = self.store.load(key) if self.store is not None else MISSING
                if value is not MISSING:
                    recomputed = False  # kept on disk: nothing computed again
                else:
                    start = time.perf_counter()
                    value = compute()
                    if self.store is not None:
                        self.store.save(key, value, time.perf_counter() - start)
                self.put(key, value)
            finally:
                with self._lock:
                    self._computing.pop(key, None)
        finally:
            if held:
                gate.release()
        return Lookup(value, recomputed)

    def evict_all(self) -> None:
        """Drop every value as if memory had run short (they are remembered as dropped)."""
        with self._lock:
            for key in self._items:
                self._drop(key)
            self._items.clear()
            self._bytes = 0

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._dropped.clear()
            self._bytes = 0


_digests: "weakref.WeakKeyDictionary[torch.nn.Module, str]" = weakref.WeakKeyDictionary()
_digests_lock = threading.Lock()


def module_digest(module: torch.nn.Module) -> str:
    """weights_digest of a module, computed once per (shared, never changed) module object."""
    with _digests_lock:
        found = _digests.get(module)
    if found is None:
        found = weights_digest(module)
        with _digests_lock:
            _digests[module] = found
    return found


def cache_key(value: Any) -> Hashable:
    """What a cached result depends on, as a hashable key: a trained model by its config and weights
    (model_key), any other network by its weights, a dataset by its name, a config by its key()."""
    if isinstance(value, TrainResult):
        return ("model", model_key(value))
    if isinstance(value, torch.nn.Module):
        return ("weights", module_digest(value))
    if isinstance(value, ImageData):
        return ("data", value.name)
    if hasattr(value, "key") and callable(value.key):
        return (type(value).__name__, value.key())
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (tuple, list)):
        return tuple(cache_key(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), cache_key(v)) for k, v in value.items()))
    if isinstance(value, torch.Tensor):
        return ("tensor", tuple(value.shape), hashlib.sha1(value.detach().cpu().contiguous().numpy().tobytes())
                .hexdigest()[:16])
    raise TypeError(f"No cache key for a {type(value).__name__}: give it a key() or pass something simpler.")

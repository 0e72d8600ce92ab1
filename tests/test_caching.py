"""The byte-bounded cache every visitor shares, and the keys that say what a result depends on."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from layerlens.caching import (
    MISSING,
    ByteCache,
    DiskStore,
    approx_bytes,
    cache_key,
    code_version,
)
from layerlens.learning import random_start
from layerlens.training import History, TrainResult


def test_sizes_follow_the_data_a_value_holds(tiny_result):
    from sklearn.neighbors import KNeighborsClassifier

    rows = np.zeros((1000, 784), dtype=np.float32)
    knn = KNeighborsClassifier().fit(rows, np.arange(1000) % 10)  # a k-NN keeps every training row
    assert approx_bytes(knn) >= rows.nbytes
    weights = sum(p.numel() * 4 for p in tiny_result.model.parameters())
    assert weights <= approx_bytes(tiny_result.model) < weights + 64 * 1024
    shared = torch.zeros(1000)
    assert approx_bytes([shared, shared]) < 2 * 4000  # one tensor held twice counts once


def test_the_least_recently_used_go_first_and_are_remembered_as_dropped():
    cache = ByteCache(max_bytes=2500)
    for name in "abc":
        cache.put(name, np.zeros(1000, dtype=np.uint8))
    assert "a" not in cache and "b" in cache and "c" in cache and cache.bytes <= 2500
    assert cache.was_dropped("a") and not cache.was_dropped("b")
    cache.get("b")  # b is now the most recent, so c goes next
    cache.put("d", np.zeros(1000, dtype=np.uint8))
    assert "c" not in cache and "b" in cache
    found = cache.get_or_compute("a", lambda: np.ones(10))
    assert found.recomputed and found.value.sum() == 10
    assert not cache.get_or_compute("a", lambda: None).recomputed  # from the cache now
    cache.put("huge", np.zeros(10_000, dtype=np.uint8))  # bigger than the whole budget: not kept
    assert "huge" not in cache and "b" in cache


def test_many_threads_asking_at_once_compute_once():
    cache = ByteCache(max_bytes=10**6)
    calls = []

    def slow():
        calls.append(1)
        time.sleep(0.2)
        return np.arange(5)

    answers = []
    threads = [threading.Thread(target=lambda: answers.append(cache.get_or_compute("k", slow).value))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(answers) == 8 and all((a == np.arange(5)).all() for a in answers)


def test_a_thread_that_waits_for_another_ones_computation_is_told_why():
    """A visitor asking for what another is computing waits inside `waiting` (a spinner on the page); the one who
    computes, and anyone who finds the value kept, never enters it."""
    import contextlib

    cache, started, go = ByteCache(max_bytes=10**6), threading.Event(), threading.Event()
    waited = []

    @contextlib.contextmanager
    def waiting(who):
        waited.append(who)
        go.set()  # the computation may finish now that the second thread is waiting
        yield

    def slow():
        started.set()
        assert go.wait(10)
        return 7

    first = threading.Thread(target=lambda: cache.get_or_compute("k", slow, lambda: waiting("first")))
    first.start()
    assert started.wait(10)
    assert cache.get_or_compute("k", lambda: 0, lambda: waiting("second")).value == 7  # theirs, not computed again
    first.join()
    assert cache.get_or_compute("k", lambda: 0, lambda: waiting("third")).value == 7
    assert waited == ["second"]


def test_a_waiting_thread_stopped_as_it_wakes_lets_the_others_go_on():
    """Streamlit stops a page's script at its next element, which can be the waiting spinner's exit: the thread must
    still let go of the computation's gate, or every other visitor waiting for it would wait forever."""
    import contextlib

    cache, started, go = ByteCache(max_bytes=10**6), threading.Event(), threading.Event()

    @contextlib.contextmanager
    def stopped_on_exit():
        go.set()
        yield
        raise RuntimeError("the visitor left")

    def slow():
        started.set()
        assert go.wait(10)
        return 7

    first = threading.Thread(target=lambda: cache.get_or_compute("k", slow))
    first.start()
    assert started.wait(10)
    gate = cache._computing["k"]
    with pytest.raises(RuntimeError, match="the visitor left"):
        cache.get_or_compute("k", lambda: 0, stopped_on_exit)
    first.join()
    assert not gate.locked() and cache.get_or_compute("k", lambda: 0).value == 7


def test_a_failed_computation_is_not_kept():
    cache = ByteCache(max_bytes=10**6)
    with pytest.raises(ValueError):
        cache.get_or_compute("k", lambda: (_ for _ in ()).throw(ValueError("no")))
    assert cache.get_or_compute("k", lambda: 3).value == 3


def test_keys_see_the_weights_not_only_the_config(tiny_result, tiny_data):
    same_config = TrainResult(random_start(tiny_result.config.net, seed=5), tiny_result.config, History(), {})
    assert cache_key(same_config) != cache_key(tiny_result)
    assert cache_key(tiny_result) == cache_key(tiny_result)
    assert cache_key(tiny_result.model) != cache_key(same_config.model)
    assert cache_key((tiny_data, tiny_result.config, 3, "x")) == ((("data", "tiny-bars")),
                                                                   ("TrainConfig", tiny_result.config.key()), 3, "x")
    with pytest.raises(TypeError, match="No cache key"):
        cache_key(object())


def slow(value, seconds: float = 0.06):
    """A computation that takes `seconds` (more than the default min_seconds of a DiskStore)."""
    def compute():
        time.sleep(seconds)
        return value
    return compute


def refuse():
    raise AssertionError("computed again, though it was kept")


def test_a_result_on_disk_serves_the_next_server_start_without_computing(tmp_path):
    value = {"probe": np.arange(5.0), "weights": torch.ones(3)}
    first = ByteCache(10**6, store=DiskStore(tmp_path, 10**6, "v1"))
    assert first.get_or_compute(("probes", 1), slow(value)).value is value
    again = ByteCache(10**6, store=DiskStore(tmp_path, 10**6, "v1"))  # the server started again
    found = again.get_or_compute(("probes", 1), refuse)
    assert not found.recomputed and np.array_equal(found.value["probe"], value["probe"])
    assert torch.equal(found.value["weights"], value["weights"])
    again.evict_all()  # memory ran short: the disk still has it, so nothing is computed again
    assert not again.get_or_compute(("probes", 1), refuse).recomputed
    changed = ByteCache(10**6, store=DiskStore(tmp_path, 10**6, "v2"))  # other code: it computes its own
    assert changed.get_or_compute(("probes", 1), slow("new")).value == "new"


def test_only_costly_results_that_fit_are_kept_and_the_least_recently_read_go_first(tmp_path):
    store = DiskStore(tmp_path, max_bytes=3200, version="v", min_seconds=0.05)  # four files of ~750 bytes
    assert not store.save("quick", 1, seconds=0.01)  # reading a file back would cost about as much
    assert not store.save("huge", np.zeros(900, dtype=np.uint8), seconds=1.0)  # over a quarter of the budget
    assert not store.save(("object", object()), 1, seconds=1.0)  # named by its address: no other process has it
    for name in "abcd":
        assert store.save(name, np.zeros(600, dtype=np.uint8), seconds=1.0)
        time.sleep(0.02)  # distinct file times
    assert store.load("a") is not MISSING  # read now: b is the least recently read
    store.save("e", np.zeros(600, dtype=np.uint8), seconds=1.0)
    assert store.load("b") is MISSING and all(store.load(k) is not MISSING for k in "acde")
    assert store.bytes <= store.max_bytes


def test_a_damaged_file_on_disk_is_computed_again_and_replaced(tmp_path, caplog):
    store = DiskStore(tmp_path, 10**6, "v")
    cache = ByteCache(10**6, store=store)
    cache.get_or_compute("k", slow([1, 2, 3]))
    store.path("k").write_bytes(b"\x80\x05half a pickle")  # a server died while writing, or the disk failed
    fresh = ByteCache(10**6, store=store)
    assert fresh.get_or_compute("k", slow([1, 2, 3])).value == [1, 2, 3]
    assert "could not be read" in caplog.text
    assert ByteCache(10**6, store=store).get_or_compute("k", refuse).value == [1, 2, 3]  # written whole again


def test_a_result_that_cannot_be_pickled_stays_in_memory(tmp_path):
    store = DiskStore(tmp_path / "results", 10**6, "v")
    lock = threading.Lock()
    assert ByteCache(10**6, store=store).get_or_compute("lock", slow(lock)).value is lock
    assert store.load("lock") is MISSING and store.bytes == 0


def test_the_code_version_changes_with_the_code(tmp_path):
    (tmp_path / "page.py").write_text("x = 1\n")
    before = code_version(tmp_path)
    assert code_version(tmp_path) == before
    (tmp_path / "page.py").write_text("x = 2\n")
    assert code_version(tmp_path) != before


def test_a_disk_that_refuses_the_result_keeps_it_in_memory_and_says_why(tmp_path, caplog):
    (tmp_path / "results").write_text("a file where the folder should be")
    cache = ByteCache(10**6, store=DiskStore(tmp_path / "results", 10**6, "v"))
    assert cache.get_or_compute("k", slow([1, 2])).value == [1, 2]
    assert "not written" in caplog.text
    assert cache.get_or_compute("k", refuse).value == [1, 2]  # from memory

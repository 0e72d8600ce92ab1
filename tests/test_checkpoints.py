"""Checkpoints on disk and the model cache: train once, reuse in memory and after a restart."""
from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pytest
import torch

from layerlens.checkpoints import SHIPPED_MODELS, ModelCache, load_checkpoint, save_checkpoint
from layerlens.data import SAMPLE, load_dataset
from layerlens.training import RECOMMENDED_PRESET, TrainConfig, preset_train_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def quick_config(tiny_config) -> TrainConfig:
    return dataclasses.replace(tiny_config, epochs=2)


class EpochCounter:
    """on_step callback that counts finished epochs: one count per epoch actually trained."""

    def __init__(self):
        self.epochs = 0
        self._lock = threading.Lock()

    def __call__(self, progress):
        if progress.epoch_done:
            with self._lock:
                self.epochs += 1


def assert_same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_round_trip_gives_the_same_model(tiny_result, tiny_data, tmp_path):
    path = save_checkpoint(tiny_result, tmp_path / "sub" / "model.pt")
    assert path == tmp_path / "sub" / "model.pt" and path.exists()
    assert list(path.parent.iterdir()) == [path]  # the temporary file of the atomic write is gone
    loaded = load_checkpoint(path)
    assert loaded.config == tiny_result.config
    assert loaded.metrics == tiny_result.metrics
    assert loaded.history.step_loss == tiny_result.history.step_loss
    assert all(torch.equal(a, b) for a, b in zip(loaded.history.kernels, tiny_result.history.kernels))
    assert loaded.diverged is None
    assert not loaded.model.training
    assert_same_weights(loaded.model, tiny_result.model)
    with torch.no_grad():
        assert torch.equal(loaded.model(tiny_data.x_test), tiny_result.model.eval()(tiny_data.x_test))


def test_checkpoint_loads_safely_with_weights_only(tiny_result, tmp_path):
    path = save_checkpoint(tiny_result, tmp_path / "model.pt")
    ckpt = torch.load(path, weights_only=True)
    assert {"config", "state_dict", "history", "metrics"} <= ckpt.keys()
    assert ckpt["config"] == tiny_result.config.to_dict()
    assert TrainConfig.from_dict(ckpt["config"]) == tiny_result.config


def test_diverged_run_round_trips_its_explanation(tiny_config, tiny_data, tmp_path):
    from layerlens.training import fit

    config = dataclasses.replace(tiny_config, net=dataclasses.replace(tiny_config.net, batch_norm=False),
                                 optimizer="sgd", learning_rate=1e6, schedule="constant")
    result = fit(config, tiny_data)
    assert result.diverged
    assert load_checkpoint(save_checkpoint(result, tmp_path / "blown.pt")).diverged == result.diverged


def test_garbage_file_is_refused_with_a_value_error(tmp_path):
    path = tmp_path / "garbage.pt"
    path.write_bytes(b"\x00\x01 definitely not a checkpoint " * 10)
    with pytest.raises(ValueError, match="garbage.pt is not a LayerLens checkpoint"):
        load_checkpoint(path)


def test_other_torch_file_is_refused_with_a_value_error(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(3)}, path)
    with pytest.raises(ValueError, match="weights.pt is not a LayerLens checkpoint"):
        load_checkpoint(path)


def test_checkpoint_for_another_architecture_is_refused(tiny_result, tmp_path):
    path = save_checkpoint(tiny_result, tmp_path / "model.pt")
    ckpt = torch.load(path, weights_only=True)
    ckpt["config"]["net"]["channels"] = [5, 8]  # weights no longer fit the config
    torch.save(ckpt, path)
    with pytest.raises(ValueError, match="not a LayerLens checkpoint"):
        load_checkpoint(path)


def test_missing_file_is_refused_with_a_value_error_that_says_why(tmp_path):
    with pytest.raises(ValueError, match=r"Could not open nothing-here.pt \(FileNotFoundError: No such file"):
        load_checkpoint(tmp_path / "nothing-here.pt")


def test_get_or_train_trains_once(quick_config, tiny_data, tmp_path):
    cache = ModelCache(tmp_path / "models")
    assert cache.get(quick_config) is None
    counter = EpochCounter()
    first = cache.get_or_train(quick_config, tiny_data, on_step=counter)
    assert counter.epochs == quick_config.epochs
    second = cache.get_or_train(quick_config, tiny_data, on_step=counter)
    assert second is first
    assert counter.epochs == quick_config.epochs  # no second training
    assert cache.get(quick_config) is first
    assert (tmp_path / "models" / f"{quick_config.key()}.pt").exists()


def test_a_new_cache_on_the_same_folder_loads_from_disk(quick_config, tiny_data, tmp_path):
    trained = ModelCache(tmp_path / "models").get_or_train(quick_config, tiny_data)
    restarted = ModelCache(tmp_path / "models")  # as after a server restart
    counter = EpochCounter()
    loaded = restarted.get_or_train(quick_config, tiny_data, on_step=counter)
    assert counter.epochs == 0
    assert loaded is not trained and loaded.config == trained.config
    assert loaded.metrics == trained.metrics
    assert_same_weights(loaded.model, trained.model)


def test_different_configs_get_different_models(quick_config, tiny_data, tmp_path):
    cache = ModelCache(tmp_path / "models")
    a = cache.get_or_train(quick_config, tiny_data)
    b = cache.get_or_train(dataclasses.replace(quick_config, seed=1), tiny_data)
    assert a is not b and b.config.seed == 1
    assert len(list((tmp_path / "models").glob("*.pt"))) == 2


def test_an_unreadable_cache_file_is_a_miss_and_gets_replaced(quick_config, tiny_data, tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / f"{quick_config.key()}.pt").write_bytes(b"half-written")
    cache = ModelCache(folder)
    assert cache.get(quick_config) is None
    counter = EpochCounter()
    cache.get_or_train(quick_config, tiny_data, on_step=counter)
    assert counter.epochs == quick_config.epochs
    assert load_checkpoint(folder / f"{quick_config.key()}.pt").config == quick_config


def test_memory_only_cache_writes_nothing(quick_config, tiny_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    cache = ModelCache(None)
    counter = EpochCounter()
    first = cache.get_or_train(quick_config, tiny_data, on_step=counter)
    assert cache.get_or_train(quick_config, tiny_data, on_step=counter) is first
    assert counter.epochs == quick_config.epochs
    assert sorted(tmp_path.rglob("*")) == before
    assert ModelCache(None).get(quick_config) is None  # nothing survives a restart


def test_concurrent_callers_share_one_training(quick_config, tiny_data, tmp_path):
    cache = ModelCache(tmp_path / "models")
    counter = EpochCounter()
    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get_or_train(quick_config, tiny_data,
                                                                                 on_step=counter)))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3 and all(r is results[0] for r in results)
    assert counter.epochs == quick_config.epochs


def test_a_model_in_the_shipped_folder_is_used_and_never_trained(quick_config, tiny_data, tmp_path):
    from layerlens.training import fit, weights_digest

    shipped = tmp_path / "models"
    ready = fit(quick_config, tiny_data)
    save_checkpoint(ready, shipped / "ready.pt")
    (shipped / "notes.pt").write_bytes(b"not a checkpoint")  # left out, with a warning
    cache = ModelCache(tmp_path / "cache", shipped=shipped)
    found = cache.get(quick_config)
    assert found is not None and weights_digest(found.model) == weights_digest(ready.model)
    assert not (tmp_path / "cache").exists()  # nothing was trained or copied
    assert cache.get_or_train(quick_config, tiny_data) is found
    assert cache.get(dataclasses.replace(quick_config, seed=9)) is None
    again = dataclasses.replace(quick_config, seed=5)  # a model saved there later is found too
    save_checkpoint(fit(again, tiny_data), shipped / "later.pt")
    assert cache.get(again) is not None


SHIPPED = {"tiny-mnist-sample.pt": (SAMPLE, 0.97), "lenet-mnist.pt": ("mnist", 0.99),
           "wide-fashion-mnist.pt": ("fashion-mnist", 0.915)}  # file → the dataset it starts, its least accuracy


def test_every_file_in_models_is_a_declared_shipped_model():
    assert sorted(p.name for p in (ROOT / "models").glob("*.pt")) == sorted(SHIPPED)
    assert sorted(SHIPPED) == sorted(f"{name}.pt" for name in SHIPPED_MODELS)  # the app never replaces them


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_each_shipped_model_is_the_one_its_dataset_starts_with(name, request, tmp_path_factory):
    """What the app asks for a dataset (its recommended preset and recipe) is exactly the shipped model's config, so
    the server loads it instead of training; it loads with weights_only and scores what it says."""
    dataset, least = SHIPPED[name]
    loaded = load_checkpoint(ROOT / "models" / name)
    assert loaded.config.dataset == dataset and loaded.metrics["test_accuracy"] >= least
    data = load_dataset(SAMPLE) if dataset == SAMPLE else load_dataset(
        dataset, data_dir=request.getfixturevalue("shared_data"),
        cache_dir=tmp_path_factory.getbasetemp() / "shared-cache")  # each dataset read once per test run
    assert loaded.config == preset_train_config(RECOMMENDED_PRESET[dataset], data)

"""Training on a real local Ray: same model as a local fit, a killed worker, a cancel, the CLI (that nothing imports Ray
unless asked: test_architecture.py)."""
from __future__ import annotations

import dataclasses
import gc
import json
import os
import signal
import time
from pathlib import Path

import pytest
import torch

from layerlens.__main__ import main
from layerlens.checkpoints import ModelCache
from layerlens.jobs import CANCELLED, DONE, TrainingQueue
from layerlens.remote import (RayTrainer, RemoteTrainingCancelled, RemoteTrainingFailed, pack, ray_runner,
                              task_resources, unpack)
from layerlens.training import TrainResult, fit

ROOT = Path(__file__).resolve().parents[1]
RAY_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",  # no usage report, no prompt
    "PYTHONPATH": str(ROOT),  # workers import layerlens however pytest was started
}


@pytest.fixture(scope="module")
def ray_cluster():
    """A real Ray on this machine, 2 CPUs, started once for the module (~15 s on a busy 2-core machine)."""
    import ray

    saved = {key: os.environ.get(key) for key in (*RAY_ENV, "RAY_AUTH_MODE")}  # ray.init sets RAY_AUTH_MODE too
    os.environ.update(RAY_ENV)
    ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=80 * 2**20)

    def import_layerlens() -> None:  # defined here, so that Ray sends it by value: workers cannot import tests/
        import layerlens.remote  # noqa: F401

        time.sleep(0.5)  # long enough that the two calls run on the two workers

    # both workers import layerlens (and torch) now, side by side: the tests then time trainings, not imports
    ray.get([ray.remote(import_layerlens).remote() for _ in range(2)])
    yield ray
    ray.shutdown()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def one_thread_result(tiny_config, tiny_data) -> TrainResult:
    """tiny_config trained here on one thread, as a 1-CPU Ray task trains it: the same sums in the same order."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fit(tiny_config, tiny_data)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def trainer(ray_cluster):
    trainer = RayTrainer("local")  # Ray is already up: the trainer uses it
    yield trainer
    trainer.shutdown()


@pytest.fixture
def long_config(tiny_config):
    """tiny_config for 3000 epochs (about half a minute): still running when the test stops it."""
    return dataclasses.replace(tiny_config, epochs=3000)


def wait_for(condition, seconds: float = 60.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"still waiting after {seconds} s")


def descends_from(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # the parent's pid follows the state
    return False


def training_workers() -> list[int]:
    """This test's Ray workers that are running a training: their process title is ray::layerlens_train."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if cmdline.startswith(b"ray::layerlens_train") and descends_from(int(entry.name), os.getpid()):
            pids.append(int(entry.name))
    return pids


def test_ray_training_gives_the_local_model_and_reports_progress(trainer, tiny_config, tiny_data,
                                                                  one_thread_result):
    run = trainer.start(tiny_config, tiny_data)
    result = run.result(timeout=120)
    assert run.done()
    # seeded and single-threaded on both sides: the very same weights
    assert result.metrics["test_accuracy"] == one_thread_result.metrics["test_accuracy"]
    for name, tensor in one_thread_result.model.state_dict().items():
        assert torch.equal(result.model.state_dict()[name], tensor), name
    assert result.history.step_loss == one_thread_result.history.step_loss
    progress = run.progress()
    assert progress.epoch_done and progress.epoch == tiny_config.epochs and progress.step == progress.total_steps
    assert progress.test_accuracy == result.metrics["test_accuracy"]
    assert run.losses() == result.history.step_loss  # every step's loss came through, in order


def test_a_bad_config_raises_fits_own_value_error(trainer, tiny_config, tiny_data):
    wrong = dataclasses.replace(tiny_config, net=dataclasses.replace(tiny_config.net, num_classes=4))
    with pytest.raises(ValueError) as local:
        fit(wrong, tiny_data)
    with pytest.raises(ValueError) as remote:
        trainer.start(wrong, tiny_data).result(timeout=60)
    assert not isinstance(remote.value, RemoteTrainingFailed)
    assert str(remote.value) == str(local.value)


def test_the_training_queue_trains_on_the_cluster(trainer, tiny_config, tiny_data, one_thread_result):
    queue = TrainingQueue(ModelCache(None), slots=trainer.slots(), runner=ray_runner(trainer))
    assert queue.slots == 2  # one per CPU of the 2-CPU cluster
    job = queue.submit(tiny_config, tiny_data, visitor="ada")
    assert job.wait(120)
    assert job.state == DONE, job.error
    assert job.result.metrics["test_accuracy"] == one_thread_result.metrics["test_accuracy"]
    assert job.losses == one_thread_result.history.step_loss  # the live loss chart gets every step
    assert job.progress.epoch == tiny_config.epochs
    queue.close()


def test_a_dataset_travels_once_and_is_let_go_with_it(trainer, tiny_config, tiny_data, monkeypatch):
    import ray

    puts = []
    real_put = ray.put
    monkeypatch.setattr(ray, "put", lambda value, **kwargs: puts.append(1) or real_put(value, **kwargs))
    data = dataclasses.replace(tiny_data)  # the same images in another ImageData: another dataset to the trainer
    runs = [trainer.start(dataclasses.replace(tiny_config, seed=seed), data) for seed in (1, 2)]
    assert [run.result(timeout=120).config.seed for run in runs] == [1, 2]
    assert len(puts) == 1
    kept = len(trainer._datasets)
    del data, runs
    gc.collect()
    assert len(trainer._datasets) == kept - 1  # the trainer holds no dataset the server let go of


def test_a_training_no_machine_can_take_fails_at_once(trainer, tiny_config, tiny_data, monkeypatch):
    monkeypatch.setenv("LAYERLENS_RAY_GPUS", "1")  # this cluster has no GPU
    with pytest.raises(RemoteTrainingFailed, match="No machine in the cluster can take this training yet"):
        trainer.start(tiny_config, tiny_data)


def test_the_cli_trains_on_ray_and_says_so(ray_cluster, capsys):
    # Ray is up in this process: the CLI uses it (mnist-sample loads in ~5 s of CPU: loaded once only)
    assert main(["train", "--dataset", "mnist-sample", "--epochs", "1", "--train-size", "500", "--json",
                 "--ray", "local"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert len(lines) == 1
    report = json.loads(lines[0])
    assert report["backend"] == "ray" and report["dataset"] == "mnist-sample" and report["preset"] == "tiny"
    assert report["train_images"] == 500 and report["epochs"] == 1 and report["diverged"] is None
    assert 0 <= report["test_accuracy"] <= 1 and report["images_per_second"] > 0


# the next two kill a worker each: last, so that no other test waits for a new worker to import torch
def test_a_killed_worker_fails_in_words_and_the_trainer_goes_on(trainer, long_config, tiny_config, tiny_data):
    run = trainer.start(long_config, tiny_data)
    wait_for(lambda: run.progress() is not None)
    assert not run.done()
    workers = wait_for(training_workers)
    assert len(workers) == 1
    os.kill(workers[0], signal.SIGKILL)
    started = time.monotonic()
    with pytest.raises(RemoteTrainingFailed) as failed:
        run.result(timeout=60)
    assert time.monotonic() - started < 30  # noticed at once, not after the 3000 epochs (or a retry)
    message = str(failed.value)
    assert message.startswith("The training worker stopped before it finished (") and "Press Train" in message
    assert "Traceback" not in message and "ray" not in message.lower()
    assert run.done()

    again = trainer.start(tiny_config, tiny_data).result(timeout=120)
    assert again.metrics["epochs"] == tiny_config.epochs


def test_cancel_stops_the_worker_directly_or_through_the_queue(trainer, long_config, tiny_data):
    queue = TrainingQueue(ModelCache(None), slots=2, runner=ray_runner(trainer))
    job = queue.submit(dataclasses.replace(long_config, seed=1), tiny_data, visitor="ada")
    run = trainer.start(long_config, tiny_data)
    wait_for(lambda: run.progress() is not None and job.progress is not None)
    assert len(training_workers()) == 2
    run.cancel()
    queue.cancel(job, visitor="ada")  # nobody else waits for it: the queue stops its worker
    with pytest.raises(RemoteTrainingCancelled):
        run.result(timeout=30)
    assert run.done() and run.progress().step < run.progress().total_steps
    assert job.wait(30) and job.state == CANCELLED and job.result is None
    wait_for(lambda: not training_workers(), 30)  # both worker processes are gone
    queue.close()


def test_task_resources_follow_the_cluster_and_the_settings(monkeypatch):
    assert task_resources({"CPU": 8}) == {"num_cpus": 1, "num_gpus": 0}
    assert task_resources({"CPU": 8, "GPU": 2}) == {"num_cpus": 1, "num_gpus": 1}
    monkeypatch.setenv("LAYERLENS_RAY_GPUS", "1")
    assert task_resources({"CPU": 8})["num_gpus"] == 1
    monkeypatch.setenv("LAYERLENS_RAY_GPUS", "0")
    monkeypatch.setenv("LAYERLENS_RAY_CPUS_PER_TASK", "4")
    assert task_resources({"CPU": 8, "GPU": 2}) == {"num_cpus": 4, "num_gpus": 0}
    monkeypatch.setenv("LAYERLENS_RAY_CPUS_PER_TASK", "many")
    with pytest.raises(ValueError, match="LAYERLENS_RAY_CPUS_PER_TASK"):
        task_resources({})


def test_packing_keeps_the_data_bit_for_bit_in_a_quarter_of_the_bytes(tiny_data):
    packed = pack(tiny_data)
    assert packed["x_train"].dtype.itemsize == 1
    back = unpack(packed)
    assert torch.equal(back.x_train, tiny_data.x_train) and torch.equal(back.y_test, tiny_data.y_test)
    assert (back.name, back.classes, back.mean, back.std) == (tiny_data.name, tiny_data.classes, tiny_data.mean,
                                                              tiny_data.std)

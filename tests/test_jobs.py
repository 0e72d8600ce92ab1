"""The training queue a class shares: one training per config, a place in line, replacing and cancelling."""
from __future__ import annotations

import dataclasses
import threading
import time

import pytest

from layerlens.checkpoints import ModelCache
from layerlens.jobs import (CANCELLED, DONE, FAILED, MIN_TIMED_SECONDS, QUEUED, RUNNING, TrainingQueue, Wait,
                            default_slots, forward_flops, local_runner, ordinal, training_flops)


class GatedRunner:
    """The real local runner, held at the gate until the test opens it; counts the trainings it starts."""

    def __init__(self):
        self.gate = threading.Event()
        self.started: list[str] = []

    def __call__(self, job):
        self.started.append(job.config.key())
        self.gate.wait(60)
        return local_runner(job)


@pytest.fixture
def runner() -> GatedRunner:
    gated = GatedRunner()
    yield gated
    gated.gate.set()


def configs(base, n):
    return [dataclasses.replace(base, seed=i, epochs=1) for i in range(n)]


def test_two_visitors_asking_for_one_config_share_one_training(tiny_config, tiny_data, tmp_path, runner):
    queue = TrainingQueue(ModelCache(tmp_path), slots=1, runner=runner)
    config = dataclasses.replace(tiny_config, epochs=1)
    first = queue.submit(config, tiny_data, "ann")
    second = queue.submit(config, tiny_data, "bob")
    assert first is second and first.visitors == {"ann", "bob"}
    runner.gate.set()
    assert first.wait(60) and first.state == DONE
    assert runner.started == [config.key()]  # trained once
    cached = queue.submit(config, tiny_data, "cay")  # cached now: done at once, nothing queued
    assert cached.state == DONE and cached.result is first.result and queue.waiting() == 0


def test_each_queued_visitor_sees_its_place_in_line_and_a_growing_wait(tiny_config, tiny_data, tmp_path, runner):
    queue = TrainingQueue(ModelCache(tmp_path), slots=1, runner=runner)
    jobs = [queue.submit(c, tiny_data, f"student {i}") for i, c in enumerate(configs(tiny_config, 4))]
    for _ in range(100):  # the first job leaves the line for the one slot
        if jobs[0].state == RUNNING:
            break
        jobs[0].wait(0.05)
    waits = [queue.status(job) for job in jobs]
    assert [w.state for w in waits] == [RUNNING, QUEUED, QUEUED, QUEUED]
    assert [w.position for w in waits] == [0, 1, 2, 3]
    assert 0 < waits[1].starts_in < waits[2].starts_in < waits[3].starts_in  # each waits for those ahead
    assert waits[2].done_in == pytest.approx(waits[2].starts_in + jobs[2].estimate)
    assert "2nd in line" in waits[2].sentence() and "about" in waits[2].sentence()
    runner.gate.set()
    assert all(job.wait(60) for job in jobs) and {job.state for job in jobs} == {DONE}


def test_two_slots_halve_the_line(tiny_config, tiny_data, tmp_path, runner):
    queue = TrainingQueue(ModelCache(tmp_path), slots=2, runner=runner)
    jobs = [queue.submit(c, tiny_data, i) for i, c in enumerate(configs(tiny_config, 4))]
    for _ in range(100):
        if all(job.state == RUNNING for job in jobs[:2]):
            break
        jobs[0].wait(0.05)
    assert [queue.status(job).position for job in jobs] == [0, 0, 1, 2]
    runner.gate.set()
    assert all(job.wait(60) for job in jobs)


def test_moving_a_slider_again_replaces_the_visitors_job(tiny_config, tiny_data, tmp_path, runner):
    queue = TrainingQueue(ModelCache(tmp_path), slots=1, runner=runner)
    blocker, first, second = configs(tiny_config, 3)
    holder = queue.submit(blocker, tiny_data, "teacher")  # holds the slot
    for _ in range(200):
        if holder.state == RUNNING:
            break
        holder.wait(0.05)
    old = queue.submit(first, tiny_data, "ann")
    shared = queue.submit(first, tiny_data, "bob")
    assert old is shared
    new = queue.submit(second, tiny_data, "ann")  # ann moved a slider: her old job goes, bob still wants it
    assert old.state == QUEUED and old.visitors == {"bob"}
    newer = queue.submit(blocker, tiny_data, "ann")  # and again: her second job had only her, so it is cancelled
    assert new.state == CANCELLED and new.wait(0)
    assert queue.waiting() == 1 and newer.visitors == {"teacher", "ann"}
    runner.gate.set()
    assert old.wait(60) and old.state == DONE and second.key() not in runner.started


def test_a_visitor_cancels_a_running_training_and_the_server_goes_on(tiny_config, tiny_data, tmp_path):
    queue = TrainingQueue(ModelCache(tmp_path), slots=1)
    long = dataclasses.replace(tiny_config, epochs=400)
    job = queue.submit(long, tiny_data, "ann")
    for _ in range(200):
        if job.progress is not None:
            break
        job.wait(0.05)
    assert job.state == RUNNING and job.losses
    queue.cancel(job, "ann")
    assert job.wait(30) and job.state == CANCELLED and job.result is None
    assert queue.cache.get(long) is None  # a cancelled training leaves nothing behind
    after = queue.submit(dataclasses.replace(tiny_config, epochs=1), tiny_data, "ann")
    assert after.wait(60) and after.state == DONE


def test_the_server_log_follows_each_training_through_the_queue(tiny_config, tiny_data, tmp_path, caplog):
    queue = TrainingQueue(ModelCache(tmp_path), slots=1)
    done, cancelled = configs(tiny_config, 2)
    with caplog.at_level("INFO", logger="layerlens.jobs"):
        assert queue.submit(done, tiny_data, "ann").wait(60)
        long = queue.submit(dataclasses.replace(cancelled, epochs=400), tiny_data, "bob")
        queue.cancel(long, "bob")
        assert long.wait(30) and long.state == CANCELLED
    lines = [r.getMessage() for r in caplog.records if r.name == "layerlens.jobs"]
    assert lines[0].startswith(f"training {done.key()} (tiny-bars) queued: 1 in line, about ")
    assert lines[1].startswith(f"training {done.key()} started on training-slot-1")
    assert lines[2].startswith(f"training {done.key()} done after ")
    assert lines[-1].startswith(f"training {long.config.key()} cancelled ")  # after N s, or before it started


def test_a_training_that_breaks_gives_a_sentence_and_the_queue_keeps_working(tiny_config, tiny_data, tmp_path):
    def breaking(job):
        if job.config.seed == 0:
            raise RuntimeError("worker lost")
        return local_runner(job)

    queue = TrainingQueue(ModelCache(tmp_path), slots=1, runner=breaking)
    broken, fine = configs(tiny_config, 2)
    job = queue.submit(broken, tiny_data, "ann")
    assert job.wait(60) and job.state == FAILED
    assert "worker lost" in job.error and "try again" in job.error
    assert queue.submit(fine, tiny_data, "ann").wait(60)


def test_estimates_learn_from_finished_trainings(tiny_config, tiny_data, tmp_path):
    queue = TrainingQueue(ModelCache(tmp_path), slots=1, flops_per_second=1.0)  # a wildly wrong first guess
    epochs = 60  # 0.4 s on an AVX-512 machine, 1 s on an AVX2 one: longer until a training is long enough to time
    while True:
        job = queue.submit(dataclasses.replace(tiny_config, epochs=epochs), tiny_data)
        assert job.wait(120) and job.state == DONE
        if job.result.metrics["seconds"] > MIN_TIMED_SECONDS:
            break
        assert queue.flops_per_second == 1.0  # too short to time: the guess stands
        epochs *= 3
    assert 1e6 < queue.flops_per_second < 1e13


def test_the_line_is_estimated_from_how_fast_the_running_training_goes(tiny_config, tiny_data, tmp_path):
    queue = TrainingQueue(ModelCache(tmp_path), slots=1, flops_per_second=1.0)  # a first guess far too slow
    running = queue.submit(dataclasses.replace(tiny_config, epochs=3000), tiny_data, "ann")  # runs for a while
    waiting = queue.submit(dataclasses.replace(tiny_config, epochs=2), tiny_data, "bob")
    assert queue.status(waiting).done_in > 1e5  # nothing measured yet: the first guess
    for _ in range(400):
        if running.progress is not None and time.monotonic() - running.started > 1.5:
            break
        time.sleep(0.05)
    wait = queue.status(waiting)
    fraction = running.progress.step / running.progress.total_steps
    expected = waiting.flops / (running.flops * fraction / (time.monotonic() - running.started))
    assert wait.position == 1 and 0.5 * expected < wait.done_in - wait.starts_in < 2 * expected  # the rate seen now
    queue.close()
    queue.cancel(running)
    assert running.wait(60)


def test_flop_counts_follow_the_architecture(tiny_config):
    net = tiny_config.net  # 12×12 grey, blocks of 4 and 8 channels, 3×3 kernels with padding, dense 16, 3 classes
    macs = 12 * 12 * 4 * 1 * 9 + 6 * 6 * 8 * 4 * 9 + (8 * 3 * 3) * 16 + 16 * 3
    assert forward_flops(net) == 2 * macs
    one_epoch = dataclasses.replace(tiny_config, epochs=1)
    assert training_flops(one_epoch, 60, 30) == 2 * macs * (3 * 60 + 30)


def test_settings_and_words(monkeypatch):
    monkeypatch.setenv("LAYERLENS_TRAINING_SLOTS", "3")
    assert default_slots() == 3
    monkeypatch.setenv("LAYERLENS_TRAINING_SLOTS", "none")
    with pytest.raises(ValueError, match="LAYERLENS_TRAINING_SLOTS"):
        default_slots()
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101)] == \
        ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st"]
    shared = Wait(QUEUED, 2, 20.0, 24.0, 1).sentence()
    assert "2nd in line" in shared and "about 20 s" in shared and "about 4 s" in shared and "1 other" in shared

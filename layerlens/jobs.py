"""The training queue a whole class shares: trainings are jobs with a place in line and an estimated wait.

A config that is cached never waits; one that someone is already training is never trained twice (everyone who
asks waits for the same job); each visitor has at most one job (asking for another replaces it); a job nobody
waits for any more is cancelled. `slots` trainings run at once, in this process or, with a RayTrainer, as tasks on
a Ray cluster.
"""
from __future__ import annotations

import heapq
import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Hashable

from .checkpoints import ModelCache
from .data import ImageData
from .formatting import seconds
from .nets import NetConfig
from .training import Progress, TrainConfig, TrainResult, epoch_test_images, fit

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
RATE_WINDOW_S = 10.0  # queue estimates follow the running training's speed over this many seconds
# training FLOP/s assumed until the first job has been timed: below the slowest seen, the `tiny` preset on a 2-core
# AVX2 machine (14 GFLOP/s; `wide` 41, `deep` 63 there, 2–3× that with AVX-512: benchmarks/train_speed.py). 3e9 before
# told the first CIFAR-10 student "about 61 min" for a training of 1.5 min
FIRST_GUESS_FLOPS = 1e10
MIN_TIMED_SECONDS = 0.5  # a finished training teaches the estimate its speed only if it took longer than this


class Cancelled(Exception):
    """Raised inside a training whose job was cancelled, to stop it at the next step."""


def default_slots() -> int:
    """Trainings at once: $LAYERLENS_TRAINING_SLOTS, else one per 4 cores (at least one). Two trainings sharing
    the same cores each run at about half speed, so more slots only help on bigger machines."""
    setting = os.environ.get("LAYERLENS_TRAINING_SLOTS", "").strip()
    if setting:
        if not setting.isdigit() or int(setting) < 1:
            raise ValueError(f"LAYERLENS_TRAINING_SLOTS must be a whole number ≥ 1 (got {setting!r}).")
        return int(setting)
    return max(1, (os.cpu_count() or 1) // 4)


def forward_flops(net: NetConfig) -> int:
    """Floating-point operations of one image's forward pass through the convolutions and dense layers."""
    macs, size, c_in = 0, net.image_size, net.in_channels
    for block, c_out in enumerate(net.channels, start=1):
        k = net.kernel(block)
        size = size if net.padding else size - k + 1
        macs += size * size * c_out * c_in * k * k
        size, c_in = size // 2, c_out
    flat = c_in * size * size
    if net.dense:
        macs, flat = macs + flat * net.dense, net.dense
    return 2 * (macs + flat * net.num_classes)


def training_flops(config: TrainConfig, train_images: int, test_images: int) -> int:
    """Operations of a whole training: forward and backward (≈ 3 forwards) per image trained on (every image in
    epoch 1, then every image or the config's share of the hardest), plus the test images scored after every epoch."""
    n = min(config.train_size or train_images, train_images)
    scored = epoch_test_images(n, test_images) * (config.epochs - 1) + test_images
    return forward_flops(config.net) * (3 * (n + config.hardest_images(n) * (config.epochs - 1)) + scored)


@dataclass(eq=False)
class Job:
    """One training: who waits for it, where it is, and what came of it."""

    config: TrainConfig
    estimate: float  # seconds the training itself should take, at the rate known when it was asked for
    flops: int
    data: ImageData = field(repr=False)
    visitors: set[Hashable] = field(default_factory=set)
    state: str = QUEUED
    submitted: float = field(default_factory=time.monotonic)
    started: float | None = None
    progress: Progress | None = None
    result: TrainResult | None = None
    error: str | None = None
    losses: list[float] = field(default_factory=list, repr=False)  # every step's training loss reported so far
    marks: deque = field(default_factory=lambda: deque(maxlen=4096), repr=False)  # (time, step) of each report
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _done: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def finished(self) -> bool:
        return self.state in (DONE, FAILED, CANCELLED)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job has finished (True) or timeout seconds passed (False)."""
        return self._done.wait(timeout)

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def report(self, progress: Progress) -> None:
        """Called by the runner as training goes on."""
        self.progress = progress
        self.losses.append(progress.loss)
        self.marks.append((time.monotonic(), progress.step))

    def recent_rate(self, window: float = RATE_WINDOW_S) -> tuple[float, float] | None:
        """(FLOP/s over the last `window` seconds of reports, seconds those reports span), or None before 1 s."""
        marks = list(self.marks)
        if len(marks) < 2 or self.progress is None:
            return None
        end, last = marks[-1]
        start, first = next((t, step) for t, step in marks if end - t <= window)
        if end - start < 1.0 or last <= first:
            return None
        return self.flops / self.progress.total_steps * (last - first) / (end - start), end - start


@dataclass(frozen=True)
class Wait:
    """Where a job stands: its place in line (0 once it runs) and the seconds until it starts and until it is done."""

    state: str
    position: int
    starts_in: float
    done_in: float
    others: int  # other visitors waiting for the same job

    def sentence(self) -> str:
        """'2nd in line: training starts in about 20 s and then takes about 4 s.'"""
        shared = (f" {self.others} other{'s' if self.others > 1 else ''} asked for this same network: it trains once "
                  "for all of you." if self.others else "")
        if self.state == QUEUED:
            return (f"Waiting for a training slot: **{ordinal(self.position)} in line**, training starts in about "
                    f"{seconds(self.starts_in)} and then takes about {seconds(self.done_in - self.starts_in)}."
                    + shared)
        return f"Training, about {seconds(self.done_in)} left." + shared


def ordinal(n: int) -> str:
    """1 → '1st', 2 → '2nd', 11 → '11th', 23 → '23rd'."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


Runner = Callable[[Job], TrainResult]


def local_runner(job: Job) -> TrainResult:
    """Train in this process; the job's progress follows every step and a cancel stops it at the next one."""

    def on_step(progress: Progress) -> None:
        job.report(progress)
        if job.cancel_requested:
            raise Cancelled()

    return fit(job.config, job.data, on_step=on_step)


class TrainingQueue:
    """Trainings in order of asking, `slots` at a time, every result put in the shared model cache."""

    def __init__(self, cache: ModelCache, slots: int | None = None, runner: Runner = local_runner,
                 flops_per_second: float = FIRST_GUESS_FLOPS):
        self.cache, self.runner = cache, runner
        self.slots = slots or default_slots()
        self.flops_per_second = flops_per_second  # measured on every finished job (running mean)
        self._timed = 0
        self._lock = threading.Condition()
        self._line: list[Job] = []  # queued, in order
        self._jobs: dict[str, Job] = {}  # config key → queued or running job
        self._by_visitor: dict[Hashable, Job] = {}
        self._workers: list[threading.Thread] = []
        self._closed = False

    # what visitors do
    def submit(self, config: TrainConfig, data: ImageData, visitor: Hashable | None = None) -> Job:
        """The job that gives config's model: already done if cached, the running or queued one if someone asked
        first, else a new one at the end of the line. A visitor's earlier unfinished job is given up."""
        config.validate()
        cached = self.cache.get(config)
        key = config.key()
        with self._lock:
            if cached is None:
                cached = self.cache.memory.get(key)  # finished while we looked on disk
            if cached is not None:
                job = Job(config, 0.0, 0, data, state=DONE, result=cached)
                job._done.set()
            else:
                job = self._jobs.get(key)
                if job is None:
                    flops = training_flops(config, len(data.x_train), len(data.x_test))
                    job = Job(config, flops / self.flops_per_second, flops, data)
                    self._jobs[key] = job
                    self._line.append(job)
                    log.info("training %s (%s) queued: %d in line, about %.1f s of training", key, config.dataset,
                             len(self._line), job.estimate)
                    self._start_workers()
                    self._lock.notify()
            if visitor is not None:
                previous = self._by_visitor.get(visitor)
                if previous is not None and previous is not job:
                    self._leave(previous, visitor)
                if not job.finished:
                    job.visitors.add(visitor)
                    self._by_visitor[visitor] = job
        return job

    def cancel(self, job: Job, visitor: Hashable | None = None) -> None:
        """The visitor no longer waits for job; with nobody left waiting (or no visitor given), it is cancelled."""
        with self._lock:
            if visitor is None:
                job.visitors.clear()
            self._leave(job, visitor)

    def status(self, job: Job) -> Wait:
        """Place in line and estimated seconds until the job starts and until it is done."""
        with self._lock:
            others = max(0, len(job.visitors) - 1)
            if job.state == RUNNING:
                return Wait(RUNNING, 0, 0.0, self._left(job), others)
            if job.state != QUEUED:
                return Wait(job.state, 0, 0.0, 0.0, others)
            position = self._line.index(job) + 1
            rate = self._rate()
            running = [self._left(j) for j in self._jobs.values() if j.state == RUNNING]
            free = sorted(running + [0.0] * max(0, self.slots - len(running)))[:self.slots]  # when each slot frees
            heapq.heapify(free)
            for ahead in self._line[:position - 1]:
                heapq.heappush(free, heapq.heappop(free) + ahead.flops / rate)
            starts = free[0]
            return Wait(QUEUED, position, starts, starts + job.flops / rate, others)

    def busy(self) -> bool:
        """Whether a training runs or waits."""
        with self._lock:
            return bool(self._jobs)

    def waiting(self) -> int:
        """Jobs in line, not yet running."""
        with self._lock:
            return len(self._line)

    def close(self) -> None:
        """Stop the workers once their current jobs end; queued jobs are cancelled."""
        with self._lock:
            self._closed = True
            for job in list(self._line):
                job.visitors.clear()
                self._leave(job, None)
            self._lock.notify_all()

    # inside
    def _leave(self, job: Job, visitor: Hashable | None) -> None:  # with the lock held
        job.visitors.discard(visitor)
        if self._by_visitor.get(visitor) is job:
            del self._by_visitor[visitor]
        if job.visitors or job.finished:
            return
        if self._jobs.get(job.config.key()) is job:
            del self._jobs[job.config.key()]  # whoever asks again gets a fresh job, not one being stopped
        if job.state == QUEUED:
            self._line.remove(job)
            self._finish(job, CANCELLED)
        else:
            job._cancel.set()  # the runner stops at its next step

    def _rate(self) -> float:  # with the lock held
        """Training FLOP/s to expect from the next job. The running jobs' speed over the last RATE_WINDOW_S says how
        busy the server is now (a class that has just clicked, or only waits); the finished jobs' mean rate counts
        only until a running job has been watched for that long."""
        live = [rate for job in self._jobs.values() if job.state == RUNNING and (rate := job.recent_rate())]
        if not live:
            return self.flops_per_second
        span = max(seconds for _, seconds in live)
        weight = 1.0 if self._timed == 0 else min(1.0, span / RATE_WINDOW_S)  # a first guess is worth nothing
        return (1 - weight) * self.flops_per_second + weight * sum(r for r, _ in live) / len(live)

    def _left(self, job: Job) -> float:
        elapsed = time.monotonic() - (job.started or time.monotonic())
        p = job.progress
        if p is not None and p.step > 0 and elapsed > 0.5:
            return max(0.5, elapsed * (p.total_steps / p.step - 1))
        return max(0.5, job.estimate - elapsed)

    def _start_workers(self) -> None:  # with the lock held
        while len(self._workers) < self.slots:
            worker = threading.Thread(target=self._work, name=f"training-slot-{len(self._workers) + 1}", daemon=True)
            self._workers.append(worker)
            worker.start()

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._line and not self._closed:
                    self._lock.wait()
                if self._closed:
                    return
                job = self._line.pop(0)
                job.state, job.started = RUNNING, time.monotonic()
            log.info("training %s started on %s", job.config.key(), threading.current_thread().name)
            self._run(job)

    def _run(self, job: Job) -> None:
        try:
            result = self.runner(job)
        except Cancelled:
            with self._lock:
                self._finish(job, CANCELLED)
            return
        except ValueError as err:
            with self._lock:
                self._finish(job, FAILED, error=str(err))
            return
        except Exception as err:  # noqa: BLE001 - a visitor gets a sentence, the log gets the traceback
            log.exception("training %s failed", job.config.key())
            with self._lock:
                self._finish(job, FAILED, error=f"The training stopped with an unexpected error ({type(err).__name__}: "
                                                f"{err}). Press Train to try again.")
            return
        if job.cancel_requested:  # finished before it noticed: keep the model (someone may ask again), but no one waits
            self.cache.put(result)
            with self._lock:
                self._finish(job, CANCELLED, result)
            return
        self.cache.put(result)
        seconds_taken = result.metrics.get("seconds", 0)
        with self._lock:
            if seconds_taken > MIN_TIMED_SECONDS and not result.diverged:
                achieved = job.flops / seconds_taken
                self._timed += 1
                self.flops_per_second += (achieved - self.flops_per_second) / min(self._timed, 5)
            self._finish(job, DONE, result)

    def _finish(self, job: Job, state: str, result: TrainResult | None = None, error: str | None = None) -> None:
        job.state, job.result, job.error = state, result, error
        log.info("training %s %s %s", job.config.key(), state,
                 f"after {time.monotonic() - job.started:.1f} s" if job.started else "before it started")
        if self._jobs.get(job.config.key()) is job:
            del self._jobs[job.config.key()]
        for visitor in [v for v, j in self._by_visitor.items() if j is job]:
            del self._by_visitor[visitor]
        job._done.set()

"""Training on a Ray cluster: fit() runs as a Ray task, its progress comes back through a small actor.

Ray is imported only inside functions here, so a server or CLI that never asks for a cluster never loads it.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
import uuid
import weakref
from collections import OrderedDict
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .data import ImageData
from .jobs import Cancelled, Job
from .training import Progress, TrainConfig, TrainResult, fit

log = logging.getLogger(__name__)

GPUS_SETTING = "LAYERLENS_RAY_GPUS"  # 1: every training asks for a GPU; 0: never; unset: when the cluster has one
CPUS_SETTING = "LAYERLENS_RAY_CPUS_PER_TASK"  # CPU cores one training asks for (default 1)
REPORT_SECONDS = 0.5  # a worker reports its steps at most this often…
EPOCH_REPORT_SECONDS = 0.1  # …and every epoch end, unless epochs end faster than this (the last one always)
KEPT_DATASETS = 4  # datasets kept in the object store for the next training
KEPT_RUNS = 256  # runs the progress board remembers when nobody collects them
RETRY = "Press Train to try again."


class RemoteTrainingFailed(ValueError):
    """The training on the cluster did not finish; the message says why in words a student can read."""


class RemoteTrainingCancelled(Cancelled):
    """The training was cancelled (RemoteRun.cancel) before it finished."""


def task_resources(cluster: dict) -> dict:
    """What one training asks Ray for: a GPU (and one CPU) when the cluster has GPUs or $LAYERLENS_RAY_GPUS=1,
    else $LAYERLENS_RAY_CPUS_PER_TASK CPU cores (default 1). fit() then picks CUDA itself where the task lands."""
    gpus = os.environ.get(GPUS_SETTING, "").strip()
    if gpus not in ("", "0", "1"):
        raise ValueError(f"{GPUS_SETTING} must be 1 (train on GPUs), 0 (on CPUs) or unset (GPUs when the cluster "
                         f"has them); got {gpus!r}.")
    cpus = os.environ.get(CPUS_SETTING, "").strip() or "1"
    try:
        num_cpus = float(cpus)
    except ValueError:
        num_cpus = 0.0
    if num_cpus <= 0:
        raise ValueError(f"{CPUS_SETTING} must be a positive number of CPU cores (got {cpus!r}).")
    if gpus == "1" or (gpus == "" and cluster.get("GPU", 0) > 0):
        return {"num_cpus": 1, "num_gpus": 1}
    return {"num_cpus": num_cpus, "num_gpus": 0}


def pack(data: ImageData) -> dict:
    """ImageData as numpy arrays for the object store: images as uint8 (4× less to store and send) when the
    floats are exactly k/255, as from_uint8 makes them, else as they are."""
    packed = {field.name: getattr(data, field.name) for field in dataclasses.fields(data)}
    for name in ("x_train", "x_test"):
        x = packed[name]
        as_bytes = x.mul(255).round_().clamp_(0, 255).to(torch.uint8)
        packed[name] = (as_bytes if torch.equal(as_bytes.float().div_(255), x) else x).numpy()
    for name in ("y_train", "y_test"):
        packed[name] = packed[name].numpy()
    return packed


def unpack(packed: dict) -> ImageData:
    """The ImageData that pack() packed, bit for bit."""
    fields = dict(packed)
    for name in ("x_train", "x_test", "y_train", "y_test"):
        tensor = torch.from_numpy(np.array(packed[name]))  # a writable copy: the object store's arrays are read-only
        fields[name] = tensor.float().div_(255) if tensor.dtype == torch.uint8 else tensor
    return ImageData(**fields)


def _progress_board_class():
    """The actor that holds each running training's latest progress and step losses.

    Defined in a function so that Ray ships the class by value: its process never imports torch (about 0.5 GB)."""

    class ProgressBoard:
        def __init__(self, kept: int):
            self.kept = kept
            self.runs = {}  # run → [latest progress as a tuple, every step's loss]

        def report(self, run: str, progress: tuple, losses: list) -> None:
            entry = self.runs.setdefault(run, [None, []])
            entry[0] = progress
            entry[1].extend(losses)
            while len(self.runs) > self.kept:  # runs nobody collected (their server went away)
                self.runs.pop(next(iter(self.runs)))

        def since(self, run: str, known: int) -> tuple:
            progress, losses = self.runs.get(run, (None, []))
            return progress, losses[known:]

        def forget(self, run: str) -> None:
            self.runs.pop(run, None)

    return ProgressBoard


class _Reporter:
    """on_step inside the worker: sends the latest Progress and the losses since the last report to the board."""

    def __init__(self, board, run: str):
        self.board, self.run = board, run
        self.latest: Progress | None = None
        self.losses: list[float] = []  # not yet sent
        self.sent_at = -float("inf")
        self.last_sent = None

    def __call__(self, progress: Progress) -> None:
        self.latest = progress
        self.losses.append(progress.loss)
        if time.monotonic() - self.sent_at >= (EPOCH_REPORT_SECONDS if progress.epoch_done else REPORT_SECONDS):
            self.send()

    def send(self) -> None:
        if self.losses:
            self.last_sent = self.board.report.remote(self.run, dataclasses.astuple(self.latest), self.losses)
            self.losses, self.sent_at = [], time.monotonic()

    def finish(self) -> None:
        """Send what is left and wait until the board has it, so the driver sees the last epoch with the result."""
        import ray

        self.send()
        if self.last_sent is not None:
            try:
                ray.get(self.last_sent, timeout=10)
            except Exception as err:  # noqa: BLE001 - progress is a nicety: the trained model still goes back
                log.warning("the progress board did not take the last report (%s: %s)", type(err).__name__, err)


def layerlens_train(packed: dict, config: TrainConfig, board, run: str, threads: int) -> TrainResult:
    """The Ray task: fit() on the worker, reporting to board. Its process is titled `ray::layerlens_train`."""
    torch.set_num_threads(threads)  # workers are reused: set what this task asked for, not what the last one did
    reporter = _Reporter(board, run)
    result = fit(config, unpack(packed), on_step=reporter)
    reporter.finish()
    return result


def failure_sentence(err: Exception) -> str:
    """What a Ray error means for the visitor who waits for the training."""
    import ray.exceptions as rx

    stopped = "The training worker stopped before it finished ({}). " + RETRY
    if isinstance(err, rx.OutOfMemoryError):
        return stopped.format("its machine ran out of memory, so Ray stopped it; a smaller network or training set "
                              "needs less")
    if isinstance(err, (rx.NodeDiedError, rx.LocalRayletDiedError)):
        return stopped.format("the machine it ran on left the cluster")
    if isinstance(err, rx.WorkerCrashedError):
        return stopped.format("its process ended unexpectedly: it was killed or it crashed")
    if isinstance(err, (rx.ObjectLostError, rx.OwnerDiedError)):
        return stopped.format("its result was lost with the machine that held it")
    if isinstance(err, rx.RuntimeEnvSetupError):
        return ("The cluster could not prepare a worker for this training: check that every machine in it has "
                "LayerLens's packages installed (pip install -r requirements.txt) and the same Ray and Python "
                "versions as this server. " + RETRY)
    if isinstance(err, rx.TaskUnschedulableError):
        return ("No machine in the cluster can take this training (it asks for more CPUs or GPUs than any machine "
                f"has; see {CPUS_SETTING} and {GPUS_SETTING}).")
    if isinstance(err, rx.RayTaskError):
        cause = err.cause if err.cause is not None else err
        first_line = (str(cause).strip().splitlines() or [""])[0]
        return f"The training stopped with an error on the cluster ({type(cause).__name__}: {first_line}). " + RETRY
    return stopped.format(f"the connection to the cluster failed: {type(err).__name__}")


class RemoteRun:
    """One training submitted to the cluster: its progress, whether it is done, its result; cancellable."""

    def __init__(self, ref, board, run: str, config: TrainConfig):
        self._ref, self._board, self._run, self.config = ref, board, run, config
        self._lock = threading.Lock()
        self._latest: Progress | None = None
        self._losses: list[float] = []
        self._asked = None  # the board's answer on its way, if any
        self._cancelled = False
        self._outcome: TrainResult | BaseException | None = None

    def progress(self) -> Progress | None:
        """The latest Progress the worker reported (None before its first step); never waits. Each call also asks
        the board for news, so the answer lags by one call."""
        with self._lock:
            self._poll(wait=0.0, ask_again=True)
            return self._latest

    def losses(self) -> list[float]:
        """Every step's training loss up to the step of the last progress() answer."""
        with self._lock:
            return list(self._losses)

    def done(self) -> bool:
        """Whether the training has ended (finished, failed or cancelled); never waits."""
        import ray

        if self._outcome is not None:
            return True
        ready, _ = ray.wait([self._ref], timeout=0)
        return bool(ready)

    def result(self, timeout: float | None = None) -> TrainResult:
        """The trained model, waiting at most timeout seconds (TimeoutError after that).

        A bad config raises fit()'s ValueError unchanged; a lost worker, machine or connection raises
        RemoteTrainingFailed with a sentence for the visitor; a cancelled run raises RemoteTrainingCancelled."""
        import ray
        import ray.exceptions as rx

        if self._outcome is None:
            try:
                outcome = ray.get(self._ref, timeout=timeout)
            except rx.GetTimeoutError:
                raise TimeoutError(f"The training is still running after {timeout:g} s.") from None
            except rx.TaskCancelledError:
                outcome = RemoteTrainingCancelled("The training was cancelled.")
            except Exception as err:  # noqa: BLE001 - every Ray failure becomes a sentence; the log keeps the cause
                outcome = self._failure(err)
            with self._lock:
                self._asked = None  # a fresh question: the worker waited for its last report to arrive before it
                self._poll(wait=5.0, ask_again=False)  # returned, so this answer brings the final epoch
                self._outcome = outcome
            if self._board is not None:
                self._board.forget.remote(self._run)
        if isinstance(self._outcome, BaseException):
            raise self._outcome.with_traceback(None)  # raised again on every call: no growing traceback
        return self._outcome

    def cancel(self) -> None:
        """Stop the training now (its worker process is killed); result() then raises RemoteTrainingCancelled. A
        training that had already finished keeps its result."""
        import ray

        if self._cancelled or self.done():
            return
        self._cancelled = True
        ray.cancel(self._ref, force=True)

    def _failure(self, err: Exception) -> BaseException:
        import ray.exceptions as rx

        if self._cancelled:  # a force-cancelled worker may also read as crashed
            return RemoteTrainingCancelled("The training was cancelled.")
        if isinstance(err, rx.RayTaskError) and isinstance(err.cause, ValueError):
            return err.cause  # fit's own message for a config that cannot train (a student can act on it)
        log.warning("training %s on the Ray cluster failed: %s", self.config.key(), err)
        return RemoteTrainingFailed(failure_sentence(err))

    def _poll(self, wait: float, ask_again: bool) -> None:  # with the lock held
        """Take the board's answer if it comes within wait seconds; then, if ask_again, ask for the next one."""
        import ray

        if self._board is None or self._outcome is not None:
            return
        if self._asked is None:
            self._asked = self._board.since.remote(self._run, len(self._losses))
        ready, _ = ray.wait([self._asked], timeout=wait)
        if ready:
            try:
                progress, losses = ray.get(self._asked)
            except Exception as err:  # noqa: BLE001 - without the board there is no progress; the training goes on
                log.warning("no progress from the Ray cluster any more (%s: %s)", type(err).__name__, err)
                self._board = self._asked = None
                return
            self._asked = None
            if progress is not None:
                self._latest = Progress(*progress)
                self._losses.extend(losses)
        if ask_again and self._asked is None:
            self._asked = self._board.since.remote(self._run, len(self._losses))


class RayTrainer:
    """Runs fit() as Ray tasks on the cluster at `address`: "auto" (the cluster this machine joined with `ray start`),
    "ray://host:10001" (Ray Client), or "local" (start a Ray on this machine with num_cpus cores).

    Connects in the constructor; when Ray is already initialised in this process it uses that connection. Each
    training asks for one GPU when the cluster has GPUs (or $LAYERLENS_RAY_GPUS=1), else
    $LAYERLENS_RAY_CPUS_PER_TASK CPU cores (default 1). Thread-safe."""

    def __init__(self, address: str, num_cpus: int | None = None):
        self.address, self.num_cpus = address.strip(), num_cpus
        self._lock = threading.Lock()
        self._owns_ray = False
        self._board = None
        self._task = None
        self._datasets: OrderedDict[tuple[str, int], object] = OrderedDict()  # (name, id(data)) → object ref
        with self._lock:
            self._connect()
            self._board_ready()  # its process starts while nobody waits for it

    def _connect(self) -> None:
        import ray

        if ray.is_initialized():
            return
        options = dict(include_dashboard=False)
        if self.address == "local":
            options.update(address="local", num_cpus=self.num_cpus)
        else:
            # the workers on other machines get this very layerlens package, so they train with the server's code
            options.update(address=self.address, runtime_env={
                "py_modules": [str(Path(__file__).resolve().parent)], "excludes": ["__pycache__"]})
        started = time.monotonic()
        try:
            ray.init(**options)
        except Exception as err:  # noqa: BLE001 - ConnectionError, RuntimeError, ValueError: all mean "no cluster"
            raise RemoteTrainingFailed(
                f"Could not connect to the Ray cluster at {self.address!r} ({type(err).__name__}: {err}). Start it "
                f"with `ray start --head` on its first machine (or train on this machine without Ray). A cluster "
                f"with token authentication also needs RAY_AUTH_MODE=token and RAY_AUTH_TOKEN (what "
                f"`ray get-auth-token` prints on the head machine) here.") from err
        self._owns_ray = True
        log.info("connected to Ray at %s in %.1f s: %s", self.address, time.monotonic() - started,
                 ray.cluster_resources())

    def slots(self) -> int:
        """Trainings the cluster runs at once now: one per GPU, or its CPU cores per training's cores."""
        import ray

        cluster = ray.cluster_resources()
        wants = task_resources(cluster)
        if wants["num_gpus"]:
            return max(1, int(cluster.get("GPU", 0)))
        return max(1, int(cluster.get("CPU", 1) // wants["num_cpus"]))

    def start(self, config: TrainConfig, data: ImageData) -> RemoteRun:
        """Submit fit(config, data) to the cluster (the data travels once per dataset through the object store).

        Raises RemoteTrainingFailed at once when the cluster lacks the CPU cores or the GPU a training asks for."""
        import ray

        with self._lock:
            self._connect()  # again after shutdown()
            cluster = ray.cluster_resources()
            wants = task_resources(cluster)
            if wants["num_gpus"] > cluster.get("GPU", 0) or wants["num_cpus"] > cluster.get("CPU", 0):
                # Ray would keep such a task waiting for a machine that may never join
                raise RemoteTrainingFailed(
                    f"No machine in the cluster can take this training yet: it asks for {wants['num_cpus']:g} CPU "
                    f"cores{' and a GPU' if wants['num_gpus'] else ''}, and the cluster has "
                    f"{cluster.get('CPU', 0):g} cores and {cluster.get('GPU', 0):g} GPUs (see {CPUS_SETTING} and "
                    f"{GPUS_SETTING}). " + RETRY)
            board = self._board_ready()
            if self._task is None:
                self._task = ray.remote(max_retries=0)(layerlens_train)  # a retry would silently double the wait
            task = self._task
            data_ref = self._data_ref(data)
        run = uuid.uuid4().hex
        ref = task.options(**wants).remote(data_ref, config, board, run, max(1, int(wants["num_cpus"])))
        log.info("training %s on the Ray cluster with %s", config.key(), wants)
        return RemoteRun(ref, board, run, config)

    def _board_ready(self):  # with the lock held
        import ray

        if self._board is None:
            self._board = ray.remote(num_cpus=0, max_restarts=0)(_progress_board_class()).remote(KEPT_RUNS)
        return self._board

    def _data_ref(self, data: ImageData):  # with the lock held
        import ray

        key = (data.name, id(data))
        if key in self._datasets:
            self._datasets.move_to_end(key)
        else:
            self._datasets[key] = ray.put(pack(data))
            # dropped when data is, before its id can name another dataset (and without keeping data alive)
            weakref.finalize(data, self._datasets.pop, key, None)
            while len(self._datasets) > KEPT_DATASETS:
                self._datasets.popitem(last=False)  # Ray frees it once no training uses it
        return self._datasets[key]

    def shutdown(self) -> None:
        """Drop the progress board and the datasets; disconnect from Ray if this trainer connected. A later start()
        connects again."""
        import ray

        with self._lock:
            if self._board is not None and ray.is_initialized():
                ray.kill(self._board)
            self._board = None
            self._datasets.clear()
            if self._owns_ray:
                ray.shutdown()
                self._owns_ray = False


def ray_runner(trainer: RayTrainer, poll: float = 0.25) -> Callable[[Job], TrainResult]:
    """A TrainingQueue runner that trains each job on the cluster: the job's progress and losses follow the worker's
    reports, and a cancelled job stops its worker."""

    def run(job: Job) -> TrainResult:
        remote = trainer.start(job.config, job.data)
        try:
            while True:
                if job.cancel_requested:
                    remote.cancel()  # result() then raises RemoteTrainingCancelled, a jobs.Cancelled
                try:
                    return remote.result(timeout=poll)
                except TimeoutError:
                    pass
                finally:
                    _follow(job, remote)
        finally:
            remote.cancel()  # nothing, unless this thread is leaving early

    return run


def _follow(job: Job, remote: RemoteRun) -> None:
    progress = remote.progress()
    losses = remote.losses()
    if progress is not None and len(losses) > len(job.losses):
        job.losses.extend(losses[len(job.losses):-1])
        job.report(progress)  # appends the last loss


def ray_fit(config: TrainConfig, data: ImageData, address: str = "local", num_cpus: int | None = None) -> TrainResult:
    """fit() on a Ray cluster, for the command line: connect, train once, disconnect."""
    trainer = RayTrainer(address, num_cpus)
    try:
        return trainer.start(config, data).result()
    finally:
        trainer.shutdown()

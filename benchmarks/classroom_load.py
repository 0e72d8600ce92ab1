"""A class at once: N simulated students against a real `streamlit run app.py` that starts from an empty cache.

Each student is a light websocket client (tests/st_client.py), not a browser, so the figures are the server's. All
students start together and go through three phases (each phase waits for every student, so the server's CPU can be
read per phase):
  1. cold:   open Layers; the first visit trains the default model (once for everybody) and shows a prediction;
  2. cached: press "🎲 Random" three times, open One neuron, switch its input to "Test image", knock out channel 0,
             open Train;
  3. train:  move the epochs slider to a value of its own (and, from the 30th student on, the seed too), so every
             student asks for a different network, and wait until it is trained, recording the place in line and
             the training progress the page shows meanwhile.
A single student alone on a fresh server goes first: its prediction is the reference every student's must equal.

Prints one JSON object (a readable table goes to stderr):

    python benchmarks/classroom_load.py [--students 10] [--only-cached] [--timeout 300] [--train-timeout 1800]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import _bench  # noqa: F401  (the repository and tests/ on sys.path)
from layerlens.machine import sgemm_gflops
from st_client import StreamlitClient
from streamlit_server import streamlit_app

EPOCHS = [e for e in range(1, 31) if e != 8]  # the Train page's epochs slider, without its default (8)
PAGE_VIEWS = ("open_layers", "random", "open_neuron", "test_image", "knockout", "open_train", "train_request")
CACHED = ("random", "open_neuron", "test_image", "knockout", "open_train")
QUEUED_AFTER_S = 2.0  # a training that started later than this after the request waited in line
TICKS = os.sysconf("SC_CLK_TCK")



def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0–100), None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    at = (len(ordered) - 1) * q / 100
    low = int(at)
    high = min(low + 1, len(ordered) - 1)
    return round(ordered[low] + (ordered[high] - ordered[low]) * (at - low), 3)


# the server process, read from /proc
def server_pid(port: int) -> int:
    """The `streamlit run` child of this process listening on port."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == os.getpid() and b"streamlit" in b" ".join(cmdline) and str(port).encode() in cmdline:
                return int(entry.name)
    raise RuntimeError(f"no streamlit server of this process on port {port}")


def family(pid: int) -> list[int]:
    """pid and all its descendants."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    found, todo = [pid], [pid]
    while todo:
        parent = todo.pop()
        children = [p for p, pp in parents.items() if pp == parent]
        found += children
        todo += children
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of pid and its live descendants."""
    total = 0
    for p in family(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, ValueError, IndexError):
            continue
    return total / TICKS


def rss_mb(pid: int) -> float:
    total = 0
    for p in family(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (OSError, ValueError):
            continue
    return total / 1024


class RssSampler(threading.Thread):
    """Peak resident memory of the server and its children, sampled every 0.2 s."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self._halt = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            self._halt.wait(0.2)

    def stop(self) -> float:
        self._halt.set()
        self.join()
        return round(self.peak, 1)


# one student
SAYS = re.compile(r"The network says \*\*(.+?)\*\*, (\d+)% sure")
STARTS = re.compile(r"training starts in about (\d+) (s|min)")


class Student:
    def __init__(self, i: int, url: str, timeout: float, train_timeout: float):
        self.i, self.timeout, self.train_timeout = i, timeout, train_timeout
        self.tab = StreamlitClient(url, timeout=timeout)
        self.times: dict[str, list[float]] = {}
        self.silences: dict[str, float] = {}  # action → the longest wait without any message from the server
        self.failed: str | None = None  # the action that did not finish, and why
        self.first_prediction: str | None = None
        self.shared_wait = False  # the page said that others wait for the same (default) training
        self.knockout: str | None = None
        self.train: dict = {}

    @property
    def runs(self):
        return self.tab.runs

    async def act(self, name: str, action):
        """Do one action; record its time; a failure ends this student's lesson."""
        if self.failed:
            return None
        try:
            run = await action
        except Exception as err:  # noqa: BLE001 - the benchmark reports it and goes on with the others
            self.failed = f"{name}: {type(err).__name__}: {err}"
            return None
        if run.status != "ok":
            self.failed = f"{name}: {run.status} after {time.monotonic() - run.started:.0f} s {run.problems}"
            return None
        self.times.setdefault(name, []).append(run.seconds)
        self.silences[name] = max(self.silences.get(name, 0.0), run.longest_silence)
        return run

    def prediction(self) -> str | None:
        said = [text for kind, text in self.tab.view("markdown") if SAYS.search(text)]
        return SAYS.search(said[0]).group(0) if said else None

    async def cold(self) -> None:
        try:
            await self.tab.connect()
        except Exception as err:  # noqa: BLE001
            self.failed = f"connect: {type(err).__name__}: {err}"
            return
        if run := await self.act("open_layers", self.tab.open("layers")):
            self.first_prediction = self.prediction()
            self.shared_wait = any("wait for this network" in t or "same network" in t for t in run.texts())
            if self.first_prediction is None:
                self.failed = f"open_layers: no prediction on the page ({self.tab.view()[:6]})"

    async def cached(self) -> None:
        for _ in range(3):
            if await self.act("random", self.tab.click("layers_btn_random")) and self.prediction() is None:
                self.failed = "random: no prediction on the page"
        await self.act("open_neuron", self.tab.open("neuron"))
        if not self.failed and not self.tab.view("metric"):  # "Draw" shows nothing to predict until drawn
            await self.act("test_image", self.tab.set("neuron_source", "Test image"))
        if await self.act("knockout", self.tab.set("neuron_ko_1", [0])):
            metrics = [t for _, t in self.tab.view("metric") if t.startswith("Prediction")]
            self.knockout = metrics[0] if metrics else None
            if self.knockout is None:
                self.failed = "knockout: no Prediction metric on the page"
        await self.act("open_train", self.tab.open("train"))

    async def training(self) -> None:
        if self.failed:
            return
        epochs = EPOCHS[self.i % len(EPOCHS)]
        change = {"train_epochs": epochs}
        if self.i >= len(EPOCHS):  # past 29 students the epochs repeat: a different seed keeps the config new
            _, seed_input = self.tab.widget("train_seed")
            change["train_seed"] = int(seed_input.number_input.value) + self.i // len(EPOCHS)
        run = await self.act("train_request", self.tab.set_many(change, self.train_timeout))
        run = run or (self.tab.runs[-1] if self.tab.runs else None)
        if run is None:
            return
        texts = [(t, text) for t, kind, text in run.received if kind in ("progress", "info", "warning")]
        started = next((t for t, text in texts if re.match(r"Training[:,]", text)), None)
        in_line = [(t, text) for t, text in texts if "in line" in text]
        guess = next((STARTS.search(text) for _, text in in_line if STARTS.search(text)), None)
        caption = " ".join(t for _, t in self.tab.view("caption"))
        wait = started if started is not None else run.seconds  # None: neither started nor finished in time
        self.train = {
            "epochs": epochs, "seed_changed": "train_seed" in change,
            "total_s": round(run.seconds, 2) if run.seconds is not None else None,
            "queue_wait_s": round(wait, 2) if wait is not None else None,
            "wait_from": "texts" if started is not None else "model arrival",
            "saw_place_in_line": bool(in_line),
            "first_queue_text": in_line[0][1] if in_line else None,
            "guessed_start_s": (int(guess.group(1)) * (60 if guess.group(2) == "min" else 1)) if guess else None,
            "trained": run.status == "ok" and any(t.startswith("Test accuracy") for _, t in self.tab.view("metric")),
            # the sidebar describes the visitor's current model: "… 3 epochs on 4,000 images"
            "model_is_theirs": re.search(rf"\b{epochs} epochs? on", caption) is not None,
        }


async def lesson(url: str, students: int, pid: int, args) -> dict:
    """The three phases for `students` students at once; their timings, what they saw, and the server's CPU."""
    crowd = [Student(i, url, args.timeout, args.train_timeout) for i in range(students)]
    cpu = {"start": cpu_seconds(pid)}
    phases = [("cold", Student.cold), ("cached", Student.cached)]
    if not args.only_cached:
        phases.append(("train", Student.training))
    wall, deadline = {}, time.monotonic() + args.deadline
    for name, step in phases:
        start = time.monotonic()
        try:
            await asyncio.wait_for(asyncio.gather(*(step(s) for s in crowd)), deadline - start)
        except asyncio.TimeoutError:
            for s in crowd:
                s.failed = s.failed or f"{name}: the class ran past --deadline {args.deadline:.0f} s"
        wall[name] = round(time.monotonic() - start, 2)
        cpu[name] = cpu_seconds(pid)
    await asyncio.gather(*(s.tab.close() for s in crowd), return_exceptions=True)
    spent, last = {}, cpu["start"]
    for name, _ in phases:
        spent[name], last = round(cpu[name] - last, 2), cpu[name]
    return {"crowd": crowd, "cpu": spent, "wall": wall}


def run_class(students: int, args) -> dict:
    """A fresh server on an empty cache, `students` students on it; what they measured and what the server used."""
    folder = tempfile.mkdtemp(prefix="layerlens-class-")
    env = {**dict(setting.split("=", 1) for setting in args.env),
           "LAYERLENS_CACHE": folder, "LAYERLENS_MODELS": folder, "LAYERLENS_DATA": folder}
    try:
        with streamlit_app(env) as url:
            pid = server_pid(int(url.rsplit(":", 1)[1]))
            sampler = RssSampler(pid)
            sampler.start()
            client_cpu = resource.getrusage(resource.RUSAGE_SELF)
            start = time.monotonic()
            try:
                result = asyncio.run(lesson(url, students, pid, args))
            finally:
                peak = sampler.stop()
            used = resource.getrusage(resource.RUSAGE_SELF)
            result.update(peak_rss_mb=peak, wall_s=round(time.monotonic() - start, 2),
                          client_cpu_s=round(used.ru_utime + used.ru_stime - client_cpu.ru_utime
                                             - client_cpu.ru_stime, 2))
            result["models_on_disk"] = len(list((Path(folder) / "models").glob("*.pt")))  # one per training
            log = Path(folder) / "streamlit.log"
            result["server_log_tracebacks"] = log.read_text(errors="replace").count("Traceback")
            return result
    finally:
        if args.keep:
            print(f"kept {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)


def summary(result: dict, baseline: dict | None) -> dict:
    crowd = result["crowd"]
    times = {name: [t for s in crowd for t in s.times.get(name, [])] for name in PAGE_VIEWS}
    actions = {name: {"n": len(v), "p50": percentile(v, 50), "p95": percentile(v, 95), "max": percentile(v, 100)}
               for name, v in times.items() if v}
    views = sum(len(v) for v in times.values())
    cached_views = sum(len(times[name]) for name in CACHED)
    trained = [s.train for s in crowd if s.train]
    waits = [t["queue_wait_s"] for t in trained if t["queue_wait_s"] is not None]
    queued = [t for t in trained if t["saw_place_in_line"] or (t["queue_wait_s"] or float("inf")) >= QUEUED_AFTER_S]
    texts = [(s.i, r.action, text) for s in crowd for r in s.runs for text in r.errors]
    out = {
        "students": len(crowd),
        "finished": sum(1 for s in crowd if not s.failed),
        "actions_s": actions,
        "saw_shared_default_training": sum(1 for s in crowd if s.shared_wait),
        "longest_silence_s": {name: percentile([s.silences[name] for s in crowd if name in s.silences], 100)
                              for name in PAGE_VIEWS if any(name in s.silences for s in crowd)},
        "queue": {
            "trainings_requested": len(trained),
            "trained": sum(1 for t in trained if t["trained"]),
            "model_is_theirs": sum(1 for t in trained if t["model_is_theirs"]),
            "wait_p50_s": percentile(waits, 50), "wait_p95_s": percentile(waits, 95),
            "wait_max_s": percentile(waits, 100),
            "train_total_p50_s": percentile([t["total_s"] for t in trained if t["total_s"]], 50),
            "train_total_max_s": percentile([t["total_s"] for t in trained if t["total_s"]], 100),
            "queued_students": len(queued),
            "queued_saw_place_in_line": sum(1 for t in queued if t["saw_place_in_line"]),
            "waits_read_from_texts": sum(1 for t in trained if t["wait_from"] == "texts"),
            # the first "training starts in about …" a queued student read, over the wait it turned out to be
            "first_guess_over_actual_p50": percentile([t["guessed_start_s"] / t["queue_wait_s"] for t in queued
                                                       if t["guessed_start_s"] and t["queue_wait_s"]], 50),
        },
        "server": {
            "cpu_s": result["cpu"],
            "page_views": views,
            "cpu_s_per_page_view": round(sum(result["cpu"].values()) / views, 3) if views else None,
            "cpu_s_per_page_view_cached": round(result["cpu"]["cached"] / cached_views, 3) if cached_views else None,
            "peak_rss_mb": result["peak_rss_mb"],
            "log_tracebacks": result["server_log_tracebacks"],
            "models_on_disk": result["models_on_disk"],
        },
        "phase_wall_s": result["wall"],
        "wall_s": result["wall_s"],
        "client_cpu_s": result["client_cpu_s"],
        "error_boxes": len(texts),
        "error_samples": sorted({f"{action}: {text[:200]}" for _, action, text in texts})[:10],
        "failures": [f"student {s.i}: {s.failed}" for s in crowd if s.failed],
        "problems": sorted({p for s in crowd for r in s.runs for p in r.problems})[:10],
    }
    if baseline is not None:
        reference = baseline["crowd"][0]
        wrong = [s for s in crowd if s.first_prediction not in (None, reference.first_prediction)]
        out["baseline_prediction"] = reference.first_prediction
        out["wrong_results"] = len(wrong)
        out["wrong_details"] = [f"student {s.i}: {s.first_prediction!r}" for s in wrong][:10]
        out["baseline_knockout"] = reference.knockout
        out["wrong_knockouts"] = sum(1 for s in crowd if s.knockout is not None and s.knockout != reference.knockout)
    out["per_student"] = [{"i": s.i, **{k: round(sum(v), 2) for k, v in s.times.items()}, **s.train,
                           "failed": s.failed} for s in crowd]
    return out


def table(report: dict) -> str:
    lines = [f"{report['students']} students ({report['finished']} finished) · sgemm {report['sgemm_gflops']} GFLOP/s"]
    lines += [f"  {name:14} n={a['n']:3}  p50 {a['p50']:7.2f} s  p95 {a['p95']:7.2f} s  max {a['max']:7.2f} s"
              for name, a in report["actions_s"].items()]
    q, srv = report["queue"], report["server"]
    if q["trainings_requested"]:
        lines.append(f"  queue wait p50 {q['wait_p50_s']} s · p95 {q['wait_p95_s']} s · max {q['wait_max_s']} s · "
                     f"{q['queued_saw_place_in_line']}/{q['queued_students']} queued students saw their place in line"
                     f" · {q['trained']}/{q['trainings_requested']} trained")
    lines.append(f"  server CPU {srv['cpu_s']} s · {srv['cpu_s_per_page_view']} s/view "
                 f"({srv['cpu_s_per_page_view_cached']} s cached) · peak RSS {srv['peak_rss_mb']} MB")
    lines.append(f"  error boxes {report['error_boxes']} · wrong results {report.get('wrong_results')} · "
                 f"failures {len(report['failures'])}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=10)
    parser.add_argument("--only-cached", action="store_true", help="skip the training step (phase 3)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds one action may take (default 300)")
    parser.add_argument("--train-timeout", type=float, default=1800.0,
                        help="seconds a student waits for its own training, queue included (default 1800)")
    parser.add_argument("--deadline", type=float, default=3600.0, help="seconds one class may take in all")
    parser.add_argument("--no-baseline", action="store_true", help="skip the single-student reference run")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="an environment setting for the servers (repeatable), e.g. OMP_NUM_THREADS=1")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders (and the server logs)")
    parser.add_argument("--dump", type=Path, help="write every run's received texts here, one JSON line per run")
    args = parser.parse_args()

    gflops, load = sgemm_gflops(), os.getloadavg()[0]
    baseline = None if args.no_baseline else run_class(1, args)
    crowd = run_class(args.students, args)
    report = {"sgemm_gflops": gflops, "cores": os.cpu_count(), "load_average": [load, os.getloadavg()[0]],
              "server_env": args.env,
              **summary(crowd, baseline)}
    if args.dump:
        with args.dump.open("w") as out:
            for label, result in (("baseline", baseline), ("crowd", crowd)):
                for s in (result or {"crowd": []})["crowd"]:
                    for r in s.runs:
                        out.write(json.dumps({"class": label, "student": s.i, "action": r.action, "status": r.status,
                                              "seconds": r.seconds, "reruns": r.reruns, "problems": r.problems,
                                              "received": r.received}, ensure_ascii=False) + "\n")
    if baseline is not None:
        single = summary(baseline, None)
        report["baseline"] = {"actions_s": {k: v["p50"] for k, v in single["actions_s"].items()},
                              "queue_wait_s": single["queue"]["wait_p50_s"],
                              "cpu_s_per_page_view": single["server"]["cpu_s_per_page_view"],
                              "cpu_s_per_page_view_cached": single["server"]["cpu_s_per_page_view_cached"],
                              "peak_rss_mb": single["server"]["peak_rss_mb"], "failures": single["failures"]}
    print(table(report), file=sys.stderr)
    print(json.dumps(report, ensure_ascii=False))


if __name__ == "__main__":
    main()

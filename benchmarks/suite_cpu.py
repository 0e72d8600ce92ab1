"""The CPU a command's processes spend, by process name: where a CPU-bound test suite's time goes.

It runs the command, reads every process's CPU time from /proc twice a second (a process that ends between two reads
loses its last half second), and prints the wall time, how busy the machine was (/proc/stat) and the CPU-seconds per
process name, Chromium's by kind (renderer, gpu-process, network…) and together. Linux only.

    python benchmarks/suite_cpu.py                          # the test suite: python -m pytest -q
    python benchmarks/suite_cpu.py python -m pytest -q tests/test_browser.py -n 0

On 2026-12-07 (2-core AMD EPYC, AVX2, sgemm 68–70) the suite took 342 s, 95% busy: Python 391 CPU-s, Chromium 212; with
the tests' Chromium drawing no animations (streamlit_server.chromium(still=True)), 326 s: Chromium 185 (README). Late
that night, 295 s at sgemm 67.0, 97% busy: the two pytest workers 219 CPU-s, the browser tests' Streamlit servers 110,
Chromium 172 (its renderers 136), Ray's workers 25.
"""
from __future__ import annotations

import collections
import os
import subprocess
import sys
import time
from pathlib import Path

from _bench import ROOT, print_machine

TICK = os.sysconf("SC_CLK_TCK")


def chromium_kind(pid: str) -> str:
    """Which of Chromium's processes: its --type (renderer, gpu-process, utility: its sub-type), or browser."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            args = cmdline.read().decode(errors="replace").replace("\0", " ").split()  # zygote children: one string
    except OSError:
        return "chromium"
    kind = next((a.split("=", 1)[1] for a in args if a.startswith("--type=")), "browser")
    sub = next((a.split("=", 1)[1].split(".")[0] for a in args if a.startswith("--utility-sub-type=")), "")
    return f"chromium {kind}{' ' + sub if sub else ''}"


def python_kind(pid: str) -> str:
    """Which Python: a pytest worker (xdist), the pytest that leads them, a Streamlit server, or its script or module."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            args = cmdline.read().decode(errors="replace").split("\0")
    except OSError:
        return "python"
    text = " ".join(args)
    if "execnet" in text or "xdist" in text or ("-c" in args[1:3] and "sys.stdin" in text):
        return "python pytest worker"
    if "streamlit" in text:
        return "python streamlit server"
    rest = [a for a in args[1:] if a]
    while rest and rest[0].startswith("-") and rest[0] not in ("-m", "-c"):  # -u, -X importtime, …
        rest = rest[2:] if rest[0] in ("-X", "-W") else rest[1:]
    if len(rest) > 1 and rest[0] == "-m":
        return f"python -m {rest[1]}"
    return f"python {'-c' if rest[0] == '-c' else Path(rest[0]).name}" if rest else "python"


KINDS: dict[int, str] = {}  # pid → Chromium or Python process kind, read once while the process lives


def cpu_by_process() -> dict[int, tuple[str, float]]:
    """Every process now: pid → (name, CPU-seconds so far, user and system); Chromium's named by their kind."""
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as stat:
                text = stat.read()
        except OSError:  # it ended meanwhile
            continue
        name, fields = text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:].split()
        if "chrom" in name.lower():
            name = KINDS.setdefault(int(pid), chromium_kind(pid))
        elif name.startswith("python"):
            name = KINDS.setdefault(int(pid), python_kind(pid))
        found[int(pid)] = (name, (int(fields[11]) + int(fields[12])) / TICK)
    return found


def machine_ticks() -> tuple[int, int]:
    """All CPU ticks so far and the idle ones (idle and waiting for I/O)."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    return sum(values), values[3] + values[4]


def main() -> None:
    command = sys.argv[1:] or [sys.executable, "-m", "pytest", "-q"]
    print_machine()
    before = {pid: cpu for pid, (_, cpu) in cpu_by_process().items()}
    last: dict[int, tuple[str, float]] = {}
    (total0, idle0), start = machine_ticks(), time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT)
    while process.poll() is None:
        last.update(cpu_by_process())
        time.sleep(0.5)
    (total1, idle1), wall = machine_ticks(), time.perf_counter() - start
    spent = collections.Counter()
    for pid, (name, cpu) in last.items():
        spent[name] += cpu - before.get(pid, 0.0)
    chromium = sum(s for n, s in spent.items() if n.startswith("chromium"))
    print(f"exit {process.returncode}, wall {wall:.1f} s, machine {1 - (idle1 - idle0) / (total1 - total0):.0%} busy")
    python = sum(s for n, s in spent.items() if n.startswith("python"))
    print(f"  {'chromium, all':<32} {chromium:7.1f} CPU-s")
    print(f"  {'python, all':<32} {python:7.1f} CPU-s")
    for name, seconds in [(n, s) for n, s in spent.most_common(18) if s >= 0.1]:
        print(f"  {name:<32} {seconds:7.1f} CPU-s")


if __name__ == "__main__":
    main()

"""What this machine can do: its measured fp32 matrix-multiply rate, so speed figures from two machines compare."""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import torch

log = logging.getLogger(__name__)


def sgemm_gflops(size: int = 2048, repeats: int = 5) -> float:
    """Best of `repeats` fp32 size×size matrix products with torch's threads, in GFLOP/s (single runs are noisy on
    shared machines, so the best one is the machine's rate)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)  # warm up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return round(2 * size**3 / best / 1e9, 1)


def cpu_name() -> str:
    """The CPU's model name and its widest vector unit (AVX-512 machines train 3–4× faster than AVX2-only ones)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError as err:  # not Linux: the platform module knows less
        import platform

        log.debug("no /proc/cpuinfo (%s: %s): naming the CPU from the platform module", type(err).__name__, err)
        return f"{platform.processor() or platform.machine()} (vector unit unknown)"
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "")
    flags = next((line for line in info.splitlines() if line.startswith("flags")), "").split()
    vector = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return f"{name} ({vector})".strip()


def describe() -> dict:
    """What every benchmark prints first: the machine, so that its figures can be compared with another's."""
    return {"machine": cpu_name(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "sgemm_gflops": sgemm_gflops()}

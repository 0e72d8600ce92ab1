"""What this machine can do: its measured fp32 matrix-multiply rate, so speed figures from two machines compare."""
from __future__ import annotations

import time

import torch


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

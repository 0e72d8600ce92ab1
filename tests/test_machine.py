"""The machine line every benchmark prints first."""
from __future__ import annotations

from layerlens.machine import cpu_name, sgemm_gflops


def test_the_machine_names_its_vector_unit_and_measures_a_matmul_rate():
    assert any(unit in cpu_name() for unit in ("AVX-512", "AVX2", "no AVX2", "vector unit unknown"))
    rate = sgemm_gflops(size=256, repeats=2)
    assert 0.1 < rate < 1e6  # GFLOP/s: a real product was timed

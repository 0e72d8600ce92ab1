"""What every benchmark starts with: the repository and tests/ (the browser helpers) importable, and the machine line.

Import it first: `python benchmarks/NAME.py` puts only benchmarks/ on sys.path. It imports layerlens only when called,
so a benchmark can still set LAYERLENS_CACHE before the app's modules load.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

DATA_DIR = Path(os.environ.get("LAYERLENS_DATA", ROOT.parent / "shared" / "data"))  # the real datasets' folder


def print_machine() -> dict:
    """Print the machine first (figures from two machines compare by its sgemm rate) and return it."""
    from layerlens.machine import describe

    machine = describe()
    print(json.dumps(machine), flush=True)
    return machine


def forget_results() -> None:
    """Delete the results the app keeps on disk (<LAYERLENS_CACHE>/results), so that the next first render computes
    them, as on a new server; trained models stay."""
    from layerlens.data import default_cache_dir

    shutil.rmtree(default_cache_dir() / "results", ignore_errors=True)


def dataset_or_skip(name: str, data_dir: Path):
    """The dataset, or None after printing why it is skipped (not downloaded here, say)."""
    from layerlens.data import DatasetUnavailable, load_dataset

    try:
        return load_dataset(name, data_dir, cache_dir=Path("/tmp/layerlens-bench"))  # apart from the app's cache
    except DatasetUnavailable as err:
        print(json.dumps({"dataset": name, "skipped": str(err)}), flush=True)
        return None

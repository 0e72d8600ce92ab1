"""Start-up: how long a fresh Python takes to import the CLI, the app's server side and each page's core modules,
and which heavy libraries each one pulls in (scikit-learn, scikit-image, matplotlib, plotly, pandas, streamlit).

Prints the machine first, then one JSON line per entry point: the best of `--repeats` wall times of
`python -c "import ..."` in a fresh process, and the heavy libraries that import loaded.

    python benchmarks/import_speed.py [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from _bench import ROOT, print_machine

HEAVY = ("torch", "sklearn", "skimage", "matplotlib", "plotly", "pandas", "streamlit", "ray", "scipy")
ENTRY_POINTS = {
    "python": "pass",  # the interpreter alone, to subtract
    "torch": "import torch",
    "cli (python -m layerlens)": "import layerlens.__main__",
    "app start (every page's shared modules)": "import chrome, server, session, tasks, widgets, train_form",
    "Train page": "import layerlens.plots, layerlens.checkpoints, layerlens.inspection",
    "Traditional ML page (and its scikit-learn)": "import layerlens.classic; layerlens.classic.MODELS['svm'].build(0, C=1)",
    "Abstraction page": "import layerlens.abstraction",
}


def import_seconds(statement: str, repeats: int) -> tuple[float, list[str]]:
    """Best wall time of a fresh interpreter running `statement`, and the heavy libraries it left loaded."""
    probe = f"{statement}\nimport sys, json\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    best, loaded = float("inf"), []
    for _ in range(repeats):
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
        best = min(best, time.perf_counter() - start)
        loaded = json.loads(out.stdout.strip().splitlines()[-1])
    return best, loaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per entry point; the best counts")
    args = parser.parse_args()
    print_machine()
    for name, statement in ENTRY_POINTS.items():
        seconds, loaded = import_seconds(statement, args.repeats)
        print(json.dumps({"entry": name, "seconds": round(seconds, 2), "heavy_libraries": loaded}), flush=True)


if __name__ == "__main__":
    main()

"""The core never imports Streamlit (STYLE.md, principle 1): pages wire widgets to it; the CLI and workers run without.
Nor Ray, unless a teacher asks for it."""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE_FILES = sorted((ROOT / "layerlens").rglob("*.py"))

# Imports the named modules in turn until one loads streamlit; says which, and the core modules its import loaded. Then
# trains a tiny network, as the CLI and the pages do, and says which of Ray's modules are loaded by then (none: Ray is
# imported only where a teacher asks for it, `--ray` or $LAYERLENS_RAY_ADDRESS).
PROBE = """import importlib, json, sys
report = {"imported": [], "loaded_streamlit": None}
for name in sys.argv[1:]:
    before = set(sys.modules)
    importlib.import_module(name)
    report["imported"].append(name)
    if "streamlit" in sys.modules:
        report.update(loaded_streamlit=name, core_modules_it_loaded=sorted(
            m for m in set(sys.modules) - before if m.startswith("layerlens")))
        break
import numpy as np
from layerlens.data import from_uint8
from layerlens.nets import NetConfig
from layerlens.training import TrainConfig, fit
rng = np.random.default_rng(0)
data = from_uint8("noise", rng.integers(0, 255, (20, 8, 8)), rng.integers(0, 2, 20), rng.integers(0, 255, (6, 8, 8)),
                  rng.integers(0, 2, 6), ("a", "b"))
net = NetConfig(in_channels=1, image_size=8, num_classes=2, mean=data.mean, std=data.std, channels=(2,), dense=0)
report["trained"] = fit(TrainConfig(net=net, dataset="noise", epochs=1, batch_size=10), data).metrics["epochs"]
report["ray_modules"] = sorted(name for name in sys.modules if name == "ray" or name.startswith("ray."))
print(json.dumps(report))"""


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def streamlit_imports(source: str) -> list[int]:
    """Lines that import streamlit or a Streamlit component (streamlit_*), at any depth, inside functions too."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module]
        else:
            continue
        tops = [name.split(".")[0] for name in names]
        if any(top == "streamlit" or top.startswith("streamlit_") for top in tops):
            lines.append(node.lineno)
    return lines


def test_the_static_check_finds_every_form_of_a_streamlit_import():
    assert streamlit_imports("import streamlit as st") == [1]
    assert streamlit_imports("import os, streamlit.components.v1 as components") == [1]
    assert streamlit_imports("def show():\n    from streamlit.runtime import exists") == [2]
    assert streamlit_imports("from streamlit_drawable_canvas import st_canvas") == [1]
    assert streamlit_imports("import streamlined\nfrom . import streamlit\nfrom .streamlit import x") == []


def test_no_core_file_imports_streamlit():
    found = {str(path.relative_to(ROOT)): streamlit_imports(path.read_text()) for path in CORE_FILES}
    assert "layerlens/training.py" in found and len(found) >= 10, found  # the check read the core
    assert {path: lines for path, lines in found.items() if lines} == {}


@pytest.fixture(scope="module")
def fresh_import() -> dict:
    """Every core module imported in one fresh interpreter, one after another (one torch import, not one per module,
    on a 2-core machine), then a tiny training: PROBE's report."""
    names = [module_name(path) for path in CORE_FILES]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-c", PROBE, *names], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    return {**json.loads(run.stdout.strip().splitlines()[-1]), "asked": names}


def test_importing_any_core_module_leaves_streamlit_unloaded(fresh_import):
    """The first module whose import loads streamlit, directly or through another library, is named."""
    assert fresh_import["loaded_streamlit"] is None, fresh_import
    assert fresh_import["imported"] == fresh_import["asked"] and "layerlens.training" in fresh_import["imported"]


def test_layerlens_never_imports_ray_unless_asked(fresh_import):
    """Every core module and a training leave Ray unloaded: a classroom server without Ray installed works, and one
    with it does not pay for its import on every start."""
    assert fresh_import["imported"] == fresh_import["asked"] and "layerlens.remote" in fresh_import["imported"]
    assert fresh_import["trained"] == 1  # the training ran
    assert fresh_import["ray_modules"] == []


def test_every_chart_is_drawn_with_its_sentence():
    """Issue 14, part 7: the UI draws charts only through charts.chart, which writes the one-line summary under each
    (a bare st.plotly_chart would have none)."""
    ui_files = [p for p in [*ROOT.glob("*.py"), *(ROOT / "pages").glob("*.py")] if p.name != "charts.py"]
    bare = [f"{p.relative_to(ROOT)}:{node.lineno}" for p in ui_files for node in ast.walk(ast.parse(p.read_text()))
            if isinstance(node, ast.Attribute) and node.attr in ("plotly_chart", "pyplot", "altair_chart")]
    assert not bare, bare

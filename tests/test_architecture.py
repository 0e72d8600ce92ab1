"""The core never imports Streamlit (STYLE.md, principle 1): pages wire widgets to it; the CLI and workers run without."""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE_FILES = sorted((ROOT / "layerlens").rglob("*.py"))

# Imports the named modules in turn until one loads streamlit; says which, and the core modules its import loaded.
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


def test_importing_any_core_module_leaves_streamlit_unloaded():
    """Every module imported in one fresh interpreter, one after another (one torch import, not one per module,
    on a 2-core machine): the first whose import loads streamlit, directly or through another library, is named."""
    names = [module_name(path) for path in CORE_FILES]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-c", PROBE, *names], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["loaded_streamlit"] is None, report
    assert report["imported"] == names and "layerlens.training" in names  # every module was imported


def test_every_chart_is_drawn_with_its_sentence():
    """Issue 14, part 7: the UI draws charts only through charts.chart, which writes the one-line summary under each
    (a bare st.plotly_chart would have none)."""
    ui_files = [p for p in [*ROOT.glob("*.py"), *(ROOT / "pages").glob("*.py")] if p.name != "charts.py"]
    bare = [f"{p.relative_to(ROOT)}:{node.lineno}" for p in ui_files for node in ast.walk(ast.parse(p.read_text()))
            if isinstance(node, ast.Attribute) and node.attr in ("plotly_chart", "pyplot", "altair_chart")]
    assert not bare, bare

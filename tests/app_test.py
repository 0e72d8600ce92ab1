"""Streamlit's AppTest for a visitor on the app, as test_pages, test_hostile and test_lessons start it."""
from __future__ import annotations

import functools
from pathlib import Path

import streamlit as st
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]


@functools.cache
def _components():
    """Streamlit's registry of installed components, found once per test process.

    Every new AppTest otherwise scans the metadata of every installed package on its first run (0.3–0.4 s each, 16 s
    of test_pages.py on a 2-core AVX2 machine); a server does that once, at its start. None when this Streamlit
    has no such registry."""
    try:
        from streamlit.components.v2.component_manager import BidiComponentManager
    except ImportError:
        return None
    manager = BidiComponentManager()
    manager.discover_and_register_components(start_file_watching=False)
    return manager


def app_test(fresh_server: bool = True) -> AppTest:
    """A new visitor on the Home page. fresh_server: Streamlit's caches cleared first, as after a server start (the
    model-cache folder is the environment's LAYERLENS_CACHE, kept on disk); False: the same server as before."""
    if fresh_server:
        st.cache_resource.clear()
        st.cache_data.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    if hasattr(at, "_bidi_component_manager") and _components() is not None:
        at._bidi_component_manager = _components()
    return at

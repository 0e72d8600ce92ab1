"""Streamlit's AppTest for a visitor on the app, as test_pages, test_hostile and test_lessons start it."""
from __future__ import annotations

import functools
import threading
from pathlib import Path

import streamlit as st
from streamlit.runtime.scriptrunner import ScriptRunnerEvent
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1 import local_script_runner

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


def _wait_for_the_script(runner, timeout: float = 3) -> None:
    """AppTest's wait for a script run to end, woken by the run's end instead of looking every millisecond.

    Streamlit's own (`require_widgets_deltas`) sleeps 1 ms at a time and scans the run's events each time: on 2 busy
    cores that loop took the GIL from the script it waits for some 100,000 times a test file. A run still going after
    `timeout` ends as Streamlit's does: stopped, with its error."""
    ended = threading.Event()

    def seen(sender, event=None, **kwargs) -> None:
        if event == ScriptRunnerEvent.SHUTDOWN:
            ended.set()

    runner.on_event.connect(seen, weak=False)
    try:
        if runner.script_stopped() or ended.wait(timeout):
            return
    finally:
        runner.on_event.disconnect(seen)
    runner.request_stop()  # past the timeout: stopped, with Streamlit's own error
    runner.join()
    raise RuntimeError(f"AppTest script run timed out after {timeout}(s)")


if hasattr(local_script_runner, "require_widgets_deltas"):  # a Streamlit without it keeps its own wait
    local_script_runner.require_widgets_deltas = _wait_for_the_script


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

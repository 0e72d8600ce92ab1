"""LayerLens: train a small CNN in seconds and look inside every layer. Run: streamlit run app.py

The entry point of every page: page_list.PAGES lists them, chrome.navigation() runs the one asked for."""
import layerlens  # noqa: F401 - first, before torch: OpenMP threads sleep when idle (layerlens/__init__.py)

import logging
import os

import chrome

if os.environ.get("LAYERLENS_LOG"):  # LAYERLENS_LOG=info: the server's output says what the training queue does
    logging.basicConfig(format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    logging.getLogger("layerlens").setLevel(os.environ["LAYERLENS_LOG"].upper())

chrome.navigation()

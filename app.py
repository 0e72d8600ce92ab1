"""LayerLens: train a small CNN in seconds and look inside every layer. Run: streamlit run app.py

The entry point of every page: page_list.PAGES lists them, chrome.navigation() runs the one asked for."""
import layerlens  # noqa: F401 - first, before torch: OpenMP threads sleep when idle (layerlens/__init__.py)

import chrome

chrome.navigation()

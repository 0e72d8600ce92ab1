"""What the browser test modules share: Chromium or a clear skip, and a visit to a page (their fixtures, a server
and a browser per module, are in conftest.py)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from layerlens.training import PRESET_TRAINING
from streamlit_server import CHROMIUM, full_page_screenshot, wait_until_idle

# Full-page screenshots of every step, to look at and for the README: LAYERLENS_SCREENSHOTS=tests/screenshots
# python -m pytest tests/test_browser.py tests/test_browser_class.py. Off by default: about 25 of them cost a minute or
# more of the suite (Chromium lays the page out at full height and back), and the assertions do not need them.
SCREENSHOTS = Path(os.environ["LAYERLENS_SCREENSHOTS"]) if os.environ.get("LAYERLENS_SCREENSHOTS") else None
ERROR_BOXES = "[data-testid='stException'], [data-testid='stAlertContentError']"
DEFAULT_EPOCHS = PRESET_TRAINING["tiny"]["epochs"]  # the default model's, shown in the sidebar as "N epochs on"


def skip_without_chromium() -> None:
    """Skip the calling test module when Debian's chromium is absent; in CI, which installs it, fail instead."""
    if not Path(CHROMIUM).exists():
        reason = f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)"
        if os.environ.get("CI"):
            raise RuntimeError(reason)  # CI installs it, so its absence there is a failure
        pytest.skip(reason, allow_module_level=True)


def visit(page, link: str, marker: str, shot: str, expect: tuple[str, ...] = ()) -> None:
    """Click a sidebar link (the session and its model carry over), wait for marker text and an idle app,
    check for errors and for each expected text, save a screenshot."""
    page.locator("[data-testid='stSidebar']").get_by_role("link", name=link).click()
    page.get_by_text(marker).first.wait_for(timeout=120_000)
    wait_until_idle(page)
    assert page.locator(ERROR_BOXES).count() == 0, page.locator(ERROR_BOXES).first.inner_text()
    assert "Traceback" not in page.content()
    for text in expect:
        page.get_by_text(text).first.wait_for(timeout=30_000)  # drawn, if not yet (a busy machine draws late)
    shoot(page, shot)


def shoot(page, name: str) -> None:
    """A full-page screenshot, SCREENSHOTS/<name>.png, when LAYERLENS_SCREENSHOTS names that folder."""
    if SCREENSHOTS is not None:
        full_page_screenshot(page, SCREENSHOTS / f"{name}.png")

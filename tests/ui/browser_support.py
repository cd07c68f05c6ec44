"""The real browser of the approvals page's acceptance test (``ui.browser_support``).

Debian's ``chromium`` driven through Selenium by the system ``chromedriver`` (installed by
scripts/browser-setup; Selenium's own browser download cannot work on this machine kind), headless.
Without them the test skips, unless ``AILERON_REQUIRE_BROWSER=1`` (which scripts/test sets after
the set-up succeeded) makes that a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from helpers import REPO
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

REQUIRE_VAR = "AILERON_REQUIRE_BROWSER"
ARTIFACTS = REPO / "test-artifacts" / "ui"
"""Where the screenshots go (git-ignored); the test prints each path."""


def browser_unavailable() -> str | None:
    """Why the real-browser test cannot run here, or ``None``."""
    for tool in ("chromium", "chromedriver"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/browser-setup installs it)"
    return None


def need_browser() -> None:
    """Skip the calling test when there is no browser; fail instead under REQUIRE_VAR=1."""
    reason = browser_unavailable()
    if reason is None:
        return
    if os.environ.get(REQUIRE_VAR) == "1":
        pytest.fail(f"{REQUIRE_VAR}=1 but {reason}")
    pytest.skip(reason)


@contextmanager
def chromium() -> Iterator[WebDriver]:
    """A headless Chromium under the system chromedriver, quit afterwards."""
    chromium_path = shutil.which("chromium")
    driver_path = shutil.which("chromedriver")
    assert chromium_path is not None and driver_path is not None
    options = webdriver.ChromeOptions()
    options.binary_location = chromium_path
    for argument in ("--headless=new", "--window-size=1280,1000", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    if os.geteuid() == 0:
        # Chromium refuses to run as root inside its own sandbox.
        options.add_argument("--no-sandbox")
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(driver: WebDriver, name: str) -> Path:
    """Save the page as test-artifacts/ui/NAME.png, print where, and return the path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    assert driver.save_screenshot(str(path)), f"chromium saved no screenshot to {path}"
    print(f"screenshot: {path}")
    return path

"""The browser test's set-up rule: without Chromium it skips, unless AILERON_REQUIRE_BROWSER=1
(set by scripts/test after scripts/browser-setup) makes that a failure."""

from __future__ import annotations

from pathlib import Path

import pytest
from ui.browser_support import REQUIRE_VAR, browser_unavailable, need_browser


def test_without_chromium_on_path_the_browser_test_skips(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With neither chromium nor chromedriver on PATH the test is skipped, naming the set-up."""
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv(REQUIRE_VAR, raising=False)
    assert "scripts/browser-setup" in (browser_unavailable() or "")
    with pytest.raises(pytest.skip.Exception):
        need_browser()


def test_required_browser_missing_is_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under AILERON_REQUIRE_BROWSER=1 a missing browser fails the test instead of skipping."""
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv(REQUIRE_VAR, "1")
    with pytest.raises(pytest.fail.Exception, match=REQUIRE_VAR):
        need_browser()


def test_a_chromium_without_its_driver_is_not_enough(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chromium alone on PATH is still unavailable: Selenium needs the system chromedriver."""
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert "chromedriver" in (browser_unavailable() or "")

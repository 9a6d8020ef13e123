"""A real Chromium for browser tests, driven by Playwright's sync API (a pytest plugin).

Playwright cannot download its own browser build here (``playwright install``), so it drives the
system's Chromium through ``executable_path``: ``COUTURIER_CHROMIUM`` when set, else
``chromium`` or ``chromium-browser`` on PATH (``make`` installs Debian's ``chromium``).

Fixtures: ``browser`` (one Chromium per test module), ``page`` (a fresh context and page per test,
so cookies and storage never leak between tests) and ``artifacts_dir`` (where a test saves
screenshots; ``COUTURIER_TEST_ARTIFACTS``, else ``.couturier-test-artifacts`` in the repository).
The sync API refuses to run inside a running asyncio loop: a browser test is a plain ``def``.

>>> def test_title(page: Page, artifacts_dir: Path) -> None:    # doctest: +SKIP
...     page.goto(url)
...     page.screenshot(path=artifacts_dir / "title.png")
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

__all__ = ["artifacts_dir", "browser", "chromium_path", "page"]

REPO_ROOT = Path(__file__).resolve().parents[2]
INSTALL_HINT = "apt-get install chromium, or set COUTURIER_CHROMIUM=/path/to/chrome"


def chromium_path() -> str:
    """The Chromium binary the browser tests drive: ``COUTURIER_CHROMIUM``, else PATH's."""
    configured = os.environ.get("COUTURIER_CHROMIUM")
    if configured:
        if not os.access(configured, os.X_OK) or not Path(configured).is_file():
            raise RuntimeError(f"COUTURIER_CHROMIUM={configured} is not an executable file")
        return configured
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError(f"no Chromium for the browser tests (`make` installs one): {INSTALL_HINT}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium per test module (``--no-sandbox``: the tests may run as root).

    Per module, not per session: Playwright's sync API keeps an event loop running in the main
    thread until it stops, and every later test that calls ``asyncio.run`` would fail."""
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(
            executable_path=chromium_path(), args=["--no-sandbox"]
        )
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A page in a fresh browser context, closed (with the context) after the test."""
    context = browser.new_context()
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where tests save screenshots; kept after the session (unlike tmp folders) to look at."""
    folder = Path(
        os.environ.get("COUTURIER_TEST_ARTIFACTS") or REPO_ROOT / ".couturier-test-artifacts"
    )
    folder.mkdir(parents=True, exist_ok=True)
    return folder

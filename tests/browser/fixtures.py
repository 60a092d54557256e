"""A real headless Chromium, driven by Playwright, for the web studio's tests (a plugin of tests/conftest.py).

The browser is Debian's Chromium (``./dev test`` installs it and exports ``ATELIER_TEST_CHROMIUM``),
passed to Playwright as ``executable_path``: a Playwright browser download cannot work on our
machines. Without a browser these tests skip, except under ``CI=true``, where they fail.

Fixtures: ``chromium_path`` and ``browser`` (one per session), ``context`` and ``page`` (a fresh
1280x800 context per test, closed after it; a failing test leaves a screenshot of its page).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Generator

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright
from playwright.async_api import Error as PlaywrightError

from tests.browser.screenshots import screenshot

VIEWPORT_WIDTH, VIEWPORT_HEIGHT = 1280, 800
_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


def _no_browser(reason: str) -> None:
    # CI must prove the web studio in a browser: there a missing one is a failure, not a skip.
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the browser tests must run)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """The Chromium to drive: $ATELIER_TEST_CHROMIUM, else `chromium` on PATH."""
    configured = os.environ.get("ATELIER_TEST_CHROMIUM")
    if configured:
        if not os.access(configured, os.X_OK):
            _no_browser(f"ATELIER_TEST_CHROMIUM={configured} is not an executable file")
        return configured
    found = shutil.which("chromium")
    if found is None:
        _no_browser("no Chromium: install Debian's (apt-get install chromium) or run ./dev test")
    assert found is not None
    return found


@pytest.fixture(scope="session")
async def browser(chromium_path: str) -> AsyncIterator[Browser]:
    """One headless Chromium for the session; tests isolate themselves with their own context."""
    # Chromium refuses to start its sandbox as root (CI, containers); a user keeps the sandbox.
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium_path, headless=True, args=args)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A fresh context (no cookies, no storage) per test, 1280x800."""
    fresh = await browser.new_context(viewport={"width": VIEWPORT_WIDTH, "height": VIEWPORT_HEIGHT})
    try:
        yield fresh
    finally:
        await fresh.close()


@pytest.fixture
async def page(context: BrowserContext, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    """A page in the test's context; when the test fails, its last state is kept as a screenshot."""
    opened = await context.new_page()
    yield opened
    report = request.node.stash.get(_REPORTS, {}).get("call")
    if report is not None and report.failed and not opened.is_closed():
        try:
            path = await screenshot(opened, f"failed-{request.node.nodeid}")
        except PlaywrightError:
            return  # the page is gone (a crash): the test's own error says what happened
        print(f"screenshot of the failed page: {path}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the test, so the ``page`` fixture knows whether the test failed."""
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report

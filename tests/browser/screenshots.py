"""Full-page PNGs of browser tests under tests/artifacts/screenshots/ (kept by CI, ignored by git)."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.async_api import Page

from tests.integration.workers import ROOT

SCREENSHOTS = ROOT / "tests" / "artifacts" / "screenshots"


def screenshot_path(name: str) -> Path:
    """Where ``screenshot(page, name)`` writes: the name made safe for a file name, plus .png."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "screenshot"
    return SCREENSHOTS / f"{safe[:150]}.png"


async def screenshot(page: Page, name: str) -> Path:
    """Save a full-page PNG of ``page`` as ``name`` (an earlier one of that name is replaced)."""
    path = screenshot_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=path, full_page=True)
    return path

"""The browser toolchain works here: headless Chromium opens a page, runs its script, is clicked
and screenshotted."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from PIL import Image
from playwright.async_api import Page, expect

from tests.browser.fixtures import VIEWPORT_HEIGHT, VIEWPORT_WIDTH
from tests.browser.screenshots import screenshot

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Smoke</title></head>
<body>
  <p id="status">waiting</p>
  <button id="go" type="button">Go</button>
  <script>
    document.getElementById("go").addEventListener("click", () => {
      document.getElementById("status").textContent = "clicked " + (6 * 7);
    });
  </script>
</body></html>
"""


@pytest.fixture
async def site() -> AsyncIterator[str]:
    """The page above, served over real HTTP on a free port of 127.0.0.1."""

    async def index(_: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", index)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}/"
    finally:
        await runner.cleanup()


async def test_a_click_runs_the_pages_script(page: Page, site: str) -> None:
    response = await page.goto(site)
    assert response is not None and response.status == 200
    await expect(page).to_have_title("Smoke")
    status = page.locator("#status")
    await expect(status).to_have_text("waiting")  # the script only answers the click

    await page.get_by_role("button", name="Go").click()

    await expect(status).to_have_text("clicked 42")  # computed by the page's JavaScript
    path = await screenshot(page, "smoke-clicked")
    with Image.open(path) as shot:
        assert shot.format == "PNG"
        assert shot.size == (VIEWPORT_WIDTH, VIEWPORT_HEIGHT)  # the context's viewport, rendered

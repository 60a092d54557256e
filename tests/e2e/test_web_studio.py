"""The web studio in a real browser (headless Chromium, Playwright), next to the real bot.

One journey, as a member would take it: sign in through the fake Discord's OAuth2, open the
gallery, filter it, open an image, paint a mask with the mouse, run the inpaint and watch the
job page until the result shows; the bot posts the same result in the project's Discord thread,
and the inpaint keeps every pixel outside the mask. Each page is also checked at 360 px wide
(no sideways scrolling) and saved as a screenshot (tests/artifacts/screenshots/).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator

import numpy as np
import pytest
from PIL import Image
from playwright.async_api import Page

from tests.api.server import ApiServer
from tests.browser.screenshots import screenshot
from tests.e2e.bot_process import BotProcess
from tests.e2e.conftest import SECOND_GUILD
from tests.e2e.test_bot import finished, generation_of, new_thread, status_message
from tests.fake_discord import FakeDiscord
from tests.integration.workers import Deployment
from tests.web.conftest import signing_in_through

NARROW = {"width": 360, "height": 740}


@pytest.fixture(scope="module")
async def web(fake: FakeDiscord, bot: BotProcess, e2e_deployment: Deployment) -> AsyncIterator[ApiServer]:
    """`atelier api` on the bot's database, signing in through the fake Discord."""
    server = signing_in_through(fake, ApiServer(e2e_deployment))
    server.start()
    try:
        await server.wait_ready()
        yield server
    finally:
        server.stop()


def watch_for_problems(page: Page, site: str) -> list[str]:
    """Script errors, CSP violations (the CSP forbids inline code) and failed requests to ``site``."""
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "console", lambda m: problems.append(m.text) if m.type == "error" and "404" not in m.text else None
    )
    page.on(
        "response",
        lambda r: (
            problems.append(f"{r.status} {r.url}") if r.status >= 400 and r.url.startswith(site) else None
        ),
    )
    return problems


# WCAG AA: text contrast at least 4.5:1 (3:1 for large text: 24 px, or 18.66 px bold) against the
# nearest opaque background behind it; disabled controls are exempt, as WCAG exempts them.
CONTRAST = r"""() => {
  const rgba = (value) => (value.match(/[\d.]+/g) || []).map(Number);
  const channel = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
  const luminance = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  const background = (element) => {
    for (let node = element; node; node = node.parentElement) {
      const colour = rgba(getComputedStyle(node).backgroundColor);
      if (colour.length === 3 || colour[3] === 1) return colour;
    }
    return [255, 255, 255];
  };
  const failures = [];
  for (const element of document.querySelectorAll("body *")) {
    const own = [...element.childNodes].filter((n) => n.nodeType === 3);
    const text = own.map((n) => n.textContent.trim()).join("");
    if (!text || element.closest(":disabled, [aria-disabled=true]")) continue;
    if (!element.getClientRects().length) continue;
    const style = getComputedStyle(element);
    if (style.visibility === "hidden" || style.display === "none") continue;
    const [fg, bg] = [luminance(rgba(style.color)), luminance(background(element))];
    const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    const size = parseFloat(style.fontSize), bold = Number(style.fontWeight) >= 700;
    const needed = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < needed) failures.push(`${text.slice(0, 40)}: ${ratio.toFixed(2)}`);
  }
  return failures;
}"""


async def meets_contrast(page: Page, name: str) -> None:
    failures = await page.evaluate(CONTRAST)
    assert not failures, f"{name}: text below WCAG AA contrast: {failures}"


async def fits_narrow_screen(page: Page, name: str) -> None:
    """At 360 px the page scrolls only downwards; saved as <name>-360."""
    size = page.viewport_size
    await page.set_viewport_size(NARROW)
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= NARROW["width"], f"{name} is {width} px wide at 360 px"
    await screenshot(page, f"{name}-360")
    assert size is not None
    await page.set_viewport_size(size)


def rgb(path: str) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB")).astype(int)


def grey(path: str) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("L"))


async def test_sign_in_browse_paint_a_mask_and_get_the_inpaint_in_the_page_and_in_discord(
    fake: FakeDiscord, web: ApiServer, e2e_deployment: Deployment, page: Page
) -> None:
    guild = next(g for g in fake.guilds.values() if g.name == SECOND_GUILD)
    threads = set(fake.threads)
    command = await fake.slash(
        "imagine", {"prompt": "a lighthouse at dusk --seed 21"}, user="alice", channel_id=guild.channel_id
    )
    await command.wait_response()
    thread_id = (await new_thread(fake, threads)).id
    status = await status_message(fake, thread_id)
    original = await finished(fake, status.id)
    assert original.content.startswith("✅"), original.content
    generation_id = generation_of(original)
    problems = watch_for_problems(page, web.url)

    # Sign in: Discord's consent page, then back in the studio with the servers shared with the bot.
    await page.goto(fake.oauth_sign_in_url("alice"))
    await page.goto(web.url)
    await page.get_by_role("link", name="Sign in with Discord").click()
    await page.get_by_role("button", name="Authorize").click()
    await page.wait_for_url(f"{web.url}/")
    await page.locator(f'a[href="/s/{guild.id}/gallery"]').wait_for()
    await screenshot(page, "home")
    await meets_contrast(page, "home")

    # The gallery, filtered to alice's images with the tiny model.
    await page.click(f'a[href="/s/{guild.id}/gallery"]')
    await page.select_option("#filter-creator", f"discord:{fake.user_id('alice')}")
    await page.select_option("#filter-model", "tiny-sd15")
    await page.click("#filter-apply")
    await page.wait_for_url("**creator=**")
    tile = page.locator(f'[data-testid="gallery-item"] a[href="/s/{guild.id}/images/{generation_id}/0"]')
    await tile.wait_for()
    await screenshot(page, "gallery")
    await meets_contrast(page, "gallery")
    await fits_narrow_screen(page, "gallery")

    # The image page: its recipe, and the editor link (alice made it).
    await tile.click()
    await page.locator("#image-recipe").wait_for()
    assert "a lighthouse at dusk" in (await page.locator("#image-recipe").inner_text())
    await screenshot(page, "image")
    await meets_contrast(page, "image")
    await fits_narrow_screen(page, "image")

    # Paint the left half of the 64x64 image with the mouse, then inpaint it.
    await page.click("#action-edit")
    await page.locator("#mask-editor[data-ready=true]").wait_for()
    assert await page.evaluate("[window.atelierMask.width, window.atelierMask.height]") == [64, 64]
    await page.evaluate("window.atelierMask.setBrushSize(24)")
    canvas = await page.locator("#mask-canvas").bounding_box()
    assert canvas is not None
    await page.mouse.move(canvas["x"] + 2, canvas["y"] + 2)
    await page.mouse.down()
    for row in range(13):
        y = canvas["y"] + canvas["height"] * row / 12
        await page.mouse.move(canvas["x"] + 2, y, steps=2)
        await page.mouse.move(canvas["x"] + canvas["width"] * 0.35, y, steps=4)
    await page.mouse.up()
    coverage = await page.evaluate("window.atelierMask.coverage()")
    assert 0.2 < coverage < 0.8, coverage
    await page.fill("#mask-prompt", "a red door")
    await screenshot(page, "mask-editor")
    await meets_contrast(page, "mask-editor")
    await fits_narrow_screen(page, "mask-editor")
    await page.click("#submit-inpaint")
    await page.wait_for_url("**/jobs/**")
    inpaint_id = page.url.rstrip("/").split("/")[-1]
    await page.locator("#job[data-status=done]").wait_for(timeout=120_000)
    await page.locator("#job-results img").first.wait_for()
    await screenshot(page, "job")
    await meets_contrast(page, "job")

    # Recorded with lineage; outside the mask every pixel is the original's, inside they differ.
    settings = e2e_deployment.settings()
    with sqlite3.connect(settings.database_path) as db:
        parent_id, parent_sha = db.execute(
            "SELECT id, artifact FROM images WHERE generation_id = ? AND idx = 0", (generation_id,)
        ).fetchone()
        child_parent, child_sha, recipe = db.execute(
            "SELECT parent_image_id, artifact, recipe_json FROM images WHERE generation_id = ?", (inpaint_id,)
        ).fetchone()
    assert child_parent == parent_id
    mask_sha = json.loads(recipe)["mask"]
    path = lambda sha: str(settings.artifacts_dir / sha[:2] / f"{sha}.png")  # noqa: E731
    before, after, mask = rgb(path(parent_sha)), rgb(path(child_sha)), grey(path(mask_sha))
    assert before.shape == after.shape == (64, 64, 3) and mask.shape == (64, 64)
    keep, repaint = mask == 0, mask > 0
    assert keep.any() and repaint.any()
    assert (before[keep] == after[keep]).all(), "pixels outside the mask changed"
    assert (before[repaint] != after[repaint]).any(axis=-1).mean() > 0.5

    # The bot shows the same result in the project's thread in Discord.
    def posted() -> bool:
        for message in fake.bot_messages(thread_id):
            try:
                if generation_of(message) == inpaint_id and message.content.startswith("✅"):
                    return True
            except StopIteration:
                continue
        return False

    await fake.wait_for(posted, timeout=60)

    # The library lists both images.
    await page.goto(f"{web.url}/s/{guild.id}/library")
    await page.locator(f'[data-testid="library-image"][data-generation-id="{inpaint_id}"]').wait_for()
    await screenshot(page, "library")
    await meets_contrast(page, "library")
    await fits_narrow_screen(page, "library")
    assert not problems, problems
    fake.assert_clean()

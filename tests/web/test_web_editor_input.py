"""The mask editor's input in a real browser (headless Chromium): the mouse with undo/redo, box,
lasso and invert; a finger and a pen (its pressure scales the brush); two fingers pan and zoom
instead of painting; and the exported mask is the image's size."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image
from playwright.async_api import Page

from tests.api.server import ApiServer
from tests.web.conftest import ALICE, SERVER, seed_images, sign_in


async def open_editor(web_api: ApiServer, page: Page, project: str) -> list[str]:
    parent = (await seed_images(web_api.deployment, ALICE, 1, project=project))[0]
    alice = await sign_in(web_api, ALICE, "Alice")
    token = alice.http.cookies["atelier_session"]
    await alice.http.aclose()
    await page.context.add_cookies([{"name": "atelier_session", "value": token, "url": web_api.url}])
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    await page.goto(f"{web_api.url}/s/{SERVER}/images/{parent.generation_id}/0/edit")
    await page.locator("#mask-editor[data-ready=true]").wait_for()
    return problems


async def coverage(page: Page) -> float:
    return float(await page.evaluate("window.atelierMask.coverage()"))


async def test_the_mouse_paints_boxes_lassos_inverts_and_undoes(web_api: ApiServer, page: Page) -> None:
    problems = await open_editor(web_api, page, "mouse")
    box = await page.locator("#mask-canvas").bounding_box()
    assert box is not None
    x, y, w, h = box["x"], box["y"], box["width"], box["height"]
    await page.mouse.move(x + 2, y + h * 0.1)
    await page.mouse.down()
    await page.mouse.move(x + w * 0.3, y + h * 0.1, steps=8)
    await page.mouse.up()
    stroke = await coverage(page)
    assert 0 < stroke < 0.5
    await page.keyboard.press("Control+z")
    assert await coverage(page) == 0
    await page.keyboard.press("Control+Shift+z")
    assert await coverage(page) == stroke
    await page.click("#tool-box")
    await page.mouse.move(x + w * 0.6, y + h * 0.6)
    await page.mouse.down()
    await page.mouse.move(x + w * 0.9, y + h * 0.9, steps=5)
    await page.mouse.up()
    boxed = await coverage(page)
    assert boxed > stroke + 0.05
    await page.click("#tool-lasso")
    await page.mouse.move(x + w * 0.6, y + h * 0.15)
    await page.mouse.down()
    for fx, fy in ((0.9, 0.15), (0.9, 0.45), (0.6, 0.45)):
        await page.mouse.move(x + w * fx, y + h * fy, steps=5)
    await page.mouse.up()
    lassoed = await coverage(page)
    assert lassoed > boxed + 0.05
    await page.click("#mask-invert")
    assert abs(await coverage(page) - (1 - lassoed)) < 0.02
    await page.click("#mask-undo")
    assert await coverage(page) == lassoed
    data = await page.evaluate("window.atelierMask.maskDataUrl()")
    with Image.open(io.BytesIO(base64.b64decode(data.split(",", 1)[1]))) as mask:
        assert mask.size == (64, 64)
        levels = np.asarray(mask.convert("L"))
    assert abs((levels > 127).mean() - lassoed) < 0.02  # white where painted
    assert not problems, problems


async def test_a_finger_a_pen_and_two_fingers(web_api: ApiServer, page: Page) -> None:
    problems = await open_editor(web_api, page, "touch")
    result = await page.evaluate(
        """() => {
      const canvas = document.getElementById('mask-canvas');
      const r = canvas.getBoundingClientRect();
      const fire = (type, id, fx, fy, extra = {}) => canvas.dispatchEvent(new PointerEvent(type, {
        bubbles: true, cancelable: true, pointerId: id, pointerType: 'touch', isPrimary: id === 1,
        clientX: r.left + r.width * fx, clientY: r.top + r.height * fy, button: 0, buttons: 1, ...extra}));
      const seen = {};
      fire('pointerdown', 1, 0.1, 0.1); fire('pointermove', 1, 0.4, 0.1); fire('pointerup', 1, 0.4, 0.1);
      seen.finger = window.atelierMask.coverage();
      const stroke = (id, fy, pressure) => {
        const pen = {pointerType: 'pen', pressure};
        fire('pointerdown', id, 0.1, fy, pen);
        fire('pointermove', id, 0.4, fy, pen);
        fire('pointerup', id, 0.4, fy, pen);
      };
      stroke(2, 0.4, 0.1);
      seen.light = window.atelierMask.coverage() - seen.finger;
      stroke(5, 0.6, 1.0);
      seen.pen = window.atelierMask.coverage();
      seen.heavy = seen.pen - seen.finger - seen.light;
      fire('pointerdown', 3, 0.5, 0.8); fire('pointermove', 3, 0.6, 0.8);
      fire('pointerdown', 4, 0.7, 0.8);  // a second finger: no painting, a gesture
      fire('pointermove', 3, 0.3, 0.8); fire('pointermove', 4, 0.9, 0.8);
      fire('pointerup', 3, 0.3, 0.8); fire('pointerup', 4, 0.9, 0.8);
      seen.zoom = window.atelierMask.zoom();
      seen.after = window.atelierMask.coverage();
      seen.touchAction = getComputedStyle(canvas).touchAction;
      return seen;
    }"""
    )
    assert result["finger"] > 0 and 0 < result["light"] < result["heavy"]  # pressure scales the brush
    assert result["after"] == result["pen"]  # two fingers painted nothing
    assert result["zoom"] > 1.5 and result["touchAction"] == "none"
    assert not problems, problems

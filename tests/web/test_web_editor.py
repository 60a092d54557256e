"""The mask editor and the live job page over real HTTP: `atelier api` as a process, a real
inference worker with the tiny SD 1.5 model at 64x64, the job's events as Server-Sent Events.

The tests run in this order: the first streams start before the worker does (so a job is seen
waiting in the queue), the inpaint test starts the worker once its job is queued.
"""

from __future__ import annotations

import asyncio
import io
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from redis.asyncio import Redis

from studio import jobs
from studio.entities import ImageRecord
from studio.store import Store
from tests.api.server import ApiServer
from tests.integration.workers import TEST_REDIS_URL, Deployment
from tests.web.conftest import ALICE, BOB, SERVER, WebClient, seed_images, sign_in

THREAD = "800000000000000777"  # the parent's project thread, where the bot would post the result
UPLOAD_LIMIT = 1024 * 1024  # small, so an oversized mask is cheap to send
EVENTS_TIMEOUT_S = 240  # the worker's start and the tiny model's load on a busy CPU included


@pytest.fixture(scope="module")
def web_deployment(tiny_catalogue: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    dep = Deployment(
        data_dir=tmp_path_factory.mktemp("web-editor"),
        models_file=tiny_catalogue,
        extra_env={"ATELIER_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT)},
    )
    yield dep
    dep.stop()


@pytest.fixture(scope="module")
def start_worker(web_deployment: Deployment) -> Callable[[], None]:
    """Starts the inference worker once, when a test first needs it."""
    started: list[bool] = []

    def start() -> None:
        if not started:
            web_deployment.start_worker("inference")
            started.append(True)

    return start


def mask_png(width: int, height: int, white: tuple[int, int, int, int] | None) -> bytes:
    """Black with the box ``white`` (left, top, right, bottom) white: the part to repaint."""
    mask = Image.new("L", (width, height), 0)
    if white is not None:
        mask.paste(255, white)
    out = io.BytesIO()
    mask.save(out, "PNG")
    return out.getvalue()


def pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int16)


def image_path(image: ImageRecord) -> str:
    return f"/s/{SERVER}/images/{image.generation_id}/{image.index}"


async def post_mask(
    client: WebClient,
    image: ImageRecord,
    mask: bytes | None,
    prompt: str = "a bright blue square",
    mode: str = "inpaint",
    csrf: str | None = "",
) -> httpx.Response:
    token = client.csrf if csrf == "" else csrf
    headers = {"Accept": "application/json"} | ({"X-CSRF-Token": token} if token is not None else {})
    files = {"mask": ("mask.png", mask, "image/png")} if mask is not None else None
    return await client.http.post(
        f"{image_path(image)}/inpaint",
        data={"prompt": prompt, "mode": mode},
        files=files or {"nothing": ("x.txt", b"", "text/plain")},  # multipart either way
        headers=headers,
    )


async def sse(response: httpx.Response) -> AsyncIterator[tuple[str, dict[str, object]]]:
    """The events of a text/event-stream response, as (name, data)."""
    name: str | None = None
    data: list[str] = []
    async for line in response.aiter_lines():
        if line == "":
            if name is not None:
                yield name, json.loads("\n".join(data))
            name, data = None, []
        elif line.startswith("event:"):
            name = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            data.append(line.removeprefix("data:").strip())


async def events_until_the_end(
    client: WebClient, job_url: str, on_queued: Callable[[], None] | None = None
) -> list[tuple[str, dict[str, object]]]:
    seen: list[tuple[str, dict[str, object]]] = []
    async with asyncio.timeout(EVENTS_TIMEOUT_S):
        async with client.http.stream("GET", f"{job_url}/events", timeout=None) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            async for name, data in sse(stream):
                seen.append((name, data))
                if name == "queued" and on_queued is not None:
                    on_queued()
    return seen


async def subscribers(redis: Redis, channel: str) -> int:
    found = await redis.pubsub_numsub(channel)
    return int(found[0][1]) if found else 0


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 30) -> None:
    """Wait for a condition only Redis can tell (who is subscribed), looking every 50 ms."""
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


def web_generation_owner(deployment: Deployment, generation_id: str) -> str | None:
    with sqlite3.connect(deployment.settings().database_path) as db:
        row = db.execute(
            "SELECT user_id FROM web_generations WHERE generation_id = ?", (generation_id,)
        ).fetchone()
    return None if row is None else str(row[0])


async def test_the_editor_is_for_the_images_owner_only(web_api: ApiServer) -> None:
    image = (await seed_images(web_api.deployment, ALICE, 1, project="editor page"))[0]
    alice = await sign_in(web_api, ALICE, "Alice")
    bob = await sign_in(web_api, BOB, "Bob")
    page = await alice.http.get(f"{image_path(image)}/edit")
    assert page.status_code == 200
    html = page.text
    for hook in (
        "mask-canvas",
        "tool-brush",
        "tool-eraser",
        "tool-box",
        "tool-lasso",
        "tool-pan",
        "brush-size",
        "feather",
        "mask-undo",
        "mask-redo",
        "mask-invert",
        "mask-clear",
        "zoom-in",
        "zoom-out",
        "zoom-fit",
        "mask-prompt",
        "submit-inpaint",
        "submit-region",
        "mask-status",
    ):
        assert f'id="{hook}"' in html and f'data-testid="{hook}"' in html, hook
    assert 'data-width="64" data-height="64"' in html
    assert f'data-post-url="{image_path(image)}/inpaint"' in html
    # The CSP allows no inline code: scripts come from files, and no element carries a style.
    assert "unsafe-inline" not in page.headers["content-security-policy"]
    assert html.count("<script") == html.count("<script src=") and 'style="' not in html
    for name in ("mask.js", "editor.css"):
        assert f"/{name}" in html
    # Anyone else's image has no editor: as if it did not exist.
    assert (await bob.http.get(f"{image_path(image)}/edit")).status_code == 404
    refused = await post_mask(bob, image, mask_png(64, 64, (0, 0, 32, 64)))
    assert refused.status_code == 404
    await alice.http.aclose()
    await bob.http.aclose()


async def test_bad_masks_and_missing_tokens_are_refused_in_a_sentence(web_api: ApiServer) -> None:
    image = (await seed_images(web_api.deployment, ALICE, 1, project="editor refusals"))[0]
    alice = await sign_in(web_api, ALICE, "Alice")
    good = mask_png(64, 64, (0, 0, 32, 64))
    assert (await post_mask(alice, image, good, csrf=None)).status_code == 403
    wrong = await post_mask(alice, image, good, csrf="not-the-token")
    assert wrong.status_code == 403 and "reload the page" in wrong.json()["detail"]
    cases = [
        (None, "inpaint", "a fox", "paint the area to repaint first"),
        (mask_png(64, 64, None), "inpaint", "a fox", "all black"),
        (mask_png(64, 64, None), "region", "", "all black"),
        (mask_png(32, 32, (0, 0, 16, 32)), "inpaint", "a fox", "The mask is 32x32 but the image is 64x64"),
        (b"\x89PNG" + bytes(UPLOAD_LIMIT + 4096), "inpaint", "a fox", "the limit is 1 MiB"),
        (b"not an image at all", "inpaint", "a fox", "The mask was refused"),
        (good, "inpaint", "   ", "Say what to paint in the masked area"),
        (good, "outpaint", "a fox", "Choose Inpaint or Vary region"),
    ]
    async with Store(web_api.deployment.settings().database_path) as store:
        before = len(await store.list_generations(ALICE, limit=500))
        for mask, mode, prompt, sentence in cases:
            answer = await post_mask(alice, image, mask, prompt=prompt, mode=mode)
            assert 400 <= answer.status_code < 500, (sentence, answer.status_code, answer.text)
            assert sentence in answer.json()["detail"], (sentence, answer.json())
        assert len(await store.list_generations(ALICE, limit=500)) == before  # nothing started
    await alice.http.aclose()


async def test_the_job_page_and_its_events_are_the_owners_only(web_api: ApiServer) -> None:
    image = (await seed_images(web_api.deployment, ALICE, 1, project="editor jobs"))[0]
    alice = await sign_in(web_api, ALICE, "Alice")
    bob = await sign_in(web_api, BOB, "Bob")
    job = f"/s/{SERVER}/jobs/{image.generation_id}"
    page = await alice.http.get(job)
    assert page.status_code == 200 and 'data-status="done"' in page.text
    assert f'href="{image_path(image)}"' in page.text  # its result, linked to its image page
    # Already finished: its outcome at once, and the stream ends.
    seen = await events_until_the_end(alice, job)
    assert [name for name, _ in seen] == ["done"]
    assert seen[0][1]["images"] == [
        {
            "index": 0,
            "page_url": image_path(image),
            "thumb_url": f"/s/{SERVER}/media/{image.generation_id}/0/thumb.webp",
            "image_url": f"/s/{SERVER}/media/{image.generation_id}/0.png",
            "edit_url": f"{image_path(image)}/edit",
        }
    ]
    for path in (job, f"{job}/events"):
        assert (await bob.http.get(path)).status_code == 404
    await alice.http.aclose()
    await bob.http.aclose()


async def test_a_browser_that_leaves_the_job_page_stops_its_follow(web_api: ApiServer) -> None:
    """Before any worker runs: the job waits, the stream says so, and closing it unsubscribes."""
    parent = (await seed_images(web_api.deployment, ALICE, 1, project="editor leaving"))[0]
    alice = await sign_in(web_api, ALICE, "Alice")
    started = await post_mask(alice, parent, mask_png(64, 64, (16, 16, 48, 48)))
    assert started.status_code == 202, started.text
    job_url = started.json()["job_url"]
    channel = jobs.progress_channel(web_api.deployment.prefix, job_url.rsplit("/", 1)[1])
    redis = Redis.from_url(TEST_REDIS_URL)
    try:
        async with alice.http.stream("GET", f"{job_url}/events", timeout=None) as stream:
            name, data = await anext(sse(stream))
            assert name == "queued" and isinstance(data["position"], int)
            # The API's own follower, and this page's.
            await until(lambda: _is(redis, channel, 2), "the page's follow did not subscribe")
        await until(lambda: _is(redis, channel, 1), "the page's follow outlived its browser")
    finally:
        await redis.aclose()
        await alice.http.aclose()


async def _is(redis: Redis, channel: str, count: int) -> bool:
    return await subscribers(redis, channel) == count


async def test_an_inpaint_from_the_editor_keeps_every_pixel_outside_the_mask(
    web_api: ApiServer, start_worker: Callable[[], None]
) -> None:
    deployment = web_api.deployment
    parent = (await seed_images(deployment, ALICE, 1, project="editor thread", thread_id=THREAD))[0]
    alice = await sign_in(web_api, ALICE, "Alice")
    original = (await alice.http.get(f"/s/{SERVER}/media/{parent.generation_id}/0.png")).content
    started = await post_mask(alice, parent, mask_png(64, 64, (0, 0, 32, 64)), "a bright blue square")
    assert started.status_code == 202, started.text
    job_url = started.json()["job_url"]
    generation_id = started.json()["generation_id"]
    assert job_url == f"/s/{SERVER}/jobs/{generation_id}"
    waiting = await alice.http.get(job_url)
    assert waiting.status_code == 200 and 'data-status="queued"' in waiting.text

    seen = await events_until_the_end(alice, job_url, on_queued=start_worker)
    names = [name for name, _ in seen]
    assert names[0] == "queued" and names[-1] == "done", names
    steps = [data for name, data in seen if name == "progress" and data["total"]]
    assert steps and all(0 < int(str(s["step"])) <= int(str(s["total"])) for s in steps), seen
    results = seen[-1][1]["images"]
    assert isinstance(results, list) and len(results) == 1

    painted = pixels((await alice.http.get(results[0]["image_url"])).content)
    before = pixels(original)
    assert painted.shape == before.shape == (64, 64, 3)
    assert np.array_equal(painted[:, 32:], before[:, 32:])  # black in the mask: exactly kept
    changed = np.any(painted[:, :32] != before[:, :32], axis=-1)
    assert changed.mean() > 0.5, changed.mean()  # white in the mask: repainted

    async with Store(deployment.settings().database_path) as store:
        generation = await store.get_generation(generation_id)
        image = (await store.images_of(generation_id))[0]
        delivery = await store.delivery(generation_id)
        parent_generation = await store.get_generation(parent.generation_id)
    assert image.parent_image_id == parent.id  # lineage
    assert generation.project_id == parent_generation.project_id
    assert generation.private == parent_generation.private and generation.server == SERVER
    assert generation.recipe.prompt == "a bright blue square" and generation.recipe.mask is not None
    assert delivery is not None and delivery.channel_id == THREAD  # the bot posts it in the thread
    assert web_generation_owner(deployment, generation_id) == ALICE

    done = await alice.http.get(job_url)
    assert 'data-status="done"' in done.text and results[0]["page_url"] in done.text
    await alice.http.aclose()


async def test_vary_region_repaints_the_painted_region_with_the_images_own_recipe(
    web_api: ApiServer, start_worker: Callable[[], None]
) -> None:
    start_worker()
    deployment = web_api.deployment
    parent = (await seed_images(deployment, ALICE, 1, project="editor region", prompt="a quiet harbour"))[0]
    alice = await sign_in(web_api, ALICE, "Alice")
    original = (await alice.http.get(f"/s/{SERVER}/media/{parent.generation_id}/0.png")).content
    started = await post_mask(alice, parent, mask_png(64, 64, (0, 0, 64, 24)), prompt="", mode="region")
    assert started.status_code == 202, started.text
    generation_id = started.json()["generation_id"]

    seen = await events_until_the_end(alice, started.json()["job_url"])
    assert seen[-1][0] == "done", seen
    results = seen[-1][1]["images"]
    assert isinstance(results, list)
    painted = pixels((await alice.http.get(results[0]["image_url"])).content)
    before = pixels(original)
    assert np.array_equal(painted[24:], before[24:])
    assert np.any(painted[:24] != before[:24], axis=-1).mean() > 0.5

    async with Store(deployment.settings().database_path) as store:
        generation = await store.get_generation(generation_id)
        image = (await store.images_of(generation_id))[0]
        delivery = await store.delivery(generation_id)
    assert generation.recipe.edit == "vary (region)" and generation.recipe.prompt == parent.recipe.prompt
    assert image.parent_image_id == parent.id
    assert delivery is None  # its project has no thread: nothing is promised to Discord
    assert web_generation_owner(deployment, generation_id) == ALICE
    await alice.http.aclose()


async def test_zoom_out_extends_the_canvas_around_the_image_in_its_thread(
    web_api: ApiServer, start_worker: Callable[[], None]
) -> None:
    start_worker()
    deployment = web_api.deployment
    parent = (await seed_images(deployment, ALICE, 1, project="editor zoom", thread_id="777000000000000001"))[
        0
    ]
    alice = await sign_in(web_api, ALICE, "Alice")
    page = f"/s/{SERVER}/images/{parent.generation_id}/0"
    assert 'action="' + page + '/outpaint"' in (await alice.http.get(f"{page}/edit")).text
    refused = await alice.http.post(f"{page}/outpaint", data={"edit": "sideways", "csrf_token": alice.csrf})
    assert refused.status_code == 422 and "Zoom out" in refused.text
    started = await alice.http.post(f"{page}/outpaint", data={"edit": "z2", "csrf_token": alice.csrf})
    assert started.status_code == 303, started.text
    job = started.headers["location"]
    seen = await events_until_the_end(alice, job)
    assert seen[-1][0] == "done", seen
    generation_id = job.rsplit("/", 1)[-1]
    async with Store(deployment.settings().database_path) as store:
        generation = await store.get_generation(generation_id)
        image = (await store.images_of(generation_id))[0]
        delivery = await store.delivery(generation_id)
    assert generation.recipe.edit == "zoom out 2x" and image.parent_image_id == parent.id
    assert (image.width, image.height) == (128, 128)
    assert delivery is not None and delivery.channel_id == "777000000000000001"  # the bot posts it there
    bob = await sign_in(web_api, BOB, "Bob")
    assert (
        await bob.http.post(f"{page}/outpaint", data={"edit": "z2", "csrf_token": bob.csrf})
    ).status_code == 404
    await alice.http.aclose()
    await bob.http.aclose()


def test_nothing_above_logged_an_error(web_api: ApiServer) -> None:
    """Last: streams cut off, refusals and two followers of one job (the API's and a page's)."""
    log = Path(web_api.log_path).read_text(errors="replace")
    assert "Traceback" not in log and "ERROR" not in log, log[-6000:]

"""One person's open job pages are capped (each event stream holds a Redis subscription while
its job runs); a closed page gives its slot back at once."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

from tests.api.server import ApiServer
from tests.web.conftest import ALICE, BOB, SERVER, seed_images, sign_in
from web.stream_slots import MAX_STREAMS_PER_PERSON


async def test_a_person_may_stream_a_few_job_pages_at_once(web_api: ApiServer) -> None:
    image = (await seed_images(web_api.deployment, ALICE, 1))[0]
    alice = await sign_in(web_api, ALICE, "Alice")
    page = f"/s/{SERVER}/images/{image.generation_id}/0/remix"
    text = re.search(r"<textarea[^>]*>([^<]*)</textarea>", (await alice.http.get(page)).text)
    assert text is not None
    started = await alice.http.post(page, data={"prompt": text.group(1), "csrf_token": alice.csrf})
    events = started.headers["location"] + "/events"  # no worker: it stays queued, its streams open
    async with AsyncExitStack() as pages:
        for _ in range(MAX_STREAMS_PER_PERSON):
            stream = await pages.enter_async_context(alice.http.stream("GET", events, timeout=None))
            assert stream.status_code == 200
        refused = await alice.http.get(events, headers={"Accept": "application/json"})
        assert refused.status_code == 429 and "too many job pages" in refused.json()["detail"]
        bob = await sign_in(web_api, BOB, "Bob")  # a cap per person, not for everyone
        assert (await bob.http.get(f"/s/{SERVER}/gallery")).status_code == 200
        await bob.http.aclose()

    async def opens() -> bool:
        async with alice.http.stream("GET", events, timeout=None) as again:
            return again.status_code == 200

    # The server gives a slot back when it notices the page went away: at once, but not before.
    await until(opens, "the closed pages' slots to be given back")
    await alice.http.aclose()


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)

"""/browse: the community feed ranks public creations by favourites and remixes, page by page."""

from __future__ import annotations

import sqlite3

from tests.e2e.bot_process import BotProcess
from tests.e2e.test_bot import custom_ids, ephemeral_answer, finished, imagine, status_message
from tests.fake_discord import FakeDiscord
from tests.integration.workers import Deployment


def favourite_count(deployment: Deployment) -> int:
    with sqlite3.connect(deployment.settings().database_path) as db:
        return int(db.execute("SELECT COUNT(*) FROM favourites").fetchone()[0])


async def test_browse_ranks_public_creations_and_pages(
    bot: BotProcess, fake: FakeDiscord, e2e_deployment: Deployment
) -> None:
    status, thread_id = await imagine(fake, {"prompt": "a market at dawn --model tiny-sdxl", "batch": 4})
    first = await finished(fake, status.id)
    known = {m.id for m in fake.bot_messages(thread_id)}
    record = await fake.slash(
        "imagine", {"prompt": "a market at dusk --model tiny-sdxl", "batch": 3}, channel_id=thread_id
    )
    await ephemeral_answer(record)
    second = await finished(fake, (await status_message(fake, thread_id, known)).id)
    private, _ = await imagine(fake, {"prompt": "my hidden market --model tiny-sdxl", "private": True})
    hidden = await finished(fake, private.id)

    before = favourite_count(e2e_deployment)
    await fake.react(first.id, "2️⃣", user="alice")
    await fake.react(first.id, "2️⃣", user="bob")
    await fake.react(second.id, "1️⃣", user="alice")
    await fake.react(hidden.id, "1️⃣", user="alice")
    await fake.wait_for(lambda: favourite_count(e2e_deployment) == before + 4)

    record = await fake.slash("browse", {"period": "all", "model": "tiny-sdxl"})
    await record.wait_response()
    (page,) = await record.wait_followups(1)
    lines = page.content.splitlines()
    assert lines[0].startswith("**Community feed** · all time · model tiny-sdxl · page 1")
    assert lines[1].startswith("1. ⭐ 2 · 🔀 0 — image 2 of *a market at dawn*")
    assert lines[2].startswith("2. ⭐ 1 · 🔀 0 — image 1 of *a market at dusk*")
    assert len(lines) == 6 and "hidden" not in page.content
    buttons = custom_ids(page)
    assert buttons[1].startswith("at:b:all:1:tiny-sdxl:")
    assert len([b for b in buttons if b.startswith("at:m:")]) == 5  # a Remix action per entry
    remix = await fake.click(page.id, next(b for b in buttons if b.startswith("at:m:")))
    assert (await remix.wait_response()).type == 9  # the prefilled Remix form
    await fake.click(page.id, buttons[1])
    await fake.wait_for(lambda: "page 2" in fake.messages[page.id].content)
    assert len(fake.messages[page.id].content.splitlines()) == 3  # 7 public images: 5 + 2
    assert not fake.pings_anyone(page, include_edits=True)
    unknown = await fake.slash("browse", {"model": "nope"})
    assert "Unknown model `nope`" in await ephemeral_answer(unknown)
    fake.assert_clean()

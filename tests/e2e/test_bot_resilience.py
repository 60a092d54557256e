"""Private projects, the unexpected failure, and a restart that really misses the job's end."""

from __future__ import annotations

import asyncio
import sqlite3

import redis.asyncio as aioredis

from studio import jobs
from studio.app import open_studio
from studio.entities import Requester
from studio.generations import GenerationPlan
from tests.e2e.bot_process import BotProcess
from tests.e2e.test_bot import (
    custom_ids,
    delivered,
    ephemeral_answer,
    finished,
    imagine,
    new_thread,
    status_message,
)
from tests.fake_discord import FakeDiscord
from tests.integration.workers import TEST_REDIS_URL, Deployment


async def test_private_projects_get_a_private_thread_and_private_images(
    bot: BotProcess, fake: FakeDiscord, e2e_deployment: Deployment
) -> None:
    threads = set(fake.threads)
    record = await fake.slash("imagine", {"prompt": "a secret garden", "private": True})
    await record.wait_response()
    thread = await new_thread(fake, threads)
    assert thread.type == 12 and thread.starter_message_id is None  # a private thread
    result = await finished(fake, (await status_message(fake, thread.id)).id)
    generation = next(i for i in custom_ids(result) if i.startswith("at:r:")).split(":")[2]
    with sqlite3.connect(e2e_deployment.settings().database_path) as db:
        public = db.execute("SELECT public FROM images WHERE generation_id = ?", (generation,)).fetchall()
    assert public == [(0,)]
    fake.assert_clean()


async def test_an_unexpected_failure_gets_an_apology_and_a_log_line(
    bot: BotProcess, fake: FakeDiscord, e2e_deployment: Deployment
) -> None:
    status, _ = await imagine(fake, {"prompt": "a fragile vase"})
    result = await finished(fake, status.id)
    generation = next(i for i in custom_ids(result) if i.startswith("at:r:")).split(":")[2]
    settings = e2e_deployment.settings()
    with sqlite3.connect(settings.database_path) as db:
        (artifact,) = db.execute(
            "SELECT artifact FROM images WHERE generation_id = ?", (generation,)
        ).fetchone()
    (settings.artifacts_dir / artifact[:2] / f"{artifact}.png").unlink()  # the disk lost it
    post = await fake.click(result.id, f"at:u:{generation}:0")
    answer = await ephemeral_answer(post)
    assert answer.startswith("Sorry — something went wrong") and "Traceback" not in answer
    await fake.wait_for(lambda: "unexpected error" in bot.log(), timeout=10)
    assert "FileNotFoundError" in bot.log()
    fake.assert_clean()


async def test_a_result_that_arrived_while_the_bot_was_down_is_delivered_on_start(
    bot: BotProcess, fake: FakeDiscord, e2e_deployment: Deployment
) -> None:
    # About 10 s of work on an idle 2-core CPU (256x256 x 60 steps took 1 s: a stop could lose
    # the race), so the bot is stopped before it ends (asserted below).
    status, _ = await imagine(fake, {"prompt": "while you were out --size 512x512", "steps": 150})
    generation = next(i for i in custom_ids(status) if i.startswith("at:x:")).split(":")[2]
    bot.stop()
    await fake.wait_disconnected()
    redis = aioredis.from_url(TEST_REDIS_URL)
    try:
        for _ in range(2400):  # the worker finishes the job with nobody listening (a busy CPU: slowly)
            if await redis.exists(jobs.ARQ_RESULT_PREFIX + generation):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the job did not finish")
    finally:
        await redis.aclose()
    assert not fake.messages[status.id].content.startswith("✅")
    bot.start()
    await fake.wait_connected(timeout=60)
    result = await finished(fake, status.id)
    assert result.content.startswith("✅") and len(result.attachments) == 1
    await fake.wait_for(lambda: delivered(e2e_deployment, generation))  # its tracker is done
    assert len([p for _, p in fake.messages[status.id].edits if p.get("attachments")]) == 1
    fake.assert_clean()


async def test_styles_list_autocomplete_and_apply(bot: BotProcess, fake: FakeDiscord) -> None:
    listing = await ephemeral_answer(await fake.slash("styles"))
    assert "**cinematic** — Film still" in listing and "aspect 21:9" in listing
    choices = await fake.autocomplete("imagine", {"prompt": "a cat", "style": "noi"}, focused="style")
    assert [c["value"] for c in choices] == ["noir"]
    status, _ = await imagine(fake, {"prompt": "a harbour at night", "style": "noir"})
    result = await finished(fake, status.id)
    embed = result.embeds[0]
    assert "film noir scene of a harbour at night" in embed["description"]
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields["Size"] == "96×64"  # noir suggests 3:2
    unknown = await fake.slash("imagine", {"prompt": "a cat --style vaporwave"})
    assert "Unknown style `vaporwave`" in await ephemeral_answer(unknown)
    fake.assert_clean()


async def test_a_generation_queued_just_before_a_stop_is_delivered_after_it(
    bot: BotProcess, fake: FakeDiscord, e2e_deployment: Deployment
) -> None:
    status, thread_id = await imagine(fake, {"prompt": "a first lake"})
    await finished(fake, status.id)
    bot.stop()
    await fake.wait_disconnected()
    # What the bot had done when it stopped: the job queued with its delivery promised, no
    # status message posted yet.
    async with open_studio(e2e_deployment.settings()) as studio:
        project = await studio.store.project_by_thread(str(thread_id))
        assert project is not None
        alice = Requester(f"discord:{fake.users['alice']}", "alice")
        generation = await studio.generations.start(
            GenerationPlan(alice, studio.generations.recipe("a second lake"), project),
            deliver_to=str(thread_id),
        )
    known = {m.id for m in fake.bot_messages(thread_id)}
    bot.start()
    await fake.wait_connected(timeout=60)
    posted = await status_message(fake, thread_id, known)
    assert generation.id in " ".join(custom_ids(posted)) or posted.content.startswith("✅")
    result = await finished(fake, posted.id)
    assert result.content.startswith("✅") and "a second lake" in result.embeds[0]["description"]
    fake.assert_clean()

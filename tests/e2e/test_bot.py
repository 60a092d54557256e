"""The real bot process against the fake Discord, with real Redis and workers on the tiny model."""

from __future__ import annotations

import io
import itertools
import sqlite3
from typing import Any

import pytest
import redis
from PIL import Image

from studio.jobs import ARQ_IN_PROGRESS_PREFIX, ARQ_RESULT_PREFIX
from tests.e2e.bot_process import BotProcess
from tests.fake_discord import FakeDiscord, MessageRecord, ThreadRecord
from tests.integration.workers import TEST_REDIS_URL, Deployment

RESULT_TIMEOUT = 90.0


def custom_ids(message: MessageRecord) -> list[str]:
    found: list[str] = []

    def walk(components: list[dict[str, Any]]) -> None:
        for component in components:
            if "custom_id" in component:
                found.append(component["custom_id"])
            walk(component.get("components", []))

    walk(message.components)
    return found


def generation_count(deployment: Deployment) -> int:
    path = deployment.settings().database_path
    if not path.exists():
        return 0
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT COUNT(*) FROM generations").fetchone()[0])


def generation_of(message: MessageRecord) -> str:
    """The generation a status message (its Cancel button) or a result (its reroll button) is for."""
    return next(i for i in custom_ids(message) if i.startswith(("at:x:", "at:r:"))).split(":")[2]


def delivered(deployment: Deployment, generation_id: str) -> bool:
    """The bot recorded the result as posted: its tracker (result edit, then sharing) is done."""
    with sqlite3.connect(deployment.settings().database_path) as db:
        row = db.execute(
            "SELECT delivered_at FROM deliveries WHERE generation_id = ?", (generation_id,)
        ).fetchone()
    return row is not None and row[0] is not None


def in_progress(generation_id: str) -> bool:
    """A worker has taken the job (arq's in-progress key): it is running, not merely queued."""
    with redis.Redis.from_url(TEST_REDIS_URL) as client:
        return bool(client.exists(ARQ_IN_PROGRESS_PREFIX + generation_id))


async def new_thread(fake: FakeDiscord, known: set[int]) -> ThreadRecord:
    return await fake.wait_for(
        lambda: next((t for t in fake.threads.values() if t.id not in known), None), timeout=15
    )


async def status_message(fake: FakeDiscord, channel_id: int, known: set[int] | None = None) -> MessageRecord:
    def find() -> MessageRecord | None:
        for message in fake.bot_messages(channel_id):
            if known and message.id in known:
                continue
            if any(c.startswith("at:x:") for c in custom_ids(message)) or message.content.startswith("✅"):
                return message
        return None

    return await fake.wait_for(find, timeout=15)


async def finished(fake: FakeDiscord, message_id: int, timeout: float = RESULT_TIMEOUT) -> MessageRecord:
    def done() -> MessageRecord | None:
        message = fake.messages[message_id]
        return message if message.content.startswith(("✅", "❌", "⚠️")) else None

    return await fake.wait_for(done, timeout=timeout)


async def imagine(
    fake: FakeDiscord, options: dict[str, Any], user: str = "alice", channel_id: int | None = None
) -> tuple[MessageRecord, int]:
    """Run /imagine in the text channel (a new thread) or a thread; returns (status message, channel id)."""
    threads = set(fake.threads)
    known = {m.id for m in fake.bot_messages(channel_id)} if channel_id else set()
    record = await fake.slash("imagine", options, user=user, channel_id=channel_id)
    response = await record.wait_response()
    assert response.type == 5, "an /imagine is acknowledged with a deferred response first"
    if channel_id is None:
        channel_id = (await new_thread(fake, threads)).id
    status = await status_message(fake, channel_id, known)
    return status, channel_id


async def ephemeral_answer(record: Any) -> str:
    await record.wait_response()
    followups = await record.wait_followups(1, timeout=15)
    assert followups[0].ephemeral
    return str(followups[0].content)


async def test_imagine_opens_a_thread_and_delivers_a_grid_with_buttons(
    bot: BotProcess, fake: FakeDiscord
) -> None:
    status, thread_id = await imagine(fake, {"prompt": "a lighthouse at dusk --ar 3:2 --seed 42", "batch": 4})
    thread = fake.threads[thread_id]
    assert thread.name == "a lighthouse at dusk" and thread.type == 11  # public, no starter message
    intro = fake.bot_messages(thread_id)[0]  # the project's introduction opens the thread
    assert "a lighthouse at dusk" in intro.content
    result = await finished(fake, status.id)
    assert result.content.startswith("✅ Done")
    (grid,) = result.attachments
    assert Image.open(io.BytesIO(grid.bytes)).size == (2 * 96 + 2, 2 * 64 + 2)
    embed = result.embeds[0]
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields["Seed"] == "42 … 45" and fields["Size"] == "96×64" and fields["Model"] == "tiny-sd15"
    ids = custom_ids(result)
    assert [i.split(":")[1] + i.split(":")[3] for i in ids if i.split(":")[1] in "uv"] == [
        "u0",
        "u1",
        "u2",
        "u3",
        "v0",
        "v1",
        "v2",
        "v3",
    ]
    assert any(i.startswith("at:r:") for i in ids) and any(i.startswith("at:f:") for i in ids)
    for message in fake.bot_messages():
        assert not fake.pings_anyone(message, include_edits=True), message.content
    fake.assert_clean()


async def test_progress_is_shown_and_edits_are_throttled(
    bot: BotProcess, fake: FakeDiscord, e2e_deployment: Deployment
) -> None:
    # 150 steps at 512x512: about 10 s on an idle 2-core machine (256x256 took 2.4 s, too short
    # for the precondition below), a minute or two on a loaded one.
    status, _ = await imagine(fake, {"prompt": "a slow sea --size 512x512", "steps": 150})
    result = await finished(fake, status.id, timeout=280)
    assert result.content.startswith("✅")
    # Progress edits start 1.5 s into a job and come at most every 1.5 s: only a job that runs
    # for several intervals is sure to show one. Check that precondition rather than assume it.
    generation = next(i for i in custom_ids(result) if i.startswith("at:r:")).split(":")[2]
    with sqlite3.connect(e2e_deployment.settings().database_path) as db:
        (worker_seconds,) = db.execute(
            "SELECT worker_seconds FROM generations WHERE id = ?", (generation,)
        ).fetchone()
    assert worker_seconds >= 3 * 1.5, f"the job took {worker_seconds:.1f}s: too short to show progress"
    contents = [payload.get("content", "") for _, payload in result.edits]
    assert any("Generating" in c and "steps" in c and "ETA" in c for c in contents), contents
    times = [t for t, _ in result.edits]
    assert all(later - earlier >= 1.4 for earlier, later in itertools.pairwise(times)), times
    fake.assert_clean()


async def test_favourites_by_reaction_menu_and_star(
    bot: BotProcess, fake: FakeDiscord, e2e_deployment: Deployment
) -> None:
    status, thread_id = await imagine(fake, {"prompt": "three red boats", "batch": 3})
    result = await finished(fake, status.id)
    generation = next(i for i in custom_ids(result) if i.startswith("at:r:")).split(":")[2]

    await fake.react(result.id, "2️⃣", user="bob")
    menu = next(i for i in custom_ids(result) if i.startswith("at:f:"))
    pick = await fake.select(result.id, menu, ["0", "2"], user="alice")
    assert "1, 3" in await ephemeral_answer(pick)

    post = await fake.click(result.id, f"at:u:{generation}:1", user="alice")
    assert "Posted image 2" in await ephemeral_answer(post)
    single = await fake.wait_for(
        lambda: next((m for m in fake.bot_messages(thread_id) if m.content.startswith("Image 2")), None)
    )
    assert len(single.attachments) == 1
    await fake.react(single.id, "⭐", user="alice")

    async def favourites(user: str) -> str:
        record = await fake.slash("favourites", user=user, channel_id=thread_id)
        return await ephemeral_answer(record)

    assert "image 2" in await favourites("bob")
    alice = await favourites("alice")
    assert "image 1" in alice and "image 3" in alice and "image 2" in alice
    await fake.unreact(result.id, "2️⃣", user="bob")

    def bobs_favourites() -> int:
        with sqlite3.connect(e2e_deployment.settings().database_path) as db:
            return int(
                db.execute(
                    "SELECT COUNT(*) FROM favourites JOIN images ON images.id = favourites.image_id "
                    "WHERE images.generation_id = ? AND favourites.user_id = ?",
                    (generation, f"discord:{fake.users['bob']}"),
                ).fetchone()[0]
            )

    await fake.wait_for(lambda: bobs_favourites() == 0)
    assert "No favourites in this project" in await favourites("bob")
    fake.assert_clean()


async def test_reroll_variation_and_other_peoples_buttons(
    bot: BotProcess, fake: FakeDiscord, e2e_deployment: Deployment
) -> None:
    status, thread_id = await imagine(fake, {"prompt": "a quiet forest --seed 7"})
    result = await finished(fake, status.id)
    generation = next(i for i in custom_ids(result) if i.startswith("at:r:")).split(":")[2]

    before = generation_count(e2e_deployment)
    for custom_id in (f"at:r:{generation}:0", f"at:v:{generation}:0", f"at:u:{generation}:0"):
        refused = await fake.click(result.id, custom_id, user="bob")
        assert "Only the person who made these images" in await ephemeral_answer(refused)
    assert generation_count(e2e_deployment) == before

    known = {m.id for m in fake.bot_messages(thread_id)}
    first = await fake.click(result.id, f"at:r:{generation}:0")
    second = await fake.click(result.id, f"at:r:{generation}:0")  # pressed twice quickly
    assert "Rerolling" in await ephemeral_answer(first)
    assert "Already on it" in await ephemeral_answer(second)
    reroll = await finished(fake, (await status_message(fake, thread_id, known)).id)
    fields = {f["name"]: f["value"] for f in reroll.embeds[0]["fields"]}
    assert fields["Seed"] != "7"

    known = {m.id for m in fake.bot_messages(thread_id)}
    vary = await fake.click(result.id, f"at:v:{generation}:0")
    assert "Variations of image 1" in await ephemeral_answer(vary)
    variation = await finished(fake, (await status_message(fake, thread_id, known)).id)
    fields = {f["name"]: f["value"] for f in variation.embeds[0]["fields"]}
    assert fields["Strength"] == "0.35"
    assert generation_count(e2e_deployment) == before + 2
    fake.assert_clean()


async def test_cancel_by_owner_or_moderator_only(bot: BotProcess, fake: FakeDiscord) -> None:
    # 150 steps at 512x512: minutes on a CPU, so it is still running when the cancel arrives.
    status, _ = await imagine(fake, {"prompt": "a very long night --size 512x512", "steps": 150})
    cancel = next(i for i in custom_ids(status) if i.startswith("at:x:"))
    await fake.wait_for(lambda: in_progress(cancel.split(":")[2]), timeout=60, interval=0.1)
    refused = await fake.click(status.id, cancel, user="bob")
    assert "Only the person who started this job, or a moderator" in await ephemeral_answer(refused)
    accepted = await fake.click(status.id, cancel, user="mod")
    assert "Cancelling" in await ephemeral_answer(accepted)
    ended = await finished(fake, status.id, timeout=30)
    assert ended.content.startswith("❌ Cancelled")
    fake.assert_clean()


BAD_INPUT = [
    ({"prompt": "a cat --batch 99"}, "Batch must be between 1 and 8"),
    ({"prompt": "a cat --batch 0"}, "Batch must be between 1 and 8"),
    ({"prompt": "a cat --size 500x512"}, "multiple of 8"),
    ({"prompt": "a cat", "model": "nope"}, "Unknown model `nope`"),
    ({"prompt": "a cat --steps 10000"}, "Steps must be between 1 and 150"),
    ({"prompt": "a cat --seed -1"}, "Seed must be between 0 and 4294967295"),
    ({"prompt": "a cat --wat 3"}, "Unknown flag `--wat`"),
    ({"prompt": "x" * 6000}, "the limit is 2000"),
    ({"prompt": "<@123> <@&456> @everyone @here"}, "no words once mentions are removed"),
]


@pytest.mark.parametrize(("options", "words"), BAD_INPUT, ids=[w for _, w in BAD_INPUT])
async def test_bad_input_gets_an_ephemeral_answer_and_enqueues_nothing(
    bot: BotProcess, fake: FakeDiscord, e2e_deployment: Deployment, options: dict[str, Any], words: str
) -> None:
    threads, before = set(fake.threads), generation_count(e2e_deployment)
    record = await fake.slash("imagine", options)
    answer = await ephemeral_answer(record)
    assert words in answer and "Traceback" not in answer
    assert set(fake.threads) == threads and generation_count(e2e_deployment) == before
    assert not fake.pings_anyone(record.followups[0])
    fake.assert_clean()


async def test_model_autocomplete_lists_the_catalogue(bot: BotProcess, fake: FakeDiscord) -> None:
    choices = await fake.autocomplete("imagine", {"prompt": "a cat", "model": "xl"}, focused="model")
    assert [c["value"] for c in choices] == ["tiny-sdxl"]
    assert choices[0]["name"].startswith("tiny-sdxl — ")


async def test_status_and_the_per_user_cap(
    bot: BotProcess, fake: FakeDiscord, e2e_deployment: Deployment
) -> None:
    statuses = []
    for n in range(3):
        # 512x512, 150 steps: none can end before the cap and /status are checked.
        status, _ = await imagine(fake, {"prompt": f"slow job {n} --size 512x512", "steps": 150}, user="bob")
        statuses.append(status)
    before = generation_count(e2e_deployment)
    record = await fake.slash("imagine", {"prompt": "one too many"}, user="bob")
    assert "You already have 3 jobs queued or running" in await ephemeral_answer(record)
    assert generation_count(e2e_deployment) == before

    report = await ephemeral_answer(await fake.slash("status", user="bob"))
    assert "**Queue:**" in report and "1 inference" in report and "**Your jobs:** 3 of 3" in report
    for status in statuses:
        cancel = next(i for i in custom_ids(status) if i.startswith("at:x:"))
        await ephemeral_answer(await fake.click(status.id, cancel, user="bob"))
    for status in statuses:
        assert (await finished(fake, status.id, timeout=60)).content.startswith("❌")
    fake.assert_clean()


async def test_a_job_finished_while_the_bot_was_down_is_delivered_once(
    bot: BotProcess, fake: FakeDiscord, e2e_deployment: Deployment
) -> None:
    # About 10 s of work on an idle 2-core CPU (256x256 x 60 steps took 1 s: a stop could lose
    # the race), so the bot is surely stopped before it ends (checked below).
    status, _ = await imagine(fake, {"prompt": "patience --size 512x512", "steps": 150})
    generation = generation_of(status)
    bot.stop()
    await fake.wait_disconnected()
    # The job finishes meanwhile (the worker does not need the bot): wait for its arq result.
    with redis.Redis.from_url(TEST_REDIS_URL) as client:
        await fake.wait_for(
            lambda: client.exists(ARQ_RESULT_PREFIX + generation) or None, timeout=240, interval=0.1
        )
    assert not fake.messages[status.id].content.startswith("✅")
    bot.start()
    await fake.wait_connected(timeout=60)
    result = await finished(fake, status.id)
    assert result.content.startswith("✅") and len(result.attachments) == 1
    with_files = [payload for _, payload in result.edits if payload.get("attachments")]
    assert len(with_files) == 1, "delivered exactly once"
    # Buttons of a result posted before the restart still work.
    post = await fake.click(result.id, f"at:u:{generation}:0")
    assert "Posted image 1" in await ephemeral_answer(post)
    await fake.wait_for(lambda: delivered(e2e_deployment, generation))  # its tracker is done
    assert len([p for _, p in fake.messages[status.id].edits if p.get("attachments")]) == 1
    fake.assert_clean()

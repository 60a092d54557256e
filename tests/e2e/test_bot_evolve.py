"""/evolve through the real bot and the fake Discord's polls, on the tiny model: each round's grid
is a poll, the votes pick the winner, the winner is varied into the next round."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import pytest

from tests.e2e.bot_process import BotProcess
from tests.e2e.test_bot import (
    custom_ids,
    ephemeral_answer,
    finished,
    generation_count,
    generation_of,
    new_thread,
    status_message,
)
from tests.fake_discord import FakeDiscord, MessageRecord
from tests.fake_discord.polls import MESSAGE_POLL_RESULT
from tests.fake_discord.rules import DiscordError
from tests.fake_discord.state import INTENT_GUILD_MESSAGE_POLLS
from tests.integration.workers import Deployment


def polls_in(fake: FakeDiscord, thread_id: int) -> list[MessageRecord]:
    return [m for m in fake.bot_messages(thread_id) if m.poll is not None]


async def next_poll(fake: FakeDiscord, thread_id: int, count: int) -> MessageRecord:
    """The thread's ``count``-th poll, once the bot posted it."""
    polls = await fake.wait_for(lambda: len(polls_in(fake, thread_id)) >= count and polls_in(fake, thread_id))
    return polls[count - 1]


def images(deployment: Deployment, generation_id: str) -> list[tuple[str, str | None, dict[str, Any]]]:
    """(id, parent image id, recipe) of a generation's images, in batch order."""
    with sqlite3.connect(deployment.settings().database_path) as db:
        rows = db.execute(
            "SELECT id, parent_image_id, recipe_json FROM images WHERE generation_id = ? ORDER BY idx",
            (generation_id,),
        ).fetchall()
    return [(r[0], r[1], json.loads(r[2])) for r in rows]


def evolution_rows(deployment: Deployment) -> list[tuple[int, str, int | None, str | None]]:
    with sqlite3.connect(deployment.settings().database_path) as db:
        return db.execute(
            "SELECT round, generation_id, winner, votes FROM evolution_rounds ORDER BY rowid"
        ).fetchall()


async def test_an_evolve_thread_runs_two_rounds_from_poll_results(
    bot: BotProcess, fake: FakeDiscord, e2e_deployment: Deployment
) -> None:
    threads = set(fake.threads)
    record = await fake.slash("evolve", {"prompt": "a fox in the snow --seed 7", "rounds": 2, "minutes": 30})
    assert "Evolving over 2 round(s)" in await ephemeral_answer(record)
    thread = await new_thread(fake, threads)
    first = await finished(fake, (await status_message(fake, thread.id)).id)
    assert first.content.startswith("✅"), first.content
    round_one = generation_of(first)

    poll = await next_poll(fake, thread.id, 1)
    assert poll.poll.question == "Round 1 of 2: which image should evolve?"
    assert [text for _, text in poll.poll.answers] == [f"Image {n}" for n in range(1, 5)]
    assert 3599 < poll.poll.expiry - poll.created_at <= 3601  # 30 minutes asks for Discord's 1 hour
    header = fake.bot_messages(thread.id)[fake.bot_messages(thread.id).index(poll) - 1]
    assert "Round 1 of 2" in header.content and any(c.startswith("at:ev:end:") for c in custom_ids(header))

    # Votes decide: image 3 has two, image 1 one (bob changes his mind first).
    assert await fake.vote(poll.id, 2, "bob") and await fake.vote(poll.id, 3, "bob")
    assert await fake.vote(poll.id, 3, "alice") and await fake.vote(poll.id, 1, "mod")
    # The bot reads results, not votes: it does not ask for GUILD_MESSAGE_POLLS, so no vote event reaches it.
    assert not fake.bot_intents() & INTENT_GUILD_MESSAGE_POLLS
    assert any(n.startswith("MESSAGE_POLL_VOTE_ADD not sent") for n in fake.log)
    result = await fake.end_poll(poll.id)  # Discord's clock: final results, then the result message
    assert result.type == MESSAGE_POLL_RESULT and poll.poll.finalized
    known = {m.id for m in fake.bot_messages(thread.id)}
    second = await finished(fake, (await status_message(fake, thread.id, known)).id)
    assert second.content.startswith("✅"), second.content
    round_two = generation_of(second)
    announced = next(m for m in fake.bot_messages(thread.id) if m.content.startswith("🏆 Round 1"))
    assert (
        "**image 3** wins with 2 vote(s)" in announced.content
        and "1: 1 · 2: 0 · 3: 2 · 4: 0" in announced.content
    )

    # The second grid's images are variations of the winner: its child, edit "evolve round 2".
    winner_id = images(e2e_deployment, round_one)[2][0]
    children = images(e2e_deployment, round_two)
    assert len(children) == 4
    assert all(parent == winner_id and recipe["edit"] == "evolve round 2" for _, parent, recipe in children)
    assert all(recipe["strength"] == pytest.approx(0.35) for _, _, recipe in children)

    # A vote after the poll ended changes nothing; ending it again is refused, as on Discord.
    assert not await fake.vote(poll.id, 1, "bob")
    with pytest.raises(DiscordError):
        await fake.end_poll(poll.id)
    assert evolution_rows(e2e_deployment)[-2][2:] == (2, "[1, 0, 2, 0]")

    # Round 2: a tie, closed early by the owner's button (only hers); the lower image number wins.
    poll2 = await next_poll(fake, thread.id, 2)
    assert poll2.poll.question == "Round 2 of 2: which image should evolve?"
    assert await fake.vote(poll2.id, 4, "bob") and await fake.vote(poll2.id, 2, "alice")
    header2 = fake.bot_messages(thread.id)[fake.bot_messages(thread.id).index(poll2) - 1]
    (end,) = [c for c in custom_ids(header2) if c.startswith("at:ev:end:")]
    refused = await ephemeral_answer(await fake.click(header2.id, end, user="bob"))
    assert "Only the person who started this evolution" in refused and not poll2.poll.finalized
    assert "Voting for round 2 closed" in await ephemeral_answer(await fake.click(header2.id, end))
    assert poll2.poll.finalized  # the bot ended its own poll (POST .../expire)

    lineage = await fake.wait_for(
        lambda: next((m for m in fake.bot_messages(thread.id) if "Evolution complete" in m.content), None)
    )
    lines = lineage.content.splitlines()
    assert lines[1].startswith("🌱 round 1: image 3") and fake.jump_link(first) in lines[1]
    assert lines[2].startswith("↳ round 2: image 2") and fake.jump_link(second) in lines[2]
    tie = next(m for m in fake.bot_messages(thread.id) if m.content.startswith("🏆 Round 2"))
    assert "**image 2** wins with 1 vote(s) (a tie: the lower image number wins)" in tie.content
    # Exactly two rounds: two polls, two grids, each round closed once.
    assert len(polls_in(fake, thread.id)) == 2
    assert [(r[0], r[2]) for r in evolution_rows(e2e_deployment)[-2:]] == [(1, 2), (2, 1)]
    assert not any(fake.pings_anyone(m) for m in fake.bot_messages(thread.id))
    fake.assert_clean()


BAD_INPUT = [
    ({"prompt": "a fox", "rounds": 9}, "An evolution runs 1 to 5 rounds."),
    ({"prompt": "a fox", "rounds": 0}, "An evolution runs 1 to 5 rounds."),
    ({"prompt": "<@123> @everyone"}, "The prompt has no words once mentions are removed"),
    ({"prompt": "a fox", "minutes": 0}, "A round's vote lasts 1 to 10080 minutes"),
]


@pytest.mark.parametrize(("options", "words"), BAD_INPUT, ids=[str(o) for o, _ in BAD_INPUT])
async def test_bad_evolve_input_gets_one_sentence_and_queues_nothing(
    bot: BotProcess, fake: FakeDiscord, e2e_deployment: Deployment, options: dict[str, Any], words: str
) -> None:
    threads, before = set(fake.threads), generation_count(e2e_deployment)
    record = await fake.slash("evolve", options)
    answer = await ephemeral_answer(record)
    assert answer.startswith(words) and answer.count(".") == 1 and "Traceback" not in answer
    assert set(fake.threads) == threads and generation_count(e2e_deployment) == before
    fake.assert_clean()


async def test_the_fake_enforces_discords_poll_rules(bot: BotProcess, fake: FakeDiscord) -> None:
    """Discord's limits on a poll, checked where the bot's messages are made (raw REST here)."""
    import aiohttp

    def poll(**over: Any) -> dict[str, Any]:
        body = {"question": {"text": "Which?"}, "answers": [{"poll_media": {"text": "A"}}], "duration": 1}
        return {"poll": body | over}

    cases = [
        poll(answers=[]),
        poll(answers=[{"poll_media": {"text": str(n)}} for n in range(11)]),
        poll(question={"text": "q" * 301}),
        poll(answers=[{"poll_media": {"text": "a" * 56}}]),
        poll(duration=0),
        poll(duration=769),
    ]
    headers = {"Authorization": f"Bot {fake.token}"}
    url = f"{fake.api_base}/channels/{fake.channel_id}/messages"
    async with aiohttp.ClientSession(headers=headers) as http:
        for body in cases:
            async with http.post(url, json=body) as response:
                assert response.status == 400, body
                assert (await response.json())["code"] == 50035
        async with http.post(url, json=poll(duration=768)) as response:
            assert response.status == 200
            made = await response.json()
        assert made["poll"]["results"]["is_finalized"] is False
        mine = await fake.send_user_message("not a poll", channel_id=fake.channel_id)
        expire = f"{fake.api_base}/channels/{fake.channel_id}/polls/{{}}/expire"
        async with http.post(expire.format(mine.id)) as response:
            assert (await response.json())["code"] == 520006
        async with http.post(expire.format(made["id"])) as response:
            assert response.status == 200 and (await response.json())["poll"]["results"]["is_finalized"]
        async with http.post(expire.format(made["id"])) as response:
            assert (await response.json())["code"] == 520001
    for _ in cases:  # the refusals above were deliberate
        fake.expect_violation("Invalid Form Body")
    fake.expect_violation("Cannot expire a non-poll message")
    fake.expect_violation("Poll expired")
    fake.assert_clean()


def evolution_state(deployment: Deployment, prompt: str) -> tuple[str, int] | None:
    with sqlite3.connect(deployment.settings().database_path) as db:
        row = db.execute(
            "SELECT state, round FROM evolutions WHERE prompt LIKE ?", (f"%{prompt}%",)
        ).fetchone()
    return (row[0], int(row[1])) if row else None


async def test_a_poll_that_ends_while_the_bot_is_down_advances_the_evolution_once(
    bot: BotProcess, fake: FakeDiscord, e2e_deployment: Deployment
) -> None:
    words = "a lighthouse evolving through a restart"
    threads = set(fake.threads)
    record = await fake.slash("evolve", {"prompt": f"{words} --seed 3", "rounds": 2})
    await ephemeral_answer(record)
    thread = await new_thread(fake, threads)
    first = await finished(fake, (await status_message(fake, thread.id)).id)
    poll = await next_poll(fake, thread.id, 1)
    await fake.wait_for(lambda: evolution_state(e2e_deployment, words) == ("voting", 1))
    assert await fake.vote(poll.id, 4, "bob")
    bot.stop()
    await fake.wait_disconnected()
    await fake.end_poll(poll.id)  # Discord ends it while no bot listens: its events are lost
    known = {m.id for m in fake.bot_messages(thread.id)}
    bot.start()
    await fake.wait_connected(timeout=60)
    # The restarted bot reads the final results: image 4 wins and is varied, once.
    second = await finished(fake, (await status_message(fake, thread.id, known)).id, timeout=120)
    winner = images(e2e_deployment, generation_of(first))[3][0]
    assert all(parent == winner for _, parent, _ in images(e2e_deployment, generation_of(second)))
    poll2 = await next_poll(fake, thread.id, 2)
    assert evolution_state(e2e_deployment, words) == ("voting", 2)
    assert len([m for m in fake.bot_messages(thread.id) if m.content.startswith("🏆 Round 1")]) == 1
    with sqlite3.connect(e2e_deployment.settings().database_path) as db:
        (count,) = db.execute(
            "SELECT COUNT(*) FROM generations WHERE recipe_json LIKE ?", (f"%{words}%",)
        ).fetchone()
    assert count == 2
    header = fake.bot_messages(thread.id)[fake.bot_messages(thread.id).index(poll2) - 1]
    (end,) = [c for c in custom_ids(header) if c.startswith("at:ev:end:")]
    assert "Voting for round 2 closed" in await ephemeral_answer(await fake.click(header.id, end))
    assert evolution_state(e2e_deployment, words) == ("done", 2)
    fake.assert_clean()

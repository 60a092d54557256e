"""/ideate through the real bot: brainstorm in a thread, Generate a suggestion, Shuffle."""

from __future__ import annotations

from tests.e2e.bot_process import BotProcess
from tests.e2e.test_bot import custom_ids, ephemeral_answer, finished, new_thread, status_message
from tests.fake_discord import FakeDiscord


async def test_ideate_generate_and_shuffle(bot: BotProcess, fake: FakeDiscord) -> None:
    threads = set(fake.threads)
    record = await fake.slash("ideate", {"concept": "a cosy tea house in the rain", "seed": 7})
    assert "Brainstorm ready" in await ephemeral_answer(record)
    thread = await new_thread(fake, threads)
    board = await fake.wait_for(
        lambda: next((m for m in fake.bot_messages(thread.id) if m.embeds), None), timeout=15
    )
    embed = board.embeds[0]
    assert [f["name"] for f in embed["fields"]] == ["Subject", "Style", "Mood", "Lighting", "Technical"]
    assert custom_ids(board) == ["at:i:g:0", "at:i:g:1", "at:i:g:2", "at:i:g:3", "at:i:s:0"]
    suggestion = embed["description"].split("**2.** ")[1].split("\n")[0]

    # The same concept and seed give the same brainstorm.
    again = await fake.slash(
        "ideate", {"concept": "a cosy tea house in the rain", "seed": 7}, channel_id=thread.id
    )
    await ephemeral_answer(again)
    second = await fake.wait_for(
        lambda: next((m for m in fake.bot_messages(thread.id) if m.embeds and m.id != board.id), None)
    )
    assert second.embeds[0]["description"] == embed["description"]

    known = {m.id for m in fake.bot_messages(thread.id)}
    generate = await fake.click(board.id, "at:i:g:1")
    assert "Generating suggestion 2" in await ephemeral_answer(generate)
    result = await finished(fake, (await status_message(fake, thread.id, known)).id)
    assert result.embeds[0]["description"] == suggestion

    refused = await fake.click(board.id, "at:i:s:0", user="bob")
    assert "Only the person who started this brainstorm" in await ephemeral_answer(refused)
    shuffle = await fake.click(board.id, "at:i:s:0")
    await shuffle.wait_response()
    await fake.wait_for(lambda: fake.messages[board.id].embeds[0]["description"] != embed["description"])

    empty = await fake.slash("ideate", {"concept": "<@123> @everyone"})
    assert "Describe your concept" in await ephemeral_answer(empty)
    fake.assert_clean()

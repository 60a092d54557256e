"""/lineage: recipe and the chain of remixes back to the original, with credit and links."""

from __future__ import annotations

from tests.e2e.bot_process import BotProcess
from tests.e2e.test_bot import custom_ids, ephemeral_answer, finished, imagine, status_message
from tests.fake_discord import FakeDiscord


def link(fake: FakeDiscord, channel_id: int, message_id: int, guild: int | None = None) -> str:
    return f"https://discord.com/channels/{guild or fake.guild_id}/{channel_id}/{message_id}"


async def test_lineage_credits_each_creator_and_counts_remixes(bot: BotProcess, fake: FakeDiscord) -> None:
    status, thread_id = await imagine(fake, {"prompt": "an old oak --seed 11"})
    original = await finished(fake, status.id)
    generation = next(i for i in custom_ids(original) if i.startswith("at:r:")).split(":")[2]
    known = {m.id for m in fake.bot_messages(thread_id)}
    await ephemeral_answer(await fake.click(original.id, f"at:v:{generation}:0"))
    variation = await finished(fake, (await status_message(fake, thread_id, known)).id)

    answer = await ephemeral_answer(
        await fake.slash("lineage", {"link": link(fake, thread_id, variation.id)})
    )
    lines = answer.splitlines()
    assert lines[0].startswith("🧬 **Image 1**") and "--strength 0.35" in lines[1]
    alice = fake.users["alice"]
    assert lines[2].startswith(f"• image 1 by <@{alice}>")
    assert lines[3].startswith(f"🌱 original image 1 by <@{alice}>") and "remixed 1×" in lines[3]
    assert link(fake, thread_id, original.id) in lines[3]
    assert not fake.pings_anyone(fake.messages[max(fake.messages)])
    fake.assert_clean()


async def test_lineage_refuses_dead_foreign_and_private_links(bot: BotProcess, fake: FakeDiscord) -> None:
    threads = set(fake.threads)
    record = await fake.slash("imagine", {"prompt": "my secret", "private": True})
    await record.wait_response()
    thread = await fake.wait_for(
        lambda: next((t for t in fake.threads.values() if t.id not in threads), None)
    )
    secret = await finished(fake, (await status_message(fake, thread.id)).id)
    cases = {
        "not a link at all": "not a message link",
        link(fake, thread.id, 12345): "I don't know that message",
        link(fake, thread.id, secret.id, guild=42): "another server",
    }
    for value, words in cases.items():
        assert words in await ephemeral_answer(await fake.slash("lineage", {"link": value}))
    assert "That image does not exist" in await ephemeral_answer(
        await fake.slash("lineage", {"link": link(fake, thread.id, secret.id)}, user="bob")
    )
    mine = await ephemeral_answer(await fake.slash("lineage", {"link": link(fake, thread.id, secret.id)}))
    assert mine.startswith("🧬")
    fake.assert_clean()

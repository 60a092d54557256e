"""The per-person cap under concurrent commands: four /imagine at the same instant, cap 3."""

from __future__ import annotations

import asyncio

from tests.e2e.bot_process import BotProcess
from tests.e2e.test_bot import finished, status_message
from tests.fake_discord import FakeDiscord

REFUSAL = "You already have 3 jobs queued or running"


async def test_four_imagine_at_once_one_is_refused_and_three_run(bot: BotProcess, fake: FakeDiscord) -> None:
    # "The same instant", made exact: each command's first call (opening its project's thread,
    # one channel each: discord.py queues calls to one channel) is held until all four are
    # there, so all four passed the cog's early check with nothing in flight; then only the store
    # can refuse one. The first post into each new thread (three status messages and the refused
    # one's note) is held until all four are there: no job can finish early and free a slot
    # before the store has refused one.
    channels = [await fake.add_channel(fake.guild_id, f"harbour-{n}") for n in range(4)]
    starters = [fake.hold("POST", rf"/channels/{channel}/threads") for channel in channels]
    in_threads = [
        fake.hold("POST", rf"/channels/(?!{'|'.join(map(str, channels))})\d+/messages") for _ in range(4)
    ]
    threads = set(fake.threads)
    records = await asyncio.gather(
        *(
            fake.slash("imagine", {"prompt": f"a paper boat number {n} --seed {n}"}, channel_id=channel)
            for n, channel in enumerate(channels)
        )
    )
    for record in records:
        assert (await record.wait_response()).type == 5
    for hold in starters:
        await hold.wait_arrived()
    for hold in starters:
        hold.release()
    for hold in in_threads:
        await hold.wait_arrived(timeout=30)
    for hold in in_threads:
        hold.release()
    refusal = await fake.wait_for(
        lambda: next((r for r in records if r.followups and REFUSAL in r.followups[0].content), None),
        timeout=30,
    )
    assert refusal.followups[0].ephemeral and "wait for one to finish" in refusal.followups[0].content
    accepted = [r for r in records if r is not refusal]
    for record in accepted:
        answer = (await record.wait_followups(1, timeout=30))[0]
        assert answer.ephemeral and answer.content.startswith("On it — follow along in <#")
    thread_ids = [int(r.followups[0].content.split("<#")[1].split(">")[0]) for r in accepted]
    assert len(set(thread_ids)) == 3 and not set(thread_ids) & threads
    for thread_id in thread_ids:
        result = await finished(fake, (await status_message(fake, thread_id)).id)
        assert result.content.startswith("✅") and len(result.attachments) == 1
    assert len(refusal.followups) == 1
    # The refused command's thread (opened before the store said no) says why it stays empty.
    (empty,) = set(fake.threads) - threads - set(thread_ids)
    *_, note = fake.bot_messages(empty)  # after the project's opening line
    assert note.content.startswith("⏸️ Not started: You already have 3 jobs")
    fake.assert_clean()

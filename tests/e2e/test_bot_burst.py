"""A burst of /imagine in one channel, with Discord's rate limits enforced: threads open promptly."""

from __future__ import annotations

import asyncio

from tests.e2e.bot_process import BotProcess
from tests.fake_discord import FakeDiscord, rules

BURST = 20


async def test_a_burst_of_imagine_opens_every_thread_within_the_limits(
    bot: BotProcess, fake: FakeDiscord
) -> None:
    users = [f"burst{n}" for n in range(BURST)]  # one each: max_jobs_per_user stays out of the way
    for name in users:
        if name not in fake.users:
            fake.add_member(fake.guild_id, name)
    threads_before = set(fake.threads)
    channel_before = {m.id for m in fake.bot_messages()}
    fake.enforce_rate_limits()
    try:
        burst = await asyncio.gather(
            *(
                fake.slash("imagine", {"prompt": f"burst lantern {n}", "steps": 1}, user=name)
                for n, name in enumerate(users)
            )
        )
        responses = await asyncio.gather(*(record.wait_response() for record in burst))
        assert all(r.type == 5 and r.latency < rules.INTERACTION_RESPONSE_WINDOW for r in responses)
        answers = await asyncio.gather(*(record.wait_followups(1, timeout=60) for record in burst))
        assert all(a[0].content.startswith("On it") for a in answers), bot.log()[-4000:]
        opened = {t.name for t in fake.threads.values() if t.id not in threads_before}
        assert opened == {f"burst lantern {n}" for n in range(BURST)}
        # Nothing went to the channel's own message bucket: only Discord's "started a thread" notices.
        assert {m.type for m in fake.bot_messages() if m.id not in channel_before} == {18}

        def unhandled() -> list[object]:
            """429s not (yet) followed by the same request succeeding: discord.py retries each
            once its wait is over, so every one of them is settled soon after."""
            return [
                r
                for r in fake.rate_limited
                if not any(
                    q.method == r.method and q.path == r.path and q.status < 300 and q.time > r.at
                    for q in fake.requests
                )
            ]

        await fake.wait_for(lambda: not unhandled(), timeout=60, message="429s left unretried")
        # Every result is delivered before the limits go: nothing of the burst spills into the
        # tests after this one.
        new_threads = [t.id for t in fake.threads.values() if t.id not in threads_before]

        def delivered(thread: int) -> bool:
            return any(m.content.startswith("✅ Done") for m in fake.bot_messages(thread))

        await fake.wait_for(
            lambda: all(delivered(t) for t in new_threads), timeout=120, message="every result delivered"
        )
    finally:
        fake.enforce_rate_limits(False)
    fake.assert_clean()

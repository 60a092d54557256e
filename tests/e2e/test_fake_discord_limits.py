"""The fake's per-route rate limits (opt-in), against raw requests and a real discord.py client."""

from __future__ import annotations

import asyncio

import aiohttp

from tests.e2e.test_fake_discord import SmokeBot, bot, channel, fake  # noqa: F401 (fixtures)
from tests.fake_discord import FakeDiscord


async def test_message_sends_share_a_bucket_per_channel_and_threads_have_their_own(
    fake: FakeDiscord,  # noqa: F811
) -> None:
    fake.enforce_rate_limits()
    headers = {"Authorization": f"Bot {fake.token}"}
    url = f"{fake.api_base}/channels/{fake.channel_id}"
    async with aiohttp.ClientSession(headers=headers) as http:
        for n in range(5):
            async with http.post(f"{url}/messages", json={"content": f"m{n}"}) as ok:
                assert ok.status == 200 and ok.headers["X-RateLimit-Remaining"] == str(4 - n)
        async with http.post(f"{url}/messages", json={"content": "one too many"}) as refused:
            body = await refused.json()
            assert refused.status == 429 and 0 < body["retry_after"] <= 5 and not body["global"]
            assert refused.headers["Via"] and refused.headers["X-RateLimit-Scope"] == "user"
        # Thread creation is a bucket of its own, and a thread is a channel of its own.
        async with http.post(f"{url}/threads", json={"name": "side", "type": 11}) as opened:
            assert opened.status == 201
            thread_id = (await opened.json())["id"]
        async with http.post(
            f"{fake.api_base}/channels/{thread_id}/messages", json={"content": "inside"}
        ) as inside:
            assert inside.status == 200
    notice = fake.channel_messages()[-1]  # Discord's own notice, not one of the app's sends
    assert notice.type == 18 and notice.content == "side"
    assert [r.bucket for r in fake.rate_limited] == ["message-create"]


async def test_discord_py_honours_the_bucket_headers(fake: FakeDiscord, bot: SmokeBot) -> None:  # noqa: F811
    fake.enforce_rate_limits(message_create=(2, 0.5))
    ch = channel(bot, fake)
    sent = await asyncio.gather(*(ch.send(f"n{n}") for n in range(6)))
    assert sorted(m.content for m in sent) == [f"n{n}" for n in range(6)]
    unanswered = [
        hit
        for hit in fake.rate_limited
        if not any(r.path == hit.path and r.status == 200 and r.time > hit.at for r in fake.requests)
    ]
    assert not unanswered
    fake.assert_clean()

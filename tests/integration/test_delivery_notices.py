"""Delivery notices over a real Redis: a published notice reaches the subscriber, a malformed one
is ignored, and after a Redis restart the subscriber subscribes again and sweeps."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from arq.connections import ArqRedis, create_pool
from redis.asyncio import Redis

from studio.notices import DeliveryNotice, DeliveryNotices, notice_channel
from studio.queue import redis_settings
from tests.integration.own_redis import OwnRedis, free_port
from tests.integration.workers import TEST_REDIS_URL


class Listener:
    """A subscriber that records what it is told, with events to wait on."""

    def __init__(self) -> None:
        self.notices: asyncio.Queue[DeliveryNotice] = asyncio.Queue()
        self.subscriptions = 0
        self.subscribed = asyncio.Event()

    async def on_notice(self, notice: DeliveryNotice) -> None:
        await self.notices.put(notice)

    async def on_subscribed(self) -> None:
        self.subscriptions += 1
        self.subscribed.set()


@pytest.fixture
async def redis() -> AsyncIterator[ArqRedis]:
    pool = await create_pool(redis_settings(TEST_REDIS_URL))
    yield pool
    await pool.aclose()


async def test_a_published_notice_reaches_the_subscriber(redis: ArqRedis) -> None:
    notices = DeliveryNotices(redis, f"test-notices-{secrets.token_hex(4)}")
    listener = Listener()
    listening = asyncio.create_task(notices.listen(listener.on_notice, listener.on_subscribed))
    try:
        await asyncio.wait_for(listener.subscribed.wait(), 10)
        await redis.publish(notices.channel, b"\x80 not json")  # ignored, with a warning
        await redis.publish(notices.channel, b'{"generation_id": 1, "thread_id": "2"}')  # ignored
        await notices.announce(DeliveryNotice("g" * 32, "1234567890"))
        got = await asyncio.wait_for(listener.notices.get(), 5)
        assert got == DeliveryNotice("g" * 32, "1234567890")
        assert listener.notices.empty() and listener.subscriptions == 1
    finally:
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)


async def test_the_payload_is_json_on_the_studios_own_channel(redis: ArqRedis) -> None:
    prefix = f"test-notices-{secrets.token_hex(4)}"
    pubsub = redis.pubsub()
    await pubsub.subscribe(notice_channel(prefix))
    try:
        await DeliveryNotices(redis, prefix).announce(DeliveryNotice("abc", "42"))
        message = None
        for _ in range(50):
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
            if message is not None:
                break
        assert message is not None and message["channel"] == f"{prefix}:deliveries".encode()
        assert message["data"] == b'{"generation_id": "abc", "thread_id": "42"}'
    finally:
        await pubsub.aclose()


async def test_announcing_while_redis_is_away_only_logs(caplog: pytest.LogCaptureFixture) -> None:
    away = Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1)  # nothing listens there
    try:
        await DeliveryNotices(away, "away").announce(DeliveryNotice("abc", "42"))
    finally:
        await away.aclose()
    assert "the bot finds it on its next sweep" in caplog.text


async def test_after_a_redis_restart_it_subscribes_again_and_sweeps(tmp_path: Path) -> None:
    server = OwnRedis(tmp_path / "redis")
    server.start()
    pool = await create_pool(redis_settings(server.url))
    notices = DeliveryNotices(pool, "restart")
    listener = Listener()
    listening = asyncio.create_task(notices.listen(listener.on_notice, listener.on_subscribed))
    try:
        await asyncio.wait_for(listener.subscribed.wait(), 10)
        listener.subscribed.clear()
        server.kill()
        await asyncio.sleep(0.5)
        await asyncio.to_thread(server.start)
        await asyncio.wait_for(listener.subscribed.wait(), 20)  # subscribed again: swept again
        assert listener.subscriptions == 2
        await notices.announce(DeliveryNotice("after", "7"))
        assert await asyncio.wait_for(listener.notices.get(), 5) == DeliveryNotice("after", "7")
    finally:
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)
        await pool.aclose()
        server.stop()

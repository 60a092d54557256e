"""Delivery notices: the API tells the bot through Redis pub/sub that it promised a Discord thread
a result, so the bot posts its status message at once instead of finding it on a poll.

A notice is a hint, not the promise: the promise is the delivery row in SQLite. A notice missed
(the bot was down, or Redis away) is found by the bot's sweep of promised deliveries, and the
bot acts only on promises it finds there, so a notice forged by anyone who can publish on Redis
makes it post nothing. The payload is JSON (never pickle): generation id and thread id.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from redis.asyncio import Redis

from studio.cancellation import raise_lost_cancel
from studio.outage import REDIS_DOWN, Outage

log = logging.getLogger(__name__)
OUTAGE_CAP_S = 2.0  # while Redis is away: the longest pause between tries to subscribe again


@dataclass(frozen=True)
class DeliveryNotice:
    generation_id: str
    thread_id: str

    def encode(self) -> bytes:
        return json.dumps({"generation_id": self.generation_id, "thread_id": self.thread_id}).encode()

    @classmethod
    def decode(cls, data: bytes | str) -> DeliveryNotice:
        """The notice in a message; ValueError if it is not one."""
        fields = json.loads(data)
        if not isinstance(fields, dict):
            raise ValueError("not a JSON object")
        generation_id, thread_id = fields.get("generation_id"), fields.get("thread_id")
        if not isinstance(generation_id, str) or not isinstance(thread_id, str):
            raise ValueError("generation_id and thread_id must be strings")
        return cls(generation_id, thread_id)


def notice_channel(prefix: str) -> str:
    return f"{prefix}:deliveries"


class DeliveryNotices:
    """The notice channel of one studio (its queue prefix) on a Redis client."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.channel = notice_channel(prefix)

    async def announce(self, notice: DeliveryNotice) -> None:
        """Publish a notice; if Redis is away it is only logged: the bot's sweep finds the promise."""
        try:
            await self.redis.publish(self.channel, notice.encode())
        except REDIS_DOWN as error:
            log.warning(
                "could not announce the delivery of %s (%s); the bot finds it on its next sweep",
                notice.generation_id,
                type(error).__name__,
            )

    async def listen(
        self,
        on_notice: Callable[[DeliveryNotice], Awaitable[None]],
        on_subscribed: Callable[[], Awaitable[None]],
    ) -> None:
        """Relay notices until cancelled, subscribing again after a Redis outage.

        ``on_subscribed`` runs after each (re)subscription: notices published while this was not
        subscribed are lost, so it is the moment to sweep for promises made meanwhile.
        """
        outage = Outage("listening for delivery notices", log, first_s=0.1, cap_s=OUTAGE_CAP_S)
        while True:
            try:
                await self._listen_connected(on_notice, on_subscribed, outage)
            except REDIS_DOWN as error:
                await asyncio.sleep(outage.failed(error))

    async def _listen_connected(
        self,
        on_notice: Callable[[DeliveryNotice], Awaitable[None]],
        on_subscribed: Callable[[], Awaitable[None]],
        outage: Outage,
    ) -> None:
        pubsub = self.redis.pubsub()
        try:
            await pubsub.subscribe(self.channel)
            outage.recovered()
            await on_subscribed()
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                await raise_lost_cancel()
                if message is None:
                    continue
                try:
                    notice = DeliveryNotice.decode(message["data"])
                except ValueError as error:  # json.JSONDecodeError and UnicodeDecodeError included
                    log.warning("ignored a malformed delivery notice (%s)", error)
                    continue
                await on_notice(notice)
        finally:
            with contextlib.suppress(*REDIS_DOWN):
                await pubsub.unsubscribe()
            with contextlib.suppress(*REDIS_DOWN):
                await pubsub.aclose()  # type: ignore[no-untyped-call]  # (redis-py leaves it untyped)

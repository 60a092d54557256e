"""Riding out a Redis outage: which errors mean "Redis is away", and a quiet, paced retry.

A Redis restart (a crash, a failover, a deploy) drops every connection for a few seconds to a
minute. Workers, the bot, the API and the CLI keep running through it: whatever talks to Redis
retries with a capped backoff, says once that Redis is gone and once that it is back, and
never logs a traceback per attempt.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from studio.errors import QueueUnavailable, StoreUnavailable

T = TypeVar("T")

# redis-py's ConnectionError covers refused/reset connections and BusyLoadingError (a restarted
# server still loading its AOF); OSError covers socket errors raised before redis-py wraps them
# (and the builtin TimeoutError of a connect timeout).
REDIS_DOWN: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError, OSError)
# Only redis-py's own errors: for places where an OSError may well be something else (a file).
REDIS_LOST: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError)
# What a front end's follower meets while Redis, or the database, is away: keep following
# rather than give up (the work runs again from its start once it is back: it is idempotent).
QUEUE_AWAY: tuple[type[BaseException], ...] = (QueueUnavailable, StoreUnavailable, *REDIS_LOST)


def service_of(error: BaseException) -> str:
    """What is away, for the log: the database or Redis."""
    return "the database" if isinstance(error, StoreUnavailable) else "Redis"


class Outage:
    """One place's view of Redis being away: logs its start and end once, and paces retries."""

    def __init__(self, what: str, logger: logging.Logger, first_s: float = 0.1, cap_s: float = 2.0) -> None:
        self.what = what
        self.log = logger
        self.first_s = first_s
        self.cap_s = cap_s
        self.since: float | None = None
        self.failures = 0
        self.ended_at: float | None = None  # monotonic time the last outage ended
        self.service = "Redis"  # what the current (or last) outage is of

    @property
    def down(self) -> bool:
        return self.since is not None

    @property
    def seconds(self) -> float:
        """How long Redis has been unreachable (0 while it is up)."""
        return 0.0 if self.since is None else time.monotonic() - self.since

    def failed(self, error: BaseException) -> float:
        """Note one failed attempt; returns how long to wait before the next one."""
        if self.since is None:
            self.since = time.monotonic()
            self.service = service_of(error)
            detail = getattr(error, "detail", None) or error
            self.log.warning(
                "%s: %s is unreachable (%s: %s); retrying until it is back",
                self.what,
                self.service,
                type(error).__name__,
                detail,
            )
        delay = min(self.cap_s, self.first_s * 2.0**self.failures)
        self.failures += 1
        return delay

    def recovered(self) -> None:
        if self.since is not None:
            self.log.warning("%s: %s is back after %.1fs", self.what, self.service, self.seconds)
            self.ended_at = time.monotonic()
        self.since = None
        self.failures = 0

    async def retry(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run ``operation`` until it gets through to Redis (for writes that must not be lost)."""
        while True:
            try:
                value = await operation()
            except REDIS_DOWN as error:
                await asyncio.sleep(self.failed(error))
                continue
            self.recovered()
            return value

"""A proactive global rate limit for the bot's REST calls.

Discord allows a bot 50 requests per second overall (interaction callbacks and webhooks are
exempt) and answers more with 429s; 10,000 invalid requests in 10 minutes earn a temporary ban.
discord.py only reacts to 429s, so a burst of /imagine (each opening a thread and posting a
status message) would hit the wall. This keeps the bot under the limit instead.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import discord

EXEMPT_PREFIXES = ("/interactions/", "/webhooks/")


class GlobalLimiter:
    """A token bucket: short bursts of ``burst``, then ``rate`` requests per second, evenly spaced.

    Even spacing matters: a limiter that lets a whole second's allowance out at once sees it
    arrive bunched up with the next second's, and the server counts more than 50 in a window.
    Any one-second window holds at most ``burst + rate`` requests.
    """

    def __init__(self, rate: float = 40.0, burst: int = 5) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._updated = time.monotonic()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:  # first come, first served
            while True:
                now = time.monotonic()
                self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
                self._updated = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self.rate)


def limit_globally(http: discord.http.HTTPClient, limiter: GlobalLimiter) -> None:
    """Route every non-exempt REST call of ``http`` through ``limiter``."""
    request: Callable[..., Awaitable[Any]] = http.request

    async def limited(route: discord.http.Route, **kwargs: Any) -> Any:
        if not route.path.startswith(EXEMPT_PREFIXES):
            await limiter.acquire()
        return await request(route, **kwargs)

    http.request = limited  # type: ignore[method-assign]

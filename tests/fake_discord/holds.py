"""Holding a REST call in the fake: the bot's request waits until the test releases it.

A test uses it to stop the bot at an exact point of a flow (e.g. right after it acknowledged
a command, while its next call is held), which no sleep can do reliably.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field


@dataclass
class Hold:
    method: str
    pattern: re.Pattern[str]
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    released: asyncio.Event = field(default_factory=asyncio.Event)
    dropped: bool = False
    path: str | None = None  # the request that was caught

    async def wait_arrived(self, timeout: float = 15.0) -> str:
        """Wait until a matching request is being held; returns its path."""
        try:
            await asyncio.wait_for(self.arrived.wait(), timeout)
        except TimeoutError:
            what = f"{self.method} {self.pattern.pattern}"
            raise AssertionError(f"no {what} arrived within {timeout} s") from None
        assert self.path is not None
        return self.path

    def release(self, drop: bool = False) -> None:
        """Let the request go on; ``drop``: it never reaches "Discord" (answered 503, nothing done)."""
        self.dropped = drop
        self.released.set()


class Holds:
    def __init__(self) -> None:
        self._waiting: list[Hold] = []

    def add(self, method: str, path: str) -> Hold:
        hold = Hold(method.upper(), re.compile(path))
        self._waiting.append(hold)
        return hold

    async def check(self, method: str, path: str) -> bool:
        """Hold a request that matches the first waiting hold; True if it must be dropped."""
        for hold in self._waiting:
            if hold.method == method and hold.pattern.fullmatch(path):
                self._waiting.remove(hold)  # a hold catches one request
                hold.path = path
                hold.arrived.set()
                await hold.released.wait()
                return hold.dropped
        return False

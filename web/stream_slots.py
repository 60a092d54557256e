"""How many job-page event streams each person has open (per API process)."""

from __future__ import annotations

from collections.abc import AsyncGenerator

# Open job pages one person may stream at once (per API process): each holds a Redis subscription
# while its job runs, so a loop of reloads or a hundred tabs cannot pile them up.
MAX_STREAMS_PER_PERSON = 8
TOO_MANY_STREAMS = "You have too many job pages open at once; close some of them and reload this one."


class StreamSlots:
    """How many event streams each person has open in this process."""

    def __init__(self, limit: int = MAX_STREAMS_PER_PERSON) -> None:
        self.limit = limit
        self.open: dict[str, int] = {}

    def take(self, person: str) -> bool:
        if self.open.get(person, 0) >= self.limit:
            return False
        self.open[person] = self.open.get(person, 0) + 1
        return True

    def give_back(self, person: str) -> None:
        left = self.open.get(person, 0) - 1
        if left > 0:
            self.open[person] = left
        else:
            self.open.pop(person, None)

    async def held(self, person: str, source: AsyncGenerator[str, None]) -> AsyncGenerator[str, None]:
        """``source``'s events, the person's slot (already taken) given back when it ends."""
        try:
            async for item in source:
                yield item
        finally:
            self.give_back(person)
            await source.aclose()

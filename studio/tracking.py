"""Following jobs in the background: one task per key until the job ends and its outcome is acted on.

The bot (results and training runs into Discord, API deliveries promised into a thread) and the
API (webhooks) each follow many jobs at once. A ``Tracker`` holds their tasks: a key is tracked
once however often it is asked for, a failure is logged and ends only that task, a Redis outage
is waited out (the work runs again from its start, so it must be idempotent), and ``stop``
cancels and awaits them all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from studio.outage import QUEUE_AWAY, Outage

K = TypeVar("K", bound=Hashable)
Work = Callable[[], Awaitable[object]]  # what it returns is not used


@dataclass(frozen=True)
class Retry:
    """What a tracked task does after its work failed (other than Redis being away)."""

    pauses_s: tuple[float, ...] = ()  # the pause before each new try; none left: give up
    forever: bool = False  # once the pauses run out, keep trying after the last one
    then: str = "given up"  # says in the log what happens after the last try

    def pause(self, failures: int) -> float | None:
        """The pause after the ``failures``-th failure, or None to give up."""
        if failures <= len(self.pauses_s):
            return self.pauses_s[failures - 1]
        return self.pauses_s[-1] if self.forever and self.pauses_s else None


class Tracker(Generic[K]):
    """Background tasks keyed by what they follow (a generation id, a run id).

    ``outage`` gives the ``Outage`` that paces the retries of a key's work while Redis is away
    (one per key, or one shared so that it is logged once); without it, Redis errors are
    failures like any other.
    """

    def __init__(
        self,
        what: str,
        logger: logging.Logger,
        *,
        outage: Callable[[K], Outage] | None = None,
        retry: Retry = Retry(),
    ) -> None:
        self.what = what
        self.log = logger
        self.outage = outage
        self.retry = retry
        self._tasks: dict[K, asyncio.Task[None]] = {}

    def track(self, key: K, work: Work) -> bool:
        """Run ``work`` in the background unless ``key`` is already tracked (then False)."""
        if key in self._tasks:
            return False
        task = asyncio.create_task(self._run(key, work))
        self._tasks[key] = task
        task.add_done_callback(lambda _: self._forget(key, task))
        return True

    def __contains__(self, key: object) -> bool:
        return key in self._tasks

    def __len__(self) -> int:
        return len(self._tasks)

    async def idle(self) -> None:
        """Wait until no task runs (tasks started meanwhile included)."""
        while self._tasks:
            await asyncio.wait(list(self._tasks.values()))

    async def stop(self) -> None:
        """Cancel every task and wait for them to end."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _forget(self, key: K, task: asyncio.Task[None]) -> None:
        if self._tasks.get(key) is task:
            del self._tasks[key]

    async def _run(self, key: K, work: Work) -> None:
        outage = self.outage(key) if self.outage is not None else None
        failures = 0
        while True:
            try:
                await work()
            except QUEUE_AWAY as error:
                if outage is not None:  # not a failed try: wait for Redis, however long
                    await asyncio.sleep(outage.failed(error))
                    continue
                failures += 1
                pause = self._failed(key, failures)
            except Exception:
                failures += 1
                pause = self._failed(key, failures)
            else:
                if outage is not None:
                    outage.recovered()
                return
            if pause is None:
                return
            await asyncio.sleep(pause)

    def _failed(self, key: K, failures: int) -> float | None:
        """Log the failure being handled (with its traceback); the pause before the next try."""
        pause = self.retry.pause(failures)
        attempt = f" (attempt {failures})" if self.retry.pauses_s else ""
        then = f"retrying in {pause:g}s" if pause is not None else self.retry.then
        self.log.exception("%s %s failed%s; %s", self.what, key, attempt, then)
        return pause

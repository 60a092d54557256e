"""Queue ETA: about how long until a queued generation's result, from its true place in line.

The estimator, and why it is this one:

    eta ~ (ahead / capacity + 1) * typical run

* ``ahead``: the jobs before it in its queue, running ones included (``JobQueue.position``, the
  fair order of studio.fairness, so lanes and turns are already in it).
* ``capacity``: the jobs the live inference workers run at once, the sum of their advertised
  ``slots`` (studio.routing; an advertisement expires with its worker, so the dead don't count).
* ``typical run``: the median of ``worker_seconds + load_seconds`` (what the worker measured:
  its pipeline time and any model load before it) over the latest ``RECENT_RUNS`` finished
  generations. The median, not the mean: one cold model load or one 8-image batch at full size
  does not swing it. Worker-measured, not ``finished_at - started_at``: no clock of another host
  and no delivery delay in it.

The jobs ahead drain ``capacity`` at a time, then this one runs: hence the ``+ 1``. A running job
ahead is counted whole although it is partly done, so the estimate errs on the long side by at
most one run. It is per job, not per image, and ignores which worker holds which model: what is
cheap to know at every status edit. Cost: one bounded store query every ``RUNS_REFRESH_S`` and
one read of the advertisements every ``CAPACITY_REFRESH_S``, per process (``shared``), however
many status messages ask.

No data means no estimate (None): before any generation has finished, or with no live inference
worker, a front end says nothing rather than a wrong number.
"""

from __future__ import annotations

import statistics
import time
import weakref
from collections.abc import Callable

from studio.errors import QueueUnavailable
from studio.routing import Routing
from studio.store import Store

RECENT_RUNS = 50  # finished generations the typical run time is taken from
RUNS_REFRESH_S = 30.0  # how long a typical run time is reused before the store is asked again
CAPACITY_REFRESH_S = 5.0  # how long the workers' capacity is reused before Redis is asked again


def typical_run(run_seconds: list[float]) -> float | None:
    """The median run time; None without any run to go by."""
    runs = [seconds for seconds in run_seconds if seconds >= 0]
    return statistics.median(runs) if runs else None


def estimate(ahead: int | None, run_seconds: float | None, capacity: int) -> float | None:
    """Seconds until the result of a job with ``ahead`` jobs before it (None: not queued), given a
    typical ``run_seconds`` per job and ``capacity`` jobs run at once; None when either is unknown."""
    if ahead is None or run_seconds is None or capacity <= 0:
        return None
    return (max(0, ahead) / capacity + 1) * run_seconds


class QueueEta:
    """The estimator with its two inputs cached (see the module's docstring)."""

    def __init__(self, store: Store, routing: Routing, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.routing = routing
        self.clock = clock
        self._run: tuple[float, float] | None = None  # (read at, typical run)
        self._capacity: tuple[float, int] | None = None  # (read at, slots)

    async def typical_run(self) -> float | None:
        """The median recent run, read again after ``RUNS_REFRESH_S``; none yet is not kept (the
        first run to finish counts at once, and with none the query finds nothing, cheaply)."""
        now = self.clock()
        if self._run is None or now - self._run[0] >= RUNS_REFRESH_S:
            found = typical_run(await self.store.recent_run_seconds(RECENT_RUNS))
            self._run = None if found is None else (now, found)
            return found
        return self._run[1]

    async def capacity(self) -> int:
        """Jobs the live inference workers run at once, read again after ``CAPACITY_REFRESH_S``
        (none is not kept: a worker that starts counts at once); 0 while Redis is away."""
        now = self.clock()
        if self._capacity is None or now - self._capacity[0] >= CAPACITY_REFRESH_S:
            try:
                slots = sum(max(0, advert.slots) for advert in await self.routing.adverts())
            except QueueUnavailable:
                return 0
            self._capacity = (now, slots) if slots > 0 else None
            return slots
        return self._capacity[1]

    async def seconds(self, ahead: int | None) -> float | None:
        """About how many seconds until the result of a queued job with ``ahead`` jobs before it."""
        if ahead is None:
            return None
        capacity = await self.capacity()
        if capacity <= 0:
            return None
        return estimate(ahead, await self.typical_run(), capacity)


_SHARED: weakref.WeakKeyDictionary[Store, QueueEta] = weakref.WeakKeyDictionary()


def shared(store: Store, routing: Routing) -> QueueEta:
    """The process's estimator for this store: the bot's status messages and /status, or the API's
    answers, share one cache instead of each asking the store and Redis."""
    found = _SHARED.get(store)
    if found is None:
        found = _SHARED[store] = QueueEta(store, routing)
    return found

"""Fast crash recovery: keep a running job's arq in-progress key on a short lease.

arq marks a running job with ``arq:in-progress:<id>`` for (largest timeout + 10 s); only when
that key expires does another worker retry the job of a crashed one. A long timeout would
thus mean a long outage. Instead the job shortens the key to a lease of a few seconds and
refreshes it while it runs: a SIGKILLed worker's job is picked up again within one lease.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from arq.connections import ArqRedis

from studio.jobs import ARQ_IN_PROGRESS_PREFIX


@contextlib.asynccontextmanager
async def job_lease(redis: ArqRedis, job_id: str, lease_s: float) -> AsyncIterator[None]:
    key = ARQ_IN_PROGRESS_PREFIX + job_id
    lease_ms = int(lease_s * 1000)

    async def refresh() -> None:
        while True:
            await redis.pexpire(key, lease_ms)  # no-op once arq deleted it
            await asyncio.sleep(lease_s / 3)

    task = asyncio.create_task(refresh())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

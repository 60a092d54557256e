"""Fast crash recovery: keep a running job's arq in-progress key on a short lease.

arq marks a running job with ``arq:in-progress:<id>`` for (largest timeout + 10 s); only when
that key expires does another worker retry the job of a crashed one. A long timeout would
thus mean a long outage. Instead the job shortens the key to a lease of a few seconds and
refreshes it while it runs: a SIGKILLed worker's job is picked up again within one lease.

A Redis outage must not end the job: the refresher retries quietly and often while Redis is
away, and writes the key back (SET, not PEXPIRE) the moment it returns. A restarted Redis may
have let the lease lapse; taking it back at once keeps idle workers, which poll with a slower
backoff, from starting the same job again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from arq.connections import ArqRedis

from studio.jobs import ARQ_IN_PROGRESS_PREFIX
from studio.outage import REDIS_DOWN

log = logging.getLogger(__name__)
# While Redis is away: refused connections fail fast, so this is cheap. It must stay well inside
# gpu_worker.resilient.RECLAIM_GRACE_S, the pause of other workers before they claim jobs again.
OUTAGE_RETRY_S = 0.2


@contextlib.asynccontextmanager
async def job_lease(redis: ArqRedis, job_id: str, lease_s: float) -> AsyncIterator[None]:
    key = ARQ_IN_PROGRESS_PREFIX + job_id
    lease_ms = int(lease_s * 1000)

    async def refresh() -> None:
        away = False
        while True:
            try:
                await redis.set(key, b"1", px=lease_ms)
            except REDIS_DOWN as error:
                if not away:
                    log.warning("job %s: cannot renew its lease (%s); retrying", job_id, type(error).__name__)
                away = True
                await asyncio.sleep(OUTAGE_RETRY_S)
                continue
            if away:
                log.warning("job %s: lease renewed, Redis is back", job_id)
            away = False
            await asyncio.sleep(lease_s / 3)

    task = asyncio.create_task(refresh())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

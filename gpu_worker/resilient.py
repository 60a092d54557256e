"""An arq Worker that keeps running through Redis outages instead of exiting.

arq's Worker lets any Redis error escape its poll loop, and the process ends: a Redis restart
would take every worker down with it. This subclass changes only the Redis round trips:

- the poll loop (queue read, job claims, health check) waits out an outage with a capped
  backoff and carries on; the health key is written again as soon as Redis is back;
- a finished job's result is held in memory and written once Redis is back (``finish_job``
  retries), so work done during an outage is never thrown away;
- the result is written with NX: if a job's lease lapsed during a long outage and another
  worker ran it as well (arq is at-least-once), the first result stays the only one;
- after an outage a worker waits ``RECLAIM_GRACE_S`` before it claims queued jobs: a job that
  was running elsewhere may have lost its lease while Redis was down, and its own worker
  (retrying every ``HELD_RETRY_S``) takes the lease back, or stores its result, first;
- a job whose very first round trip (read the job, count the try) failed never started: its
  claim is released once Redis is back so a worker picks it up again.

Job functions themselves (gpu_worker.tasks) tolerate the outage on their own: the lease
refresher, the cancel watcher and progress publishing retry or drop quietly.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from arq.connections import create_pool
from arq.constants import (
    abort_jobs_ss,
    in_progress_key_prefix,
    job_key_prefix,
    result_key_prefix,
    retry_key_prefix,
)
from arq.utils import to_ms
from arq.worker import Worker
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import WatchError

from gpu_worker.advertise import Advertiser, WarmPreference
from studio.outage import REDIS_DOWN, Outage

log = logging.getLogger(__name__)
RECLAIM_GRACE_S = 1.0
# A job claim that Redis did not complete: it is away, or the connection died while watching.
CLAIM_FAILED: tuple[type[BaseException], ...] = (*REDIS_DOWN, WatchError)
HELD_RETRY_S = 0.2  # leases and held results retry this often: well inside the grace above


class ResilientWorker(Worker):  # type: ignore[misc]  # arq is untyped here (follow_imports=skip)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.outage = Outage(f"worker on {self.queue_name}", log)
        self._reclaim_pending = False  # an outage ended: wait out the grace before claiming
        self._claim_after = 0.0
        # Inference workers only (they have a pipeline cache): see gpu_worker.advertise.
        self.advertiser: Advertiser | None = None
        self.preference: WarmPreference | None = None
        self._running: set[str] = set()

    async def main(self) -> None:
        # Start even while Redis is away (a host reboot starts workers before Redis): wait for it.
        while self._pool is None:  # type: ignore[has-type]
            try:
                self._pool = await create_pool(
                    self.redis_settings,
                    job_deserializer=self.job_deserializer,
                    job_serializer=self.job_serializer,
                    default_queue_name=self.queue_name,
                    expires_extra_ms=self.expires_extra_ms,
                )
            except REDIS_DOWN as error:
                self._reclaim_pending = True
                await asyncio.sleep(self.outage.failed(error))
        self.outage.recovered()
        await super().main()

    async def _poll_iteration(self) -> None:
        if self.advertiser is None and "cache" in self.ctx:  # on_startup has made the cache
            self._start_advertising()
        try:
            await super()._poll_iteration()
        except REDIS_DOWN as error:
            # Write the health key on the first poll that gets through, not an interval later:
            # a restarted Redis has lost (or expired) it and front ends count live workers by it.
            self._last_health_check = 0.0
            self._reclaim_pending = True
            await asyncio.sleep(self.outage.failed(error))
            return
        self.outage.recovered()
        self._start_grace()  # if start_jobs did not run (the worker is full): the grace starts now

    def _start_advertising(self) -> None:
        settings = self.ctx["settings"]
        worker_id, cache = self.ctx["worker_id"], self.ctx["cache"]
        self.advertiser = Advertiser(
            self.pool, settings, self.queue_name, worker_id, cache, lambda: len(self._running), self.max_jobs
        )
        self.advertiser.start()
        self.preference = WarmPreference(
            self.pool, self.queue_name, worker_id, cache, settings.warm_preference_s, self.advertiser.ttl_s
        )

    async def close(self) -> None:
        if self.advertiser is not None:  # out of sight at once, rather than when it expires
            await self.advertiser.stop()
        await super().close()

    def _start_grace(self) -> None:
        if self._reclaim_pending:
            self._reclaim_pending = False
            self._claim_after = time.monotonic() + RECLAIM_GRACE_S

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        self._start_grace()  # Redis answers again: it was just read from to get here
        if time.monotonic() < self._claim_after:
            return
        if self.preference is not None:
            self.preference.new_poll()
        for job_id in job_ids:
            if self.job_counter >= self.max_jobs:
                return
            if self.preference is not None and await self.preference.leave(job_id.decode()):
                continue  # an idle worker would run it more cheaply: left to it for a moment
            try:
                await super().start_jobs([job_id])
            except CLAIM_FAILED as error:
                # arq counted the job and took a slot before its claim failed: give both back.
                self.job_counter -= 1
                self.sem.release()
                if isinstance(error, WatchError):
                    # arq handles a real claim race at EXEC itself; a WatchError that escapes is
                    # redis-py's word for a connection lost while watching: Redis went away.
                    raise RedisConnectionError(str(error)) from error
                raise

    async def run_job(self, job_id: str, score: int) -> None:
        self._running.add(job_id)
        if self.advertiser is not None:
            self.advertiser.changed()  # seen busy now, not at the next heartbeat
        try:
            await super().run_job(job_id, score)
        except REDIS_DOWN as error:
            # Only the round trips before the job function can fail here (finish_job retries):
            # the job did not run. Release the claim so that it is picked up again at once
            # rather than when the claim's long expiry lapses.
            log.warning("job %s not started: Redis went away (%s)", job_id, type(error).__name__)
            await self.outage.retry(lambda: self.pool.delete(in_progress_key_prefix + job_id))
        finally:
            self._running.discard(job_id)
            if self.advertiser is not None:
                self.advertiser.changed()  # idle again, and warm on the job's model

    async def finish_job(
        self,
        job_id: str,
        finish: bool,
        result_data: bytes | None,
        result_timeout_s: float | None,
        keep_result_forever: bool,
        incr_score: int | None,
        keep_in_progress: float | None,
    ) -> None:
        await self._idle_before_result(job_id)

        async def write() -> None:
            # arq's finish_job, with the result written only if none exists yet (see above).
            async with self.pool.pipeline(transaction=True) as tr:
                delete_keys = []
                in_progress_key = in_progress_key_prefix + job_id
                if keep_in_progress is None:
                    delete_keys.append(in_progress_key)
                else:
                    tr.pexpire(in_progress_key, to_ms(keep_in_progress))
                if finish:
                    if result_data:
                        expire = None if keep_result_forever else result_timeout_s
                        tr.set(result_key_prefix + job_id, result_data, px=to_ms(expire), nx=True)
                    delete_keys += [retry_key_prefix + job_id, job_key_prefix + job_id]
                    tr.zrem(abort_jobs_ss, job_id)
                    tr.zrem(self.queue_name, job_id)
                elif incr_score:
                    tr.zincrby(self.queue_name, incr_score, job_id)
                if delete_keys:
                    tr.delete(*delete_keys)
                await tr.execute()

        await self._write_once_back(job_id, write)

    async def _idle_before_result(self, job_id: str) -> None:
        """Advertise this worker idle before its job's result is visible: whoever waited for the
        result may queue the next job on the same model at once, and the other workers must
        already see this one free to take it (gpu_worker.advertise.WarmPreference)."""
        self._running.discard(job_id)
        if self.advertiser is not None:
            try:
                await self.advertiser.publish()
            except Exception as error:  # never in the way of the result: the heartbeat advertises again
                log.debug("job %s: could not advertise this worker idle (%s)", job_id, type(error).__name__)

    async def _write_once_back(self, job_id: str, write: Callable[[], Awaitable[None]]) -> None:
        try:
            await write()
            return
        except REDIS_DOWN as error:
            log.warning(
                "job %s ended while Redis is away (%s); its result is kept here until Redis is back",
                job_id,
                type(error).__name__,
            )
        while True:  # quickly: before the grace of the other workers ends (see above)
            await asyncio.sleep(HELD_RETRY_S)
            try:
                await write()
            except REDIS_DOWN:
                continue
            log.warning("job %s: result stored after the outage", job_id)
            return

    async def finish_failed_job(self, job_id: str, result_data: bytes | None) -> None:
        await self._idle_before_result(job_id)

        async def write() -> None:
            async with self.pool.pipeline(transaction=True) as tr:
                tr.delete(retry_key_prefix + job_id, in_progress_key_prefix + job_id, job_key_prefix + job_id)
                tr.zrem(abort_jobs_ss, job_id)
                tr.zrem(self.queue_name, job_id)
                keep_result = self.keep_result_forever or self.keep_result_s > 0
                if result_data is not None and keep_result:
                    expire = 0 if self.keep_result_forever else self.keep_result_s
                    tr.set(result_key_prefix + job_id, result_data, px=to_ms(expire), nx=True)
                await tr.execute()

        await self._write_once_back(job_id, write)
